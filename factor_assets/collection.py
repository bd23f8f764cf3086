"""Live collection and daily ingestion: the sensor that snapshots order books and the schedule that builds yesterday.

Spot Binance has no historical order-book archive, so with
``BINANCE_BOOK_SOURCE=collector`` the ``book_snapshot_sensor`` snapshots
``/api/v3/depth`` (top ``BOOK_SNAPSHOT_LEVELS`` levels) for every registered
symbol every ``BOOK_SNAPSHOT_INTERVAL_S`` seconds into the landing area.
``daily_ingestion_schedule`` then builds the closed day: every raw asset
(``raw_book`` from the collected snapshots, whose metadata says how complete
they are), the liquidity metrics and the factor bars, for all symbols in one
run.
"""

import datetime as dt

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    schedule,
    sensor,
)

from factor_core import settings
from factor_core.binance.source import collect_book_snapshots
from partitions import SYMBOLS_PARTITION_NAME
from resources.market_data import MarketDataResource

LIVE_SOURCE = settings.get("MARKET_DATA_SOURCE") == "binance"
COLLECTING = LIVE_SOURCE and settings.get("BINANCE_BOOK_SOURCE") == "collector"
PER_SYMBOL_DAILY_ASSETS = [
    "raw_klines", "raw_trades", "raw_book", "raw_funding", "liquidity_metrics", "liquidity_daily", "factor_bars",
]


@sensor(
    minimum_interval_seconds=settings.get_int("BOOK_SNAPSHOT_INTERVAL_S"),
    default_status=DefaultSensorStatus.RUNNING if COLLECTING else DefaultSensorStatus.STOPPED,
    description="Snapshots the top of every registered symbol's spot order book into the raw_book landing area.",
)
def book_snapshot_sensor(context: SensorEvaluationContext, market_data: MarketDataResource):
    symbols = context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME)
    if not symbols:
        return SkipReason("no symbols registered")
    results = collect_book_snapshots(
        market_data.api_url,
        list(symbols),
        levels=market_data.book_levels,
        landing_root=market_data.collector_root,
        max_wait_s=min(market_data.max_wait_s, market_data.book_interval_s / 2),
    )
    failed = {s: r for s, r in results.items() if isinstance(r, BaseException)}
    for symbol, error in failed.items():
        context.log.warning(f"depth snapshot of {symbol} failed: {error}")
    return SkipReason(f"landed {len(results) - len(failed)} snapshot(s), {len(failed)} failed")


def day_range_run_request(day: dt.date, symbols: list[str], assets: list[str]) -> RunRequest:
    """One run over ``day`` x every symbol (a rectangle range), never one run per partition."""
    return RunRequest(
        run_key=f"daily-{day.isoformat()}",
        asset_selection=[AssetKey(a) for a in assets],
        tags={
            "dagster/asset_partition_range_start": f"{day.isoformat()}|{symbols[0]}",
            "dagster/asset_partition_range_end": f"{day.isoformat()}|{symbols[-1]}",
        },
    )


@schedule(
    cron_schedule="30 2 * * *",  # archive files of day D appear during D+1; REST fills any gap
    execution_timezone="UTC",
    target=PER_SYMBOL_DAILY_ASSETS,
    # On with real data (it also closes the collector's day); the simulator needs no daily feed.
    default_status=DefaultScheduleStatus.RUNNING if LIVE_SOURCE else DefaultScheduleStatus.STOPPED,
    description="Ingests the previous UTC day for every registered symbol, through the factor bars, in one run.",
)
def daily_ingestion_schedule(context: ScheduleEvaluationContext):
    symbols = context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME)
    if not symbols:
        return SkipReason("no symbols registered")
    day = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return day_range_run_request(day, list(symbols), PER_SYMBOL_DAILY_ASSETS)


COLLECTION_SENSORS = [book_snapshot_sensor]
COLLECTION_SCHEDULES = [daily_ingestion_schedule]
