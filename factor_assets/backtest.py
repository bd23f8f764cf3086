"""Backtest layer: cost-aware quantile long-short returns per day, and their summary."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.partition_keys import run_days
from factor_core import settings
from factor_core.backtest import BacktestConfig, run_backtest, summarize
from partitions import DAILY, previous_days
from resources.warehouse import DUCKDB_POOL

BACKTEST_GROUP = "backtest"


def backtest_config() -> BacktestConfig:
    return BacktestConfig(
        n_quantiles=settings.get_int("BACKTEST_QUANTILES"),
        cost_bps=settings.get_float("BACKTEST_COST_BPS"),
    )


@asset(
    group_name=BACKTEST_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="warehouse_io_manager",
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
    ins={
        # The first bar of a day trades on the last score of the previous day.
        "factor_panel": AssetIn(
            partition_mapping=previous_days(1, include_current=True),
            metadata={"allow_missing_partitions": True},
        )
    },
    description=(
        "Hourly quantile returns, long-short return before and after costs, turnover and rank IC: "
        "positions from the score known at each bar's open. DuckDB table backtest_daily."
    ),
)
def backtest_daily(context: AssetExecutionContext, factor_panel: pd.DataFrame) -> pd.DataFrame:
    days = run_days(context)
    missing = sorted(set(days) - set(factor_panel.get("date", pd.Series(dtype=str))))
    if missing:
        raise ValueError(f"backtest_daily: factor_panel has no rows for day(s) {missing}")
    config = backtest_config()
    result = run_backtest(factor_panel, config)
    result["date"] = result["ts"].dt.strftime("%Y-%m-%d")
    result = result[result["date"].isin(days)].reset_index(drop=True)
    context.add_output_metadata(
        {
            "cost_bps": MetadataValue.float(config.cost_bps),
            "n_quantiles": MetadataValue.int(config.n_quantiles),
            "mean_net_bps": MetadataValue.float(float(result["long_short_net"].mean() * 1e4)),
            "mean_ic": MetadataValue.float(float(result["ic"].mean())) if result["ic"].notna().any() else MetadataValue.text("n/a"),
        }
    )
    return result


@asset(
    group_name=BACKTEST_GROUP,
    io_manager_key="warehouse_io_manager",
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
    ins={"backtest_daily": AssetIn(metadata={"allow_missing_partitions": True})},
    description="Headline statistics over every materialized day of backtest_daily. DuckDB table backtest_summary.",
)
def backtest_summary(context: AssetExecutionContext, backtest_daily: pd.DataFrame) -> pd.DataFrame:
    summary = summarize(backtest_daily)
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
