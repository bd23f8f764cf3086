"""Backtest layer: cost-aware quantile long-short returns per day, and their summary."""


from dataclasses import dataclass

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, Config, MetadataValue, asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, ChunkRunner
from factor_assets.day_ranges import consecutive_runs, day_span, shift_day
from factor_assets.partition_keys import run_days
from factor_core.backtest import BacktestConfig, run_backtest, summarize
from factor_core.partition_store import PartitionedInput, PartitionStore
from partitions import DAILY, previous_days
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions
from resources.warehouse import DUCKDB_POOL

BACKTEST_GROUP = "backtest"
DAYS_PER_CHUNK = 32


class BacktestSettings(Config):
    """Backtest parameters; override them per run from the launchpad."""

    n_quantiles: int = 5
    cost_bps: float = 5.0


@dataclass(frozen=True)
class BacktestChunk:
    store: PartitionStore
    factor_panel: PartitionedInput
    config: BacktestConfig
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)


def backtest_chunk(chunk: BacktestChunk) -> ChunkResult:
    panel = chunk.factor_panel.frame({"date": d} for d in day_span(shift_day(chunk.days[0], -1), chunk.days[-1]))
    missing = sorted(set(chunk.days) - set(panel.get("date", pd.Series(dtype=str))))
    if missing:
        raise ValueError(f"backtest_daily: factor_panel has no rows for day(s) {missing}")
    hourly = run_backtest(panel, chunk.config)
    hourly["date"] = hourly["ts"].dt.strftime("%Y-%m-%d")
    result = ChunkResult(staged={"backtest_daily": []}, metadata={"backtest_daily": {}})
    for day in chunk.days:
        rows = hourly[hourly["date"] == day].drop(columns="date").reset_index(drop=True)
        result.staged["backtest_daily"].append(chunk.store.stage_frame("backtest_daily", {"date": day}, rows))
        md = {"rows": MetadataValue.int(len(rows)), "mean_net_bps": MetadataValue.float(float(rows["long_short_net"].mean() * 1e4))}
        result.metadata["backtest_daily"][day] = md
    return result


@asset(
    group_name=BACKTEST_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "duckdb"},
    automation_condition=keep_fresh(same_partition=["factor_panel"], per_symbol=False),
    ins={
        # The first bar of a day trades on the last score of the previous day.
        "factor_panel": AssetIn(partition_mapping=previous_days(1, include_current=True),
                                metadata={"allow_missing_partitions": True})
    },
    description=(
        "Hourly quantile returns, long-short return before and after costs, turnover and rank IC: "
        "positions from the score known at each bar's open. One Parquet file per day; DuckDB view backtest_daily."
    ),
)
def backtest_daily(
    context: AssetExecutionContext, config: BacktestSettings, partition_store: PartitionStoreResource,
    factor_panel: PartitionedInput,
) -> StagedPartitions:
    settings = BacktestConfig(n_quantiles=config.n_quantiles, cost_bps=config.cost_bps)
    chunks = [BacktestChunk(partition_store.store, factor_panel, settings, run)
              for run in consecutive_runs(run_days(context), DAYS_PER_CHUNK)]
    staged = []
    for result in ChunkRunner("backtest_daily").run(backtest_chunk, chunks):
        staged.extend(result.staged["backtest_daily"])
        for day, metadata in result.metadata["backtest_daily"].items():
            context.add_asset_metadata(metadata, partition_key=day)
    return StagedPartitions(staged)


@asset(
    group_name=BACKTEST_GROUP,
    io_manager_key="warehouse_io_manager",
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
    automation_condition=keep_fresh(per_symbol=False),
    ins={"backtest_daily": AssetIn(input_manager_key="parquet_io_manager", metadata={"allow_missing_partitions": True})},
    description="Headline statistics over every materialized day of backtest_daily. DuckDB table backtest_summary.",
)
def backtest_summary(context: AssetExecutionContext, backtest_daily: PartitionedInput) -> pd.DataFrame:
    summary = summarize(backtest_daily.frame(backtest_daily.dims))
    values = dict(zip(summary["metric"], summary["value"], strict=True))
    context.add_output_metadata(
        {
            key: MetadataValue.float(float(values[key]))
            for key in ("periods", "sharpe", "annual_return", "max_drawdown", "mean_ic", "total_cost")
            if key in values and pd.notna(values[key])
        }
    )
    return summary


BACKTEST_ASSETS = [backtest_daily, backtest_summary]
