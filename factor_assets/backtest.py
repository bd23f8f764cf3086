"""Backtest layer: the configured strategies day by day, their summary, and the latest rebalance signals.

* ``backtest`` (day; one step, two outputs): ``backtest_days(window, specs, [D],
  funding=raw_funding_D)`` per day. ``backtest_hourly`` holds every bar (gross,
  fee, half-spread, funding, net, turnover, quantile returns, rank IC),
  ``backtest_daily`` one row per (strategy, day) with the returns compounded over
  the day's bars. A day reads the ``factor_panel`` of ``PANEL_DAYS_BEFORE`` days
  before it (the holding window of its first bars) and the day's ``raw_funding``
  of every symbol. Both tables carry ``strategy_fingerprint``, a digest of the
  strategy's definition, so rows computed under another definition of the same
  name are never mixed into a summary.
* ``backtest_summary`` (DuckDB): ``summarize_backtests`` over the stored days of the
  configured strategies; tear-sheet images (cumulative returns by quantile with
  costs split out, drawdown, turnover) in its metadata and in
  ``<data root>/reports/backtest_summary.html``.
* ``rebalance_signals`` (DuckDB): each strategy's latest long and short lists.

Strategies come from ``STRATEGIES_FILE`` unless the run config brings its own
(``factor_assets.strategy_config``). A strategy whose factors are not in a day's
panel (``sentiment_score`` before the sentiment layer exists) is skipped that
day, with the reason in the metadata. Conventions: docs/research.md.
"""

from dataclasses import dataclass

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
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
from factor_assets.strategy_config import StrategiesConfig
from factor_assets.tearsheets import image_metadata, write_report
from factor_core.partition_store import PartitionedInput, PartitionStore, rematerialize_hint
from factor_core.research import (
    StrategyConfigError,
    StrategySpec,
    backtest_days,
    rebalance_signals as latest_signals,
    required_panel_days_before,
    strategy_fingerprint,
    summarize_backtests,
)
from factor_core.research import report as report_text
from factor_core.research import tearsheet
from factor_core.research.signals import SIGNAL_COLUMNS
from partitions import DAILY, previous_days
from resources.parquet_io_manager import PartitionStoreResource
from resources.strategies import StrategiesResource
from resources.warehouse import DUCKDB_POOL, DuckDBWarehouse

BACKTEST_GROUP = "backtest"
DAYS_PER_CHUNK = 32
MISSING_OK = {"allow_missing_partitions": True}
#: Days of factor_panel before a day that its backtest reads: positions of the first bars were
#: formed up to ``holding_hours + 1`` hours earlier, so this allows holding periods up to 47 hours.
PANEL_DAYS_BEFORE = 2
MAX_HOLDING_HOURS = 24 * PANEL_DAYS_BEFORE - 1
FINGERPRINT = "strategy_fingerprint"


def run_strategies(strategies: StrategiesResource, config: StrategiesConfig) -> list[StrategySpec]:
    """The run's strategies, checked against what the backtest's partition mapping can hold."""
    specs = strategies.specs(config.override())
    for spec in specs:
        if required_panel_days_before([spec]) > PANEL_DAYS_BEFORE:
            raise StrategyConfigError(
                f"strategy {spec.name!r}: field 'holding_hours' = {spec.holding_hours}: the backtest reads "
                f"{PANEL_DAYS_BEFORE} days of factor_panel before each day, enough for holding periods up to "
                f"{MAX_HOLDING_HOURS} hours; shorten it"
            )
    return specs


# --------------------------------------------------------------------------- backtest_daily / backtest_hourly


@dataclass(frozen=True)
class BacktestChunk:
    store: PartitionStore
    factor_panel: PartitionedInput
    raw_funding: PartitionedInput
    specs: tuple[StrategySpec, ...]
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)


def _funding_of(chunk: BacktestChunk, day: str, symbols: list[str]) -> pd.DataFrame:
    """The day's raw_funding of ``symbols`` (a ``symbol`` column added); every partition must exist."""
    if not any(s.charge_funding for s in chunk.specs):
        return pd.DataFrame()
    missing = [s for s in symbols if not chunk.raw_funding.store.exists("raw_funding", {"date": day, "symbol": s})]
    if missing:
        raise ValueError(
            f"backtest {day}: raw_funding of {missing} is not materialized, and strategies charge funding; "
            f"materialize it (e.g. {rematerialize_hint('raw_funding', {'date': day, 'symbol': missing[0]})}) "
            "or set charge_funding: false"
        )
    return chunk.raw_funding.frame({"date": day, "symbol": s} for s in symbols)


def _skip_on(spec: StrategySpec, today: pd.DataFrame, day: str) -> str | None:
    """Why ``spec`` does not run on ``day``: one of its factors has no value in that day's panel."""
    absent = [f for f in spec.factors
              if spec.normalized_column(f) not in today.columns or today[spec.normalized_column(f)].isna().all()]
    if not absent:
        return None
    return (f"factor(s) {absent} have no value in the day's factor_panel "
            "(their layer has not produced them, or they are still warming up)")


def backtest_chunk(chunk: BacktestChunk) -> ChunkResult:
    """Every day of the chunk, each from its own window (so a range equals the days run one by one)."""
    first, last = chunk.days[0], chunk.days[-1]
    panel = chunk.factor_panel.frame({"date": d} for d in day_span(shift_day(first, -PANEL_DAYS_BEFORE), last))
    have = set(panel["date"]) if not panel.empty else set()
    missing = [d for d in chunk.days if d not in have]
    if missing:
        raise ValueError(f"backtest: factor_panel has no rows for day(s) {missing}; materialize factor_panel first")
    fingerprints = {s.name: strategy_fingerprint(s) for s in chunk.specs}
    result = ChunkResult(staged={"backtest_daily": [], "backtest_hourly": []},
                         metadata={"backtest_daily": {}, "backtest_hourly": {}})
    for day in chunk.days:
        window_days = day_span(shift_day(day, -PANEL_DAYS_BEFORE), day)
        window = panel[panel["date"].isin(window_days)]
        today = window[window["date"] == day]
        skipped = {s.name: reason for s in chunk.specs if (reason := _skip_on(s, today, day))}
        runnable = [s for s in chunk.specs if s.name not in skipped]  # none (all warming up): an empty day
        funding = _funding_of(chunk, day, sorted(set(today["symbol"]))) if runnable else pd.DataFrame()
        run = backtest_days(window, runnable, [day], funding=funding if len(funding) else None)
        for name, rows in (("backtest_daily", run.daily), ("backtest_hourly", run.hourly)):
            rows = rows.assign(**{FINGERPRINT: rows["strategy"].map(fingerprints)})
            result.staged[name].append(chunk.store.stage_frame(name, {"date": day}, rows))
        daily = run.daily.set_index("strategy")
        result.metadata["backtest_daily"][day] = {
            "strategies": MetadataValue.int(len(daily)),
            "net_return": MetadataValue.json({k: round(float(v), 8) for k, v in daily["net_return"].items()}),
            "lookback_days_present": MetadataValue.int(len(set(window["date"])) - 1),
            **({"skipped": MetadataValue.json(skipped)} if skipped else {}),
        }
        result.metadata["backtest_hourly"][day] = {"rows": MetadataValue.int(len(run.hourly))}
        for name, reason in skipped.items():
            result.extra.setdefault("skipped", {}).setdefault((name, reason), []).append(day)
    return result


_AUTOMATION = keep_fresh(same_partition=["factor_panel"], listed_symbols=["raw_funding"], per_symbol=False)


@multi_asset(
    name="backtest",
    outs={
        "backtest_daily": AssetOut(
            io_manager_key="parquet_io_manager", group_name=BACKTEST_GROUP, kinds={"parquet", "duckdb"},
            is_required=False, automation_condition=_AUTOMATION,
            description=(
                "Per strategy and day: gross_return, fee_cost, spread_cost (half the quoted spread per unit traded), "
                "funding (perpetual settlements; longs pay positive rates), net_return (compounded over the day's "
                "bars), turnover, q1..q10_return, mean_ic. One Parquet file per day; DuckDB view backtest_daily."
            ),
        ),
        "backtest_hourly": AssetOut(
            io_manager_key="parquet_io_manager", group_name=BACKTEST_GROUP, kinds={"parquet", "duckdb"},
            is_required=False, automation_condition=_AUTOMATION,
            description=(
                "Per strategy and hourly bar: positions from the scores known at the bar's open, returns, costs, "
                "funding, turnover, quantile returns and rank IC. One Parquet file per day; DuckDB view backtest_hourly."
            ),
        ),
    },
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=True,
    ins={
        "factor_panel": AssetIn(partition_mapping=previous_days(PANEL_DAYS_BEFORE, include_current=True),
                                metadata=MISSING_OK),
        "raw_funding": AssetIn(metadata=MISSING_OK),
    },
)
def backtest(
    context: AssetExecutionContext, config: StrategiesConfig, strategies: StrategiesResource,
    partition_store: PartitionStoreResource, factor_panel: PartitionedInput, raw_funding: PartitionedInput,
):
    specs = tuple(run_strategies(strategies, config))
    selected = [key.path[-1] for key in context.selected_asset_keys]
    chunks = [BacktestChunk(partition_store.store, factor_panel, raw_funding, specs, run)
              for run in consecutive_runs(run_days(context), DAYS_PER_CHUNK)]
    run = run_chunks(context, "backtest", backtest_chunk, chunks, record=selected)
    skipped: dict[tuple[str, str], list[str]] = {}
    for extra in run.extras:
        for key, skipped_days in extra.get("skipped", {}).items():
            skipped.setdefault(key, []).extend(skipped_days)
    for (strategy, reason), skipped_days in sorted(skipped.items()):
        context.log.warning(f"strategy {strategy!r} skipped on {len(skipped_days)} day(s) "
                            f"({min(skipped_days)} .. {max(skipped_days)}): {reason}")
    for name in ("backtest_daily", "backtest_hourly"):
        if name not in selected:
            partition_store.store.discard(run.staged.get(name, []))
    for name in selected:
        yield Output(run.output(name), output_name=name)


# --------------------------------------------------------------------------- backtest_summary


def current_rows(frame: pd.DataFrame, specs: list[StrategySpec]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The rows of the configured strategies as defined now; the days computed under another definition."""
    if frame.empty:
        return frame, {}
    wanted = {s.name: strategy_fingerprint(s) for s in specs}
    named = frame[frame["strategy"].isin(wanted)]
    matches = named[FINGERPRINT].to_numpy() == named["strategy"].map(wanted).to_numpy()
    stale = named[~matches].groupby("strategy")["date"].unique()
    return named[matches].reset_index(drop=True), {k: sorted(v) for k, v in stale.items()}


def _summary_markdown(summary: pd.DataFrame) -> str:
    headers, rows = report_text.summary_cells(summary)
    return report_text.markdown_table(headers, rows)


@asset(
    group_name=BACKTEST_GROUP,
    io_manager_key="warehouse_io_manager",
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
    automation_condition=keep_fresh(per_symbol=False),
    ins={
        "backtest_daily": AssetIn(input_manager_key="parquet_io_manager", metadata=MISSING_OK),
        "backtest_hourly": AssetIn(input_manager_key="parquet_io_manager", metadata=MISSING_OK),
    },
    description=(
        "One row per configured strategy over every stored day: total_return, cagr, annual_volatility, sharpe "
        "(mean / std x sqrt(365) of daily net returns), sortino, max_drawdown, calmar, win_rate, mean_ic, ic_ir, "
        "mean_turnover, costs by kind, start, end, days (short_sample below 30 days). DuckDB table; tear-sheet "
        "images and reports/backtest_summary.html in the metadata."
    ),
)
def backtest_summary(
    context: AssetExecutionContext, config: StrategiesConfig, strategies: StrategiesResource,
    warehouse: DuckDBWarehouse, backtest_daily: PartitionedInput, backtest_hourly: PartitionedInput,
) -> pd.DataFrame:
    specs = strategies.specs(config.override())
    daily, stale = current_rows(backtest_daily.frame(backtest_daily.dims), specs)
    hourly, _ = current_rows(backtest_hourly.frame(backtest_hourly.dims), specs)
    if daily.empty:
        raise ValueError("backtest_summary: no stored backtest_daily rows of the configured strategies "
                         f"{[s.name for s in specs]}; materialize backtest_daily first")
    summary = summarize_backtests(daily, hourly)
    without_rows = sorted({s.name for s in specs} - set(summary["strategy"]))
    for name, days in stale.items():
        context.log.warning(f"backtest_summary: {name} was computed under another definition on {len(days)} day(s) "
                            f"({days[0]} .. {days[-1]}); those days are left out; re-materialize backtest_daily")
    images = tearsheet.tear_sheet_images(daily)
    notes = {name: f"strategy {name!r}: no stored day under its current definition (skipped or not materialized)"
             for name in without_rows}
    html = report_text.render_html_report(summary, images, skipped=notes, title="Backtest summary")
    path = write_report(warehouse.root_path, "backtest_summary", html)
    context.add_output_metadata({
        "summary": MetadataValue.md(_summary_markdown(summary)),
        **image_metadata(images),
        "report_html": MetadataValue.path(str(path)),
        "days": MetadataValue.int(int(daily["date"].nunique())),
        "strategies_without_rows": MetadataValue.json(without_rows),
        "stale_days": MetadataValue.json({k: len(v) for k, v in stale.items()}),
    })
    return summary


# --------------------------------------------------------------------------- rebalance_signals


def _empty_signals() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=str) for c in SIGNAL_COLUMNS})
    for column in ("ts", "trade_at"):
        frame[column] = pd.Series(dtype="datetime64[ns, UTC]")
    for column in ("score", "weight"):
        frame[column] = pd.Series(dtype="float64")
    frame["rank"] = pd.Series(dtype="int64")
    return frame


@asset(
    group_name=BACKTEST_GROUP,
    io_manager_key="warehouse_io_manager",
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
    automation_condition=keep_fresh(per_symbol=False),
    ins={"factor_panel": AssetIn(input_manager_key="parquet_io_manager", metadata=MISSING_OK)},
    description=(
        "Each configured strategy's latest rebalance from the newest factor_panel days: the long (top quantile) "
        "and short (bottom quantile) lists with score, rank, weight and trade_at (when the scores are known). "
        "DuckDB table."
    ),
)
def rebalance_signals(
    context: AssetExecutionContext, config: StrategiesConfig, strategies: StrategiesResource,
    factor_panel: PartitionedInput,
) -> pd.DataFrame:
    specs = strategies.specs(config.override())
    stored = [d for d in reversed(factor_panel.days_of()) if factor_panel.store.exists("factor_panel", {"date": d})]
    latest = sorted(stored[: PANEL_DAYS_BEFORE + 1])  # enough hours for the longest rebalance period
    if not latest:
        raise ValueError("rebalance_signals: no factor_panel partition is materialized; materialize factor_panel first")
    signals, skipped = latest_signals(factor_panel.frame({"date": d} for d in latest), specs)
    for reason in skipped.values():
        context.log.warning(reason)
    out = signals if len(signals) else _empty_signals()
    shown = out.assign(score=out["score"].map(report_text.format_number),
                       weight=out["weight"].map(lambda w: report_text.format_percent(w)))
    context.add_output_metadata({
        "as_of": MetadataValue.text(str(out["trade_at"].max()) if len(out) else "n/a"),
        "panel_days": MetadataValue.json(latest),
        "signals": MetadataValue.md(report_text.markdown_table(
            ["strategy", "trade_at", "side", "rank", "symbol", "score", "weight"],
            shown[["strategy", "trade_at", "side", "rank", "symbol", "score", "weight"]].astype(str).values.tolist(),
        )),
        **({"skipped": MetadataValue.json(skipped)} if skipped else {}),
    })
    return out.astype({"rank": "int64"}) if len(out) else out


BACKTEST_ASSETS = [backtest, backtest_summary, rebalance_signals]
