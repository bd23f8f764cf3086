"""Cross-sectional layer: all symbols of a UTC day, normalised per timestamp."""

import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, MetadataValue, asset

from factor_assets.partition_keys import run_days
from factor_core.factors import FACTORS
from factor_core.panel import DEFAULT_SCORE_WEIGHTS, build_panel
from partitions import DAILY
from resources.warehouse import DUCKDB_POOL

PANEL_GROUP = "cross_section"
#: Factors whose value depends on where the input window starts (cumulative
#: OBV) would differ between a day computed alone and in a range: not panelled.
PANEL_FACTORS = [spec.name for spec in FACTORS if spec.start_invariant]


@asset(
    group_name=PANEL_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="warehouse_io_manager",
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
    description=(
        "All symbols' hourly factors per UTC day, z-scored across symbols at each timestamp, "
        f"with a composite score {DEFAULT_SCORE_WEIGHTS}. DuckDB table factor_panel."
    ),
)
def factor_panel(context: AssetExecutionContext, factor_bars: pd.DataFrame) -> pd.DataFrame:
    days = run_days(context)
    present = set(factor_bars["date"]) if not factor_bars.empty else set()
    missing = [d for d in days if d not in present]
    if missing:
        raise ValueError(f"factor_panel: no factor_bars rows for day(s) {missing}")
    panel = build_panel(factor_bars, PANEL_FACTORS, DEFAULT_SCORE_WEIGHTS)
    symbols_per_day = panel.groupby("date")["symbol"].nunique()
    context.add_output_metadata(
        {
            "symbols_min": MetadataValue.int(int(symbols_per_day.min())),
            "symbols_max": MetadataValue.int(int(symbols_per_day.max())),
        }
    )
    return panel


PANEL_ASSETS = [factor_panel]
