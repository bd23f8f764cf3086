"""Raw layer: 1-minute bars, trades, order book and funding per UTC day x symbol.

Each raw asset runs its data-quality checks (``factor_core.quality``) on every
partition it stores and reports them as blocking Dagster asset checks: a
failure stops downstream steps of the same run, and the failed partition is
marked in its file so later runs refuse to consume it too.
"""

import datetime as dt
from collections import defaultdict

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MetadataValue,
    Output,
    asset,
)

from factor_assets.partition_keys import run_partitions
from factor_core import quality, settings
from partitions import DAY_SYMBOL
from resources.market_data import BINANCE_POOL, MarketDataSource, Partition
from resources.parquet_io_manager import QUALITY_FAILURES_ATTR

RAW_GROUP = "raw"

_RAW_DATASETS = {
    "raw_klines": ("klines", "1-minute OHLCV bars, 1440 rows per complete UTC day, labelled by open time."),
    "raw_trades": ("trades", "Every (aggregate) trade: id, time, price, quantity, aggressor side."),
    "raw_book": ("book", "Order-book snapshots (top-N levels) or depth bands, long form."),
    "raw_funding": ("funding", "Perpetual funding rate settlements (every 8 hours)."),
}

def check_checksum_verified(partition: Partition, day: str) -> quality.CheckOutcome:
    """Archive files verified against their published SHA-256 before parsing."""
    verified = partition.provenance.get("checksum_verified", "false")
    source = partition.provenance.get("source", "unknown")
    details = {k: partition.provenance[k] for k in ("url", "sha256") if partition.provenance.get(k)}
    if verified == "n/a":
        return quality.CheckOutcome("checksum_verified", True, f"{day}: {source} publishes no checksum", details)
    passed = verified == "true"
    return quality.CheckOutcome(
        "checksum_verified", passed, f"{day}: {source} checksum {'verified' if passed else 'NOT verified'}", details
    )


CHECKS: dict[str, dict] = {
    **quality.CHECKS_BY_ASSET,
    "raw_funding": {"timestamps": quality.check_timestamps},
}


def _check_results(name: str, outcomes: dict[str, list[tuple[str, quality.CheckOutcome]]]):
    for check_name, results in outcomes.items():
        failed = [(key, outcome) for key, outcome in results if not outcome.passed]
        yield AssetCheckResult(
            asset_key=name,
            check_name=check_name,
            passed=not failed,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{len(results)} partition(s) checked, all passed"
                if not failed
                else f"{len(failed)} of {len(results)} partition(s) failed: "
                + "; ".join(outcome.description for _, outcome in failed[:3])
            ),
            metadata={
                "partitions_checked": MetadataValue.int(len(results)),
                "partitions_failed": MetadataValue.json([key for key, _ in failed]),
                "failures": MetadataValue.json({key: outcome.details for key, outcome in failed[:10]}),
                "outcomes": MetadataValue.json({key: outcome.description for key, outcome in results[:10]}),
            },
        )


def _first_line(doc: str | None) -> str | None:
    return doc.strip().split("\n")[0] if doc else None


def _raw_asset(name: str, dataset: str, description: str) -> AssetsDefinition:
    checks = CHECKS[name]
    check_names = [*checks, "checksum_verified"]

    @asset(
        name=name,
        group_name=RAW_GROUP,
        description=description,
        partitions_def=DAY_SYMBOL,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        kinds={"parquet"},
        # Steps that call the exchange share one pool: parallel processes
        # cannot overrun the exchange's per-IP weight limit together.
        pool=BINANCE_POOL if settings.get("MARKET_DATA_SOURCE") == "binance" else None,
        check_specs=[
            AssetCheckSpec(check_name, asset=name, blocking=True, description=_first_line(fn.__doc__))
            for check_name, fn in [*checks.items(), ("checksum_verified", check_checksum_verified)]
        ],
    )
    def _fetch(context: AssetExecutionContext, market_data: MarketDataSource):
        frames = []
        outcomes: dict[str, list] = defaultdict(list)
        failures: dict[str, list[str]] = {}
        pairs = [(symbol, dt.date.fromisoformat(day)) for day, symbol in run_partitions(context)]
        fetched = market_data.fetch_many(dataset, pairs)
        provenance = {}
        for symbol, date in pairs:
            day = date.isoformat()
            partition = fetched[(symbol, date)]
            frame = partition.frame
            key = f"{day}|{symbol}"
            provenance[key] = partition.provenance
            for check_name in check_names:
                if check_name == "checksum_verified":
                    outcome = check_checksum_verified(partition, day)
                else:
                    outcome = checks[check_name](frame, day)
                outcomes[check_name].append((key, outcome))
                if not outcome.passed:
                    failures.setdefault(key, []).append(check_name)
                    context.log.warning(f"{name} {key}: check {check_name} failed: {outcome.description}")
            frames.append(frame.assign(date=day, symbol=symbol))
        context.log.info(f"{name}: fetched {len(frames)} partition(s) from {market_data.source}")
        result = pd.concat(frames, ignore_index=True)
        result.attrs[QUALITY_FAILURES_ATTR] = failures
        yield Output(result, metadata={"source": MetadataValue.json(provenance if len(provenance) <= 20 else dict(list(provenance.items())[:20]))})
        yield from _check_results(name, outcomes)

    return _fetch


raw_klines = _raw_asset("raw_klines", *_RAW_DATASETS["raw_klines"])
raw_trades = _raw_asset("raw_trades", *_RAW_DATASETS["raw_trades"])
raw_book = _raw_asset("raw_book", *_RAW_DATASETS["raw_book"])
raw_funding = _raw_asset("raw_funding", *_RAW_DATASETS["raw_funding"])

RAW_ASSETS = [raw_klines, raw_trades, raw_book, raw_funding]
