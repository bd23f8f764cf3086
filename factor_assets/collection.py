"""Live order-book collection: every capture is a run, started by a sensor.

Spot Binance has no historical order-book archive, so with
``BINANCE_BOOK_SOURCE=collector`` the ``book_snapshot_sensor`` launches a
``book_snapshot_job`` run every ``BOOK_SNAPSHOT_INTERVAL_S`` seconds. The run
snapshots ``/api/v3/depth`` (top ``BOOK_SNAPSHOT_LEVELS`` levels) for every
registered symbol listed today into the landing area, with retries, and its
logs in the UI say what was landed and what failed. The day's ``raw_book``
partition is later built from the collected snapshots (its metadata says how
complete they were).
"""

import datetime as dt

from dagster import (
    Backoff,
    DefaultSensorStatus,
    OpExecutionContext,
    RetryPolicy,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)

from factor_assets.ingestion import listed_symbols
from factor_core.binance.source import collect_book_snapshots
from resources.market_data import BINANCE_POOL, BinanceMarketData, MarketDataResource


class SnapshotFailure(RuntimeError):
    """Every symbol's snapshot failed (one failing symbol alone never loses the others)."""


@op(
    retry_policy=RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL),
    pool=BINANCE_POOL,
    description="Snapshots the top of every listed symbol's spot order book into the raw_book landing area.",
)
def collect_book_snapshots_op(context: OpExecutionContext, market_data: MarketDataResource) -> None:
    if not isinstance(market_data, BinanceMarketData):
        raise ValueError("book snapshots are collected from Binance (MARKET_DATA_SOURCE=binance)")
    symbols = listed_symbols(context.instance, dt.datetime.now(dt.UTC).date().isoformat())
    results = collect_book_snapshots(
        market_data.api_url,
        symbols,
        levels=market_data.book_levels,
        landing_root=market_data.collector_root,
        max_wait_s=min(market_data.max_wait_s, market_data.book_interval_s / 2),
    )
    failed = {s: r for s, r in results.items() if isinstance(r, BaseException)}
    for symbol, error in failed.items():
        context.log.warning(f"depth snapshot of {symbol} failed: {error}")
    context.log.info(f"landed {len(results) - len(failed)} snapshot(s), {len(failed)} failed")
    if symbols and len(failed) == len(symbols):
        raise SnapshotFailure(f"every depth snapshot failed ({len(failed)} symbol(s)); first: {next(iter(failed.values()))}")


@job(description="One capture of the live order books (see book_snapshot_sensor).", tags={"factor_pipeline/kind": "collector"})
def book_snapshot_job():
    collect_book_snapshots_op()


def build_book_snapshot_sensor(collecting: bool, interval_s: int):
    @sensor(
        name="book_snapshot_sensor",
        job=book_snapshot_job,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING if collecting else DefaultSensorStatus.STOPPED,
        description="Launches one book_snapshot_job run per snapshot interval (BINANCE_BOOK_SOURCE=collector).",
    )
    def book_snapshot_sensor(context: SensorEvaluationContext):
        if not context.instance.get_dynamic_partitions("symbols"):
            return SkipReason("no symbols registered")
        slot = int(dt.datetime.now(dt.UTC).timestamp()) // interval_s
        return RunRequest(run_key=f"book-snapshot-{slot}")  # one run per interval, even if the sensor re-ticks

    return book_snapshot_sensor
