"""Cross-sectional layer: all symbols listed on a UTC day, normalised per timestamp.

``factor_panel`` (day) reads ``factor_bars`` of the day for every registered
symbol and keeps the symbols that were members of the universe that day
(``symbol_universe``: point-in-time membership, so a symbol delisted later keeps
its past rows and one delisted earlier is simply absent). Stored as one Parquet
file per day; DuckDB sees it as the view ``factor_panel``.
"""


from dataclasses import dataclass

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, ChunkRunner
from factor_assets.day_ranges import consecutive_runs
from factor_assets.partition_keys import run_days
from factor_core.factors import FACTORS
from factor_core.panel import DEFAULT_SCORE_WEIGHTS, build_panel
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_core.universe import Listings, is_listed, listings_of
from partitions import DAILY
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions

PANEL_GROUP = "cross_section"
DAYS_PER_CHUNK = 16
#: Factors whose value depends on where the input window starts (cumulative
#: OBV) would differ between a day computed alone and in a range: not panelled.
PANEL_FACTORS = [spec.name for spec in FACTORS if spec.start_invariant]


def universe_listings(symbol_universe: PartitionedInput) -> Listings:
    table = symbol_universe.table({})
    return {} if table is None else listings_of(table.to_pandas())


@dataclass(frozen=True)
class PanelChunk:
    store: PartitionStore
    factor_bars: PartitionedInput
    listings: Listings
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)


def panel_chunk(chunk: PanelChunk) -> ChunkResult:
    result = ChunkResult(staged={"factor_panel": []}, metadata={"factor_panel": {}})
    for day in chunk.days:
        members = sorted({d["symbol"] for d in chunk.factor_bars.dims if d["date"] == day
                          and is_listed(chunk.listings, d["symbol"], day)})
        bars = chunk.factor_bars.frame([{"date": day, "symbol": s} for s in members])
        if bars.empty:
            raise ValueError(f"factor_panel {day}: no factor_bars for any symbol listed that day ({members})")
        panel = build_panel(bars, PANEL_FACTORS, DEFAULT_SCORE_WEIGHTS)
        result.staged["factor_panel"].append(chunk.store.stage_frame("factor_panel", {"date": day}, panel))
        present = sorted(set(bars["symbol"]))
        result.metadata["factor_panel"][day] = {
            "rows": MetadataValue.int(len(panel)),
            "symbols": MetadataValue.int(len(present)),
            "symbols_listed_without_bars": MetadataValue.json(sorted(set(members) - set(present))),
        }
    return result


@asset(
    group_name=PANEL_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "duckdb"},
    automation_condition=keep_fresh(listed_symbols=["factor_bars"], ignore_updates_of=["symbol_universe"], per_symbol=False),
    ins={
        "factor_bars": AssetIn(metadata={"allow_missing_partitions": True}),
        "symbol_universe": AssetIn(metadata={"allow_missing_partitions": True}),
    },
    description=(
        "All symbols listed that day (point-in-time universe): hourly factors z-scored across symbols at each "
        f"timestamp, with a composite score {DEFAULT_SCORE_WEIGHTS}. One Parquet file per day; DuckDB view factor_panel."
    ),
)
def factor_panel(
    context: AssetExecutionContext,
    partition_store: PartitionStoreResource,
    factor_bars: PartitionedInput,
    symbol_universe: PartitionedInput,
) -> StagedPartitions:
    listings = universe_listings(symbol_universe)
    chunks = [PanelChunk(partition_store.store, factor_bars, listings, run)
              for run in consecutive_runs(run_days(context), DAYS_PER_CHUNK)]
    staged = []
    for result in ChunkRunner("factor_panel").run(panel_chunk, chunks):
        staged.extend(result.staged["factor_panel"])
        for day, metadata in result.metadata["factor_panel"].items():
            context.add_asset_metadata(metadata, partition_key=day)
    return StagedPartitions(staged)


PANEL_ASSETS = [factor_panel]
