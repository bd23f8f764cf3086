"""Raw layer: bars, trades, order book, funding and quotes per UTC day x symbol, from one step.

``raw_market_data`` is one multi-asset: a run over a range fetches every
selected dataset of each partition together (the simulator runs once per
partition; the Binance source downloads all datasets of a chunk concurrently
in one session, inside the ``binance_api`` pool), checks it, and stages one
file per (dataset, partition). Chunks run on every core when the source
allows it (``factor_assets.chunks``); the files are published only when every
chunk succeeded.

Each raw asset runs its data-quality checks (``factor_core.quality``) on every
partition and reports them as blocking asset checks: a failure stops
downstream steps of the same run, and the failed partition is kept, marked in
its file, so later runs refuse to consume it until it is re-materialized.
Every partition's materialization carries its own rows, time range and
source.
"""


import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)

from factor_assets.chunks import ChunkResult, ChunkRunner, default_workers, run_chunks
from factor_assets.partition_keys import run_partitions
from factor_core import quality
from factor_core.market_sources import DATASET_ASSETS, MarketSource, conform
from factor_core.partition_data import PartitionData
from factor_core.partition_store import PartitionStore
from partitions import DAY_SYMBOL
from resources.market_data import BINANCE_POOL, MarketDataResource
from resources.parquet_io_manager import PartitionStoreResource

RAW_GROUP = "raw"
RAW_ASSET_KEYS = list(DATASET_ASSETS.values())
#: Partitions per chunk: small, so a worker holds a few partitions of ticks at a time.
PARTITIONS_PER_CHUNK = 8

DESCRIPTIONS = {
    "raw_klines": "1-minute OHLCV bars, 1440 rows per complete UTC day, labelled by open time.",
    "raw_trades": "Every (aggregate) trade: id, time, price, quantity, aggressor side.",
    "raw_book": "Order-book snapshots (top-N levels) or depth bands, long form.",
    "raw_funding": "Perpetual funding rate settlements, with the interval each one covers.",
    "raw_quotes": "Top of book: every change of the best bid and ask, with sizes.",
}


def _checksum_check(data: PartitionData, day: str) -> quality.CheckOutcome:
    """Archive data verified against its published SHA-256 before parsing (REST days cannot be)."""
    verified = data.provenance.get("checksum_verified", "false") == "true"
    source = data.provenance.get("source", "unknown source")
    details = {k: data.provenance[k] for k in ("url", "sha256", "file") if data.provenance.get(k)}
    if verified:
        return quality.CheckOutcome("checksum_verified", True, f"{day}: {source} checksum verified", details)
    why = data.provenance.get("checksum_note") or f"{source} publishes no checksum for this data"
    return quality.CheckOutcome("checksum_verified", False, f"{day}: NOT verified: {why}", details)


#: Blocking checks per raw asset (one partition's table each): a failure quarantines the partition.
BLOCKING_CHECKS: dict[str, dict[str, Callable]] = {
    **quality.CHECKS_BY_ASSET,
    "raw_funding": {"timestamps": quality.check_timestamps},
}
#: Blocking checks across datasets of the same partition (run when all their datasets are fetched).
CROSS_CHECKS = {
    "raw_trades": {"trades_inside_quotes": (("trades", "quotes", "book"), quality.check_trades_inside_quotes)},
}


@dataclass(frozen=True)
class RawChunk:
    source: MarketSource
    store: PartitionStore
    datasets: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # (symbol, day)
    verify_checksums: bool

    @property
    def partitions(self) -> list[str]:
        return [f"{day}|{symbol}" for symbol, day in self.pairs]


def _time_range(table) -> dict[str, MetadataValue]:
    column = "open_time" if "open_time" in table.column_names else "ts"
    if table.num_rows == 0:
        return {}
    bounds = pc.min_max(table.column(column))
    return {
        "time_min": MetadataValue.text(str(bounds["min"].as_py())),
        "time_max": MetadataValue.text(str(bounds["max"].as_py())),
    }


def _partition_metadata(data: PartitionData, failed: list[str]) -> dict[str, MetadataValue]:
    metadata = {"rows": MetadataValue.int(data.table.num_rows), **_time_range(data.table)}
    metadata["source"] = MetadataValue.text(data.provenance.get("source", "unknown"))
    for key in ("url", "file", "sha256", "note", "snapshots", "snapshots_expected", "completeness"):
        if data.provenance.get(key):
            metadata[key] = MetadataValue.text(data.provenance[key])
    if failed:
        metadata["failed_checks"] = MetadataValue.json(failed)
    return metadata


def fetch_chunk(chunk: RawChunk) -> ChunkResult:
    """Fetch, check and stage every dataset of the chunk's partitions (runs in a worker process)."""
    pairs = [(symbol, dt.date.fromisoformat(day)) for symbol, day in chunk.pairs]
    fetched = chunk.source.fetch(chunk.datasets, pairs)
    result = ChunkResult(extra={"checks": []})
    for dataset in chunk.datasets:
        asset = DATASET_ASSETS[dataset]
        checks = dict(BLOCKING_CHECKS.get(asset, {}))
        staged, metadata = [], {}
        for symbol, day in pairs:
            key = f"{day.isoformat()}|{symbol}"
            data = conform(dataset, symbol, day, fetched[dataset][(symbol, day)], chunk.source.name)
            failed = []
            outcomes = [check(data.table, key) for check in checks.values()]  # the key: messages name the partition
            for name, (needs, check) in CROSS_CHECKS.get(asset, {}).items():
                if all(d in fetched for d in needs):
                    tables = [fetched[d][(symbol, day)].table for d in needs]
                    outcomes.append(check(*tables[:2], key, book=tables[2]))
            for outcome in outcomes:
                result.extra["checks"].append((asset, key, outcome))
                if not outcome.passed:
                    failed.append(outcome.name)
            if chunk.verify_checksums:
                result.extra["checks"].append((asset, key, _checksum_check(data, day.isoformat())))
            dims = {"date": day.isoformat(), "symbol": symbol}
            staged.append(chunk.store.stage(asset, dims, data.table, failed=failed))
            metadata[key] = _partition_metadata(data, failed)
        result.staged[asset] = staged
        result.metadata[asset] = metadata
    return result


def _check_results(asset: str, outcomes: dict[str, list[tuple[str, quality.CheckOutcome]]], blocking: set[str]):
    for check_name, results in outcomes.items():
        failed = [(key, outcome) for key, outcome in results if not outcome.passed]
        yield AssetCheckResult(
            asset_key=asset,
            check_name=check_name,
            passed=not failed,
            severity=AssetCheckSeverity.ERROR if check_name in blocking else AssetCheckSeverity.WARN,
            description=(
                f"{len(results)} partition(s) checked, all passed"
                if not failed
                else f"{len(failed)} of {len(results)} partition(s) failed: "
                + "; ".join(f"{key}: {outcome.description}" for key, outcome in failed[:3])
            ),
            metadata={
                "partitions_checked": MetadataValue.int(len(results)),
                "partitions_failed": MetadataValue.json([key for key, _ in failed[:100]]),
                "failures": MetadataValue.json({key: outcome.details for key, outcome in failed[:10]}),
            },
        )


def build_raw_assets(source_name: str) -> AssetsDefinition:
    """The raw multi-asset for the configured source (its pool and checks depend on the source)."""
    verify_checksums = source_name in ("binance", "landing")
    check_specs = []
    for asset in RAW_ASSET_KEYS:
        blocking = {**BLOCKING_CHECKS.get(asset, {}), **{n: fn for n, (_, fn) in CROSS_CHECKS.get(asset, {}).items()}}
        for name, fn in blocking.items():
            first_line = (fn.__doc__ or "").strip().split("\n")[0] or None
            check_specs.append(AssetCheckSpec(name, asset=asset, blocking=True, description=first_line))
        if verify_checksums:
            check_specs.append(
                AssetCheckSpec("checksum_verified", asset=asset, blocking=False, description=_checksum_check.__doc__)
            )

    @multi_asset(
        name="raw_market_data",
        outs={
            asset: AssetOut(
                io_manager_key="parquet_io_manager",
                is_required=False,  # subsettable: a run may ask for some datasets only
                description=DESCRIPTIONS[asset],
                kinds={"parquet"},
                group_name=RAW_GROUP,
            )
            for asset in RAW_ASSET_KEYS
        },
        partitions_def=DAY_SYMBOL,
        backfill_policy=BackfillPolicy.single_run(),
        can_subset=True,
        check_specs=check_specs,
        # Steps that call the exchange share one pool: parallel runs cannot overrun its per-IP limit together.
        pool=BINANCE_POOL if source_name == "binance" else None,
    )
    def raw_market_data(context: AssetExecutionContext, market_data: MarketDataResource, partition_store: PartitionStoreResource):
        assets = [key.path[-1] for key in context.selected_asset_keys]
        datasets = tuple(d for d, a in DATASET_ASSETS.items() if a in assets)
        source = market_data.source()
        store = partition_store.store
        by_symbol: dict[str, list[str]] = defaultdict(list)
        for day, symbol in run_partitions(context):
            by_symbol[symbol].append(day)
        chunks = [
            RawChunk(source, store, datasets, tuple((symbol, d) for d in days[i:i + PARTITIONS_PER_CHUNK]), verify_checksums)
            for symbol, days in by_symbol.items()
            for i in range(0, len(days), PARTITIONS_PER_CHUNK)
        ]
        workers = default_workers() if source.parallel_safe else 1
        run = run_chunks(context, "raw_market_data", fetch_chunk, chunks, workers=workers)
        outcomes: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        failed_partitions = set()
        for extra in run.extras:
            for asset, key, outcome in extra["checks"]:
                outcomes[asset][outcome.name].append((key, outcome))
                if not outcome.passed and outcome.name != "checksum_verified":
                    failed_partitions.add(f"{asset} {key}")
        for label in sorted(failed_partitions)[:20]:
            context.log.warning(f"{label}: failed blocking checks; stored but quarantined until re-materialized")
        context.log.info(f"fetched {len(datasets)} dataset(s) x {sum(len(d) for d in by_symbol.values())} partition(s) "
                         f"from {source.name} in {len(chunks)} chunk(s) on "
                         f"{ChunkRunner('raw', workers=workers).effective_workers(len(chunks))} worker(s)")
        for asset in assets:
            yield Output(run.output(asset), output_name=asset)
        for asset in assets:
            blocking = set(BLOCKING_CHECKS.get(asset, {})) | set(CROSS_CHECKS.get(asset, {}))
            yield from _check_results(asset, outcomes[asset], blocking)

    return raw_market_data

