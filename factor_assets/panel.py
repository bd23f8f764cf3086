"""Cross-sectional layer: the daily factor panel, the closes its labels read, and the planted signal.

* ``hourly_closes`` (day): ``ts, symbol, close`` of every symbol's ``factor_bars``
  of the day. It exists for the labels: the last hours of day D need day D+1's
  prices, and a daily asset cannot map to *another* day of a (day, symbol)
  asset, so ``factor_panel`` D reads ``hourly_closes`` D+1 through a day <- day
  mapping (``partitions.next_days(1)``).
* ``factor_panel`` (day): ``factor_core.research.build_factor_panel``: one row
  per (hour, symbol) for the symbols listed at that hour (``symbol_universe``,
  point in time), raw factors, cross-sectional ranks and z-scores, and the
  labels ``fwd_ret_1h/4h/24h``. Labels that need D+1 are null until
  ``hourly_closes`` D+1 exists; its arrival makes automation recompute D.
  Optional extra factors of the same day: ``sentiment_hourly`` (the sentiment
  layer's ``sentiment_score``) and, with the synthetic source, ``planted_signal``.
* ``planted_signal`` (day x symbol, synthetic source only): the simulator's
  planted signal, declared as planted wherever it appears.

Conventions (timing, membership, labels): docs/research.md.
"""

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, run_chunks
from factor_assets.day_ranges import consecutive_runs, shift_day
from factor_assets.partition_keys import run_days, run_partitions
from factor_core import simulator
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_core.research import PLANTED_FACTOR, SENTIMENT_FACTOR, build_factor_panel, factors_in
from factor_core.research.panel import HORIZONS_H, fwd_column, membership_from_universe, planted_signal_rows
from factor_core.universe import is_listed, listings_of
from partitions import DAILY, DAY_SYMBOL, next_days
from resources.market_data import MarketDataResource, SyntheticMarketData
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions

PANEL_GROUP = "cross_section"
RESEARCH_GROUP = "research"
DAYS_PER_CHUNK = 16
MISSING_OK = {"allow_missing_partitions": True}
#: Columns of ``factor_bars`` the closes table keeps (``close_time`` is read for the stored-schema check).
CLOSE_COLUMNS = ["ts", "close_time", "close"]

def _listings(universe: pd.DataFrame | None):
    return {} if universe is None else listings_of(universe)


def _universe_frame(symbol_universe: PartitionedInput) -> pd.DataFrame | None:
    table = symbol_universe.table({})
    return None if table is None else table.to_pandas()


# --------------------------------------------------------------------------- hourly_closes


@asset(
    group_name=PANEL_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet"},
    automation_condition=keep_fresh(listed_symbols=["factor_bars"], per_symbol=False),
    ins={"factor_bars": AssetIn(metadata=MISSING_OK)},
    description=(
        "Hourly closes (ts = bar open, symbol, close) of every symbol's factor_bars of the day: the prices "
        "the previous day's factor_panel labels read. One Parquet file per day."
    ),
)
def hourly_closes(
    context: AssetExecutionContext, partition_store: PartitionStoreResource, factor_bars: PartitionedInput
) -> StagedPartitions:
    store = partition_store.store
    staged = []
    try:
        for day in run_days(context):
            frame = factor_bars.frame([d for d in factor_bars.dims if d["date"] == day], columns=CLOSE_COLUMNS)
            if frame.empty:
                raise ValueError(f"hourly_closes {day}: no factor_bars partition of that day exists; "
                                 f"materialize factor_bars for {day} first")
            closes = frame[["ts", "symbol", "close"]].sort_values(["ts", "symbol"], kind="stable")
            staged.append(store.stage_frame("hourly_closes", {"date": day}, closes.reset_index(drop=True)))
            context.add_asset_metadata({"rows": MetadataValue.int(len(closes)),
                                        "symbols": MetadataValue.int(closes["symbol"].nunique())}, partition_key=day)
    except BaseException:
        store.discard(staged)
        raise
    return StagedPartitions(staged)


# --------------------------------------------------------------------------- planted_signal


@asset(
    group_name=RESEARCH_GROUP,
    partitions_def=DAY_SYMBOL,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet"},
    tags={"planted": "true"},
    automation_condition=keep_fresh(alongside=["raw_klines"]),
    description=(
        "PLANTED, synthetic source only: the market simulator's hidden signal (known_at = hour boundary T, "
        "signal), which drives each symbol's idiosyncratic return over [T, T+1h) with information "
        "coefficient SIM_SIGNAL_IC. It checks that the research layer finds a known signal (and, when the "
        "planted edge beats the trading costs, earns it after them); it is not an alpha, and every report "
        "marks it '(planted)'."
    ),
)
def planted_signal(
    context: AssetExecutionContext, market_data: MarketDataResource, partition_store: PartitionStoreResource
) -> StagedPartitions:
    if not isinstance(market_data, SyntheticMarketData):
        raise TypeError(f"planted_signal exists only with MARKET_DATA_SOURCE=synthetic; the source is {market_data.name}")
    config = market_data.simulator_config()
    store = partition_store.store
    staged = []
    try:
        for day, symbol in run_partitions(context):
            frame = simulator.planted_signal(symbol, dt.date.fromisoformat(day), config)
            staged.append(store.stage_frame("planted_signal", {"date": day, "symbol": symbol}, frame))
            context.add_asset_metadata(
                {"rows": MetadataValue.int(len(frame)), "planted_ic": MetadataValue.float(float(config.signal_ic))},
                partition_key=f"{day}|{symbol}",
            )
    except BaseException:
        store.discard(staged)
        raise
    return StagedPartitions(staged)


# --------------------------------------------------------------------------- factor_panel


@dataclass(frozen=True)
class PanelChunk:
    store: PartitionStore
    inputs: dict[str, PartitionedInput]  # factor_bars, hourly_closes, sentiment_hourly[, planted_signal]
    universe: pd.DataFrame | None
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)


def _extras(chunk: PanelChunk, day: str, symbols: list[str]) -> list[pd.DataFrame]:
    """The extra factor frames of the day (keyed by ts = bar open, symbol): sentiment, planted signal."""
    extras = []
    dims = [{"date": day, "symbol": s} for s in symbols]
    sentiment = chunk.inputs["sentiment_hourly"].frame(dims)
    if not sentiment.empty:
        extras.append(sentiment[["ts", "symbol", SENTIMENT_FACTOR]])
    if PLANTED_FACTOR in chunk.inputs:
        planted = chunk.inputs[PLANTED_FACTOR].frame(dims)
        if not planted.empty:
            extras.append(planted_signal_rows({s: rows for s, rows in planted.groupby("symbol", sort=True)}))
    return extras


def panel_chunk(chunk: PanelChunk) -> ChunkResult:
    """The panels of a chunk's days (worker process)."""
    listings = _listings(chunk.universe)
    bars_input = chunk.inputs["factor_bars"]
    result = ChunkResult(staged={"factor_panel": []}, metadata={"factor_panel": {}})
    for day in chunk.days:
        listed = sorted({d["symbol"] for d in bars_input.dims if d["date"] == day and is_listed(listings, d["symbol"], day)})
        bars = bars_input.frame([{"date": day, "symbol": s} for s in listed])
        if bars.empty:
            raise ValueError(f"factor_panel {day}: no factor_bars for any symbol listed that day ({listed}); "
                             f"materialize factor_bars for {day} first")
        present = sorted(set(bars["symbol"]))
        next_day = chunk.inputs["hourly_closes"].table({"date": shift_day(day, 1)})
        membership = None if chunk.universe is None else membership_from_universe(chunk.universe, present)
        panel = build_factor_panel(
            bars.drop(columns="date"),
            day=day,
            next_day_bars=None if next_day is None else next_day.to_pandas().drop(columns="date"),
            membership=membership,
            extras=_extras(chunk, day, present),
        )
        result.staged["factor_panel"].append(chunk.store.stage_frame("factor_panel", {"date": day}, panel))
        labelled = {f"labelled_{fwd_column(h)}": MetadataValue.float(float(panel[fwd_column(h)].notna().mean()))
                    for h in HORIZONS_H if len(panel)}
        extra = [f for f in factors_in(panel.columns) if f in (PLANTED_FACTOR, SENTIMENT_FACTOR)]
        result.metadata["factor_panel"][day] = {
            "rows": MetadataValue.int(len(panel)),
            "symbols": MetadataValue.int(int(panel["symbol"].nunique())),
            "next_day_closes": MetadataValue.bool(next_day is not None),
            **labelled,
            "extra_factors": MetadataValue.json(extra),
            "symbols_listed_without_bars": MetadataValue.json(sorted(set(listed) - set(present))),
        }
    return result


def _factor_panel_ins(planted: bool) -> dict[str, AssetIn]:
    ins = {
        "factor_bars": AssetIn(metadata=MISSING_OK),
        # Day D's labels need D+1's closes; absent until D+1 is materialized (labels stay null).
        "hourly_closes": AssetIn(partition_mapping=next_days(1), metadata=MISSING_OK),
        "symbol_universe": AssetIn(metadata=MISSING_OK),
        # Optional extra factors of the same day.
        "sentiment_hourly": AssetIn(input_manager_key="parquet_io_manager", metadata=MISSING_OK),
    }
    if planted:
        ins[PLANTED_FACTOR] = AssetIn(metadata=MISSING_OK)
    return ins


def build_factor_panel_asset(planted: bool):
    """``factor_panel``; with ``planted`` (the synthetic source) it also joins the planted signal."""

    @asset(
        name="factor_panel",
        group_name=PANEL_GROUP,
        partitions_def=DAILY,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        kinds={"parquet", "duckdb"},
        automation_condition=keep_fresh(listed_symbols=["factor_bars"], ignore_updates_of=["symbol_universe"],
                                        per_symbol=False),
        ins=_factor_panel_ins(planted),
        description=(
            "One row per (hour, symbol) listed at that hour (point-in-time universe): raw factors, their "
            "cross-sectional ranks in [0, 1] and z-scores, and the labels fwd_ret_1h/4h/24h (simple returns from "
            "the close of the stamped hour; null until the next day's closes exist). Extra factors: "
            "sentiment_score (sentiment layer)" + (", planted_signal (PLANTED, synthetic source)" if planted else "")
            + ". One Parquet file per day; DuckDB view factor_panel."
        ),
    )
    def factor_panel(
        context: AssetExecutionContext, partition_store: PartitionStoreResource, symbol_universe: PartitionedInput,
        **inputs: PartitionedInput,
    ) -> StagedPartitions:
        universe = _universe_frame(symbol_universe)
        chunks = [PanelChunk(partition_store.store, inputs, universe, run)
                  for run in consecutive_runs(run_days(context), DAYS_PER_CHUNK)]
        run = run_chunks(context, "factor_panel", panel_chunk, chunks)
        pending = [day for day, md in run.metadata["factor_panel"].items() if not md["next_day_closes"].value]
        if pending:
            context.log.info(f"factor_panel: labels of the last hours of {pending} stay null until the next day's "
                             "hourly_closes exist; automation recomputes those days when it arrives")
        return run.output("factor_panel")

    return factor_panel


def panel_assets(source: str) -> list:
    """The cross-sectional assets for the configured market-data source."""
    planted = source == "synthetic"
    return [hourly_closes, build_factor_panel_asset(planted), *([planted_signal] if planted else [])]


__all__ = ["build_factor_panel_asset", "hourly_closes", "panel_assets", "planted_signal"]
