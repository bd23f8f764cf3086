"""Research layer: information coefficients and factor correlation per day, their report over every day.

* ``factor_ic`` (day): ``compute_factor_ic(panel_D, previous_panel=panel_D-1)``: per
  (hour, factor, horizon) Pearson ``ic`` and Spearman ``rank_ic`` against
  ``fwd_ret_{h}h`` with ``n_symbols``, and the rank autocorrelation at lag h (the
  previous day's panel feeds the first hours). Hours whose labels need the next day
  stay NaN until the panel's labels fill in (automation recomputes the day).
* ``factor_correlation`` (day): ``daily_factor_correlation(panel_D)``: mean hourly
  Spearman correlation of every factor pair, with ``n_hours``.
* ``factor_summary`` (unpartitioned, one step, two DuckDB tables): ``factor_report``
  (``factor_report(factor_ic)``: mean IC, IR, iid and Newey-West t, hit rate, decay,
  rank autocorrelation per factor and horizon) and ``factor_correlation_overall``
  (``overall_factor_correlation``: the n_hours-weighted mean of the daily values).
  Tear-sheet images (rolling IC, IC by horizon, correlation heat map) are attached
  to the materializations and written with the IC table to
  ``<data root>/reports/factor_report.html``.

Formulas: docs/research.md.
"""

from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    BackfillPolicy,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, run_chunks
from factor_assets.day_ranges import consecutive_runs, day_span, shift_day
from factor_assets.partition_keys import run_days
from factor_assets.tearsheets import image_metadata, write_report
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_core.research import (
    HORIZONS_H,
    compute_factor_ic,
    correlation_matrix,
    daily_factor_correlation,
    factor_report,
    overall_factor_correlation,
)
from factor_core.research import report as report_text
from factor_core.research import tearsheet
from partitions import DAILY, previous_days
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions
from resources.warehouse import DUCKDB_POOL, DuckDBWarehouse

RESEARCH_GROUP = "research"
DAYS_PER_CHUNK = 16
MISSING_OK = {"allow_missing_partitions": True}


def _day_panel(panel: pd.DataFrame, day: str) -> pd.DataFrame | None:
    rows = panel[panel["date"] == day] if not panel.empty else panel
    return None if rows.empty else rows.reset_index(drop=True)


@dataclass(frozen=True)
class PanelDaysChunk:
    """Consecutive days of a daily research step; ``factor_panel`` covers them (and the day before)."""

    store: PartitionStore
    factor_panel: PartitionedInput
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)

    def panels(self, days_before: int) -> pd.DataFrame:
        first, last = self.days[0], self.days[-1]
        panel = self.factor_panel.frame({"date": d} for d in day_span(shift_day(first, -days_before), last))
        have = set(panel["date"]) if not panel.empty else set()
        missing = [d for d in self.days if d not in have]
        if missing:
            raise ValueError(f"factor_panel has no rows for day(s) {missing}; materialize factor_panel for them first")
        return panel


def ic_chunk(chunk: PanelDaysChunk) -> ChunkResult:
    panel = chunk.panels(days_before=1)
    result = ChunkResult(staged={"factor_ic": []}, metadata={"factor_ic": {}})
    for day in chunk.days:
        rows = compute_factor_ic(_day_panel(panel, day), previous_panel=_day_panel(panel, shift_day(day, -1)))
        result.staged["factor_ic"].append(chunk.store.stage_frame("factor_ic", {"date": day}, rows))
        labelled = {f"hours_with_rank_ic_{h}h": MetadataValue.int(int(
            rows.loc[rows["horizon_h"] == h].groupby("ts")["rank_ic"].count().gt(0).sum())) for h in HORIZONS_H}
        result.metadata["factor_ic"][day] = {"rows": MetadataValue.int(len(rows)),
                                             "factors": MetadataValue.int(int(rows["factor"].nunique())), **labelled}
    return result


def correlation_chunk(chunk: PanelDaysChunk) -> ChunkResult:
    panel = chunk.panels(days_before=0)
    result = ChunkResult(staged={"factor_correlation": []}, metadata={"factor_correlation": {}})
    for day in chunk.days:
        rows = daily_factor_correlation(_day_panel(panel, day))
        result.staged["factor_correlation"].append(chunk.store.stage_frame("factor_correlation", {"date": day}, rows))
        result.metadata["factor_correlation"][day] = {
            "pairs": MetadataValue.int(len(rows)),
            "hours": MetadataValue.int(int(rows["n_hours"].max()) if len(rows) else 0),
        }
    return result


def _run_daily(context: AssetExecutionContext, asset_name: str, fn, store: PartitionStore,
               factor_panel: PartitionedInput) -> StagedPartitions:
    chunks = [PanelDaysChunk(store, factor_panel, run) for run in consecutive_runs(run_days(context), DAYS_PER_CHUNK)]
    return run_chunks(context, asset_name, fn, chunks).output(asset_name)


@asset(
    group_name=RESEARCH_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "duckdb"},
    automation_condition=keep_fresh(same_partition=["factor_panel"], per_symbol=False),
    # The previous day's ranks feed the rank autocorrelation of the first hours.
    ins={"factor_panel": AssetIn(partition_mapping=previous_days(1, include_current=True), metadata=MISSING_OK)},
    description=(
        "Per hour, factor and horizon (1h, 4h, 24h; every hour of every day): Pearson ic and Spearman rank_ic of "
        "the factor against the forward return, n_symbols, and the rank autocorrelation at lag h (turnover = "
        "1 - it). One Parquet file per day; DuckDB view factor_ic."
    ),
)
def factor_ic(
    context: AssetExecutionContext, partition_store: PartitionStoreResource, factor_panel: PartitionedInput
) -> StagedPartitions:
    return _run_daily(context, "factor_ic", ic_chunk, partition_store.store, factor_panel)


@asset(
    group_name=RESEARCH_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "duckdb"},
    automation_condition=keep_fresh(same_partition=["factor_panel"], per_symbol=False),
    ins={"factor_panel": AssetIn()},
    description=(
        "Per day and factor pair: the mean over the day's hours of the Spearman correlation across symbols "
        "(rank_corr), with n_hours. One Parquet file per day; DuckDB view factor_correlation."
    ),
)
def factor_correlation(
    context: AssetExecutionContext, partition_store: PartitionStoreResource, factor_panel: PartitionedInput
) -> StagedPartitions:
    return _run_daily(context, "factor_correlation", correlation_chunk, partition_store.store, factor_panel)


def _strongest(report: pd.DataFrame) -> pd.DataFrame:
    """The shortest horizon's factors by |mean rank IC| (for the metadata table)."""
    shortest = report[report["horizon_h"] == report["horizon_h"].min()]
    return shortest.assign(a=shortest["mean_rank_ic"].abs()).sort_values("a", ascending=False).drop(columns="a")


@multi_asset(
    name="factor_summary",
    outs={
        "factor_report": AssetOut(
            io_manager_key="warehouse_io_manager",
            group_name=RESEARCH_GROUP,
            kinds={"duckdb"},
            automation_condition=keep_fresh(per_symbol=False),
            description=(
                "Per factor and horizon over every stored hour of factor_ic: mean IC and rank IC, std, IR, iid and "
                "Newey-West t-statistics, hit rate, IC decay across horizons, rank autocorrelation. DuckDB table; "
                "tear-sheet images and reports/factor_report.html in the metadata."
            ),
        ),
        "factor_correlation_overall": AssetOut(
            io_manager_key="warehouse_io_manager",
            group_name=RESEARCH_GROUP,
            kinds={"duckdb"},
            automation_condition=keep_fresh(per_symbol=False),
            description="Mean hourly rank correlation of every factor pair over every stored day. DuckDB table.",
        ),
    },
    ins={
        "factor_ic": AssetIn(input_manager_key="parquet_io_manager", metadata=MISSING_OK),
        "factor_correlation": AssetIn(input_manager_key="parquet_io_manager", metadata=MISSING_OK),
    },
    internal_asset_deps={
        "factor_report": {AssetKey("factor_ic")},
        "factor_correlation_overall": {AssetKey("factor_correlation")},
    },
    pool=DUCKDB_POOL,
)
def factor_summary(
    context: AssetExecutionContext, warehouse: DuckDBWarehouse, factor_ic: PartitionedInput,
    factor_correlation: PartitionedInput,
):
    ic_rows = factor_ic.frame(factor_ic.dims)
    if ic_rows.empty:
        raise ValueError("factor_report: no factor_ic partition is materialized; materialize factor_ic first")
    report = factor_report(ic_rows)
    daily_corr = factor_correlation.frame(factor_correlation.dims)
    overall = (overall_factor_correlation(daily_corr) if not daily_corr.empty else pd.DataFrame({
        "factor_a": pd.Series(dtype=str), "factor_b": pd.Series(dtype=str),
        "rank_corr": pd.Series(dtype="float64"), "n_hours": pd.Series(dtype="int64")}))

    images = tearsheet.tear_sheet_images(pd.DataFrame(), ic_rows, report)
    heat_map = ({"correlation": tearsheet.correlation_heatmap_png(correlation_matrix(overall))}
                if len(overall) else {})
    html = report_text.render_html_report(None, {**images, **heat_map}, report=report, title="Factor IC report")
    path = write_report(warehouse.root_path, "factor_report", html)
    strongest = _strongest(report).head(12)
    headers, rows = report_text.factor_report_cells(strongest)
    yield Output(report, output_name="factor_report", metadata={
        **image_metadata(images),
        "strongest_factors": MetadataValue.md(report_text.markdown_table(headers, rows)),
        "days": MetadataValue.int(int(ic_rows["date"].nunique())),
        "report_html": MetadataValue.path(str(path)),
    })
    yield Output(overall, output_name="factor_correlation_overall", metadata={
        **image_metadata(heat_map),
        "days": MetadataValue.int(int(daily_corr["date"].nunique()) if not daily_corr.empty else 0),
        "report_html": MetadataValue.path(str(path)),
    })


RESEARCH_ASSETS = [factor_ic, factor_correlation, factor_summary]
