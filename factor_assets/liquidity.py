"""Liquidity layer: per-minute and daily liquidity per UTC day x symbol, from one step.

``liquidity`` is one multi-asset: each partition's ``raw_book``, ``raw_trades``,
``raw_klines`` and ``raw_quotes`` are read once and give both
``liquidity_metrics`` (``factor_core.liquidity.minute_liquidity``, 1440 rows)
and ``liquidity_daily`` (``compute_daily``, one row). Formulas:
``docs/liquidity.md``. A partition with bars only (no trades, book or quotes,
e.g. from a landing folder) still materializes: the bar-based measures are
computed, the others are null, and its metadata says why, measure by measure.

VPIN rolls across days over a bounded window: day d continues the volume
buckets of day d-1, sized from the five days before (``rolling_vpin_state``),
so the step reads the trades of d-1 and the bars of d-6 through look-back
mappings. A day's value never depends on how far back history reaches, a
corrected day changes only the days whose window holds it, and a range run
equals the same days run one by one.
``factor_bars`` joins the minute frame of the same day (``liq_*``) and the
daily row of the PREVIOUS day (``liqd_*``).
"""


import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetOut, BackfillPolicy, MetadataValue, Output, multi_asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, run_chunks
from factor_assets.partition_keys import run_partitions
from factor_core.liquidity import DAILY_KEYS, MINUTE_COLUMNS, VPIN_VOLUME_DAYS, compute_daily, minute_liquidity, rolling_vpin_state
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_assets.day_ranges import consecutive_runs, day_span, shift_day
from partitions import DAY_SYMBOL, previous_days_of_same_symbol
from resources.parquet_io_manager import PartitionStoreResource

LIQUIDITY_GROUP = "liquidity"
DAYS_PER_CHUNK = 16
#: Days of bars before a day that its VPIN reads (d-1's buckets are sized from d-6..d-2).
VPIN_WINDOW_DAYS = VPIN_VOLUME_DAYS + 1
_HISTORY = {"allow_missing_partitions": True}
_INPUTS = ("raw_book", "raw_trades", "raw_klines", "raw_quotes")


def _finite_mean(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _floats(values: dict[str, float]) -> dict[str, MetadataValue]:
    """Finite values as float metadata; the undefined ones listed under ``undefined``."""
    out: dict[str, MetadataValue] = {k: MetadataValue.float(float(v)) for k, v in values.items() if np.isfinite(v)}
    undefined = sorted(k for k, v in values.items() if not np.isfinite(v))
    if undefined:
        out["undefined"] = MetadataValue.json(undefined)
    return out


@dataclass(frozen=True)
class LiquidityChunk:
    store: PartitionStore
    inputs: dict[str, PartitionedInput]
    symbol: str
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return [f"{day}|{self.symbol}" for day in self.days]


def _rows(inp: PartitionedInput, day: str, symbol: str) -> pd.DataFrame:
    frame = inp.symbol_frame(symbol, [day])
    return frame.drop(columns=[c for c in ("date", "symbol") if c in frame.columns])


def liquidity_chunk(chunk: LiquidityChunk) -> ChunkResult:
    """Both liquidity outputs of the chunk's consecutive days, staged, in day order (runs in a worker process)."""
    result = ChunkResult(staged={"liquidity_metrics": [], "liquidity_daily": []},
                         metadata={"liquidity_metrics": {}, "liquidity_daily": {}})
    # Bars of the VPIN window before the chunk, then each day's own inputs once, in day order.
    bars = {dt.date.fromisoformat(d): _rows(chunk.inputs["raw_klines"], d, chunk.symbol)
            for d in day_span(shift_day(chunk.days[0], -VPIN_WINDOW_DAYS), shift_day(chunk.days[0], -1))}
    previous_trades = _rows(chunk.inputs["raw_trades"], shift_day(chunk.days[0], -1), chunk.symbol)
    for day in chunk.days:
        date = dt.date.fromisoformat(day)
        book, trades, klines, quotes = (_rows(chunk.inputs[name], day, chunk.symbol) for name in _INPUTS)
        minute = minute_liquidity(book, trades, klines, quotes)
        state = rolling_vpin_state(date, klines_by_day=bars, trades_previous=previous_trades)
        summary = compute_daily(date, klines=klines, trades=trades, book=book, quotes=quotes, minute=minute, previous=state)
        bars[date] = klines
        bars.pop(date - dt.timedelta(days=VPIN_WINDOW_DAYS), None)
        previous_trades = trades
        start = pd.Timestamp(day, tz="UTC")
        daily = pd.DataFrame([{"ts": start, "known_at": start + pd.Timedelta(days=1), **summary.values}],
                             columns=["ts", "known_at", *DAILY_KEYS])
        daily["ts"] = daily["ts"].astype("datetime64[ns, UTC]")
        daily["known_at"] = daily["known_at"].astype("datetime64[ns, UTC]")
        dims = {"date": day, "symbol": chunk.symbol}
        key = f"{day}|{chunk.symbol}"
        result.staged["liquidity_metrics"].append(chunk.store.stage_frame("liquidity_metrics", dims, minute[list(MINUTE_COLUMNS)]))
        result.staged["liquidity_daily"].append(chunk.store.stage_frame("liquidity_daily", dims, daily))
        empty_inputs = [name for name, frame in zip(_INPUTS, (book, trades, klines, quotes), strict=True) if frame.empty]
        minute_md = {
            "rows": MetadataValue.int(len(minute)),
            "minutes_with_book": MetadataValue.float(float((minute["n_snapshots"] > 0).mean()) if len(minute) else 0.0),
            "minutes_with_trades": MetadataValue.float(float((minute["n_trades"] > 0).mean()) if len(minute) else 0.0),
            **_floats({"mean_quoted_spread_bps": _finite_mean(minute["quoted_spread_bps"]),
                       "mean_effective_spread_bps": _finite_mean(minute["effective_spread_bps"])}),
        }
        if empty_inputs:
            minute_md["empty_inputs"] = MetadataValue.json(empty_inputs)
            minute_md["note"] = MetadataValue.text(
                "measures that need " + ", ".join(empty_inputs) + " are null for this partition"
            )
        result.metadata["liquidity_metrics"][key] = minute_md
        daily_md = {**_floats({k: v for k, v in summary.values.items()}), **{k: MetadataValue.text(v) for k, v in summary.notes.items()}}
        if summary.null_reasons:
            daily_md["null_reasons"] = MetadataValue.json(summary.null_reasons)
        if empty_inputs:
            daily_md["empty_inputs"] = MetadataValue.json(empty_inputs)
        result.metadata["liquidity_daily"][key] = daily_md
    return result


@multi_asset(
    name="liquidity",
    outs={
        "liquidity_metrics": AssetOut(
            io_manager_key="parquet_io_manager", kinds={"parquet", "numba"}, group_name=LIQUIDITY_GROUP,
            automation_condition=keep_fresh(same_partition=["raw_klines"]),
            description=(
                "Per-minute liquidity (1440 rows per day, ts = minute open): quoted and effective spread, depth "
                "within ±10/±50 bps, depth and trade imbalance, counts and volumes, from the partition's raw_book, "
                "raw_trades and raw_klines (factor_core.liquidity.minute_liquidity). A row uses nothing after "
                "ts + 1 min."
            ),
        ),
        "liquidity_daily": AssetOut(
            io_manager_key="parquet_io_manager", kinds={"parquet", "numba"}, group_name=LIQUIDITY_GROUP,
            automation_condition=keep_fresh(same_partition=["raw_klines"]),
            description=(
                "Daily liquidity summary, one row per day x symbol (ts = the day's 00:00 UTC, known_at = next "
                "00:00): mean spreads and depth, Kyle's lambda, Amihud, Roll and Corwin-Schultz spreads, VPIN "
                "(factor_core.liquidity.daily_liquidity). factor_bars joins it to the NEXT day's bars (liqd_*)."
            ),
        ),
    },
    ins={
        "raw_book": AssetIn(),
        "raw_quotes": AssetIn(),
        # The rolling VPIN window: the previous day's trades, the bars of the six days before.
        "raw_trades": AssetIn(partition_mapping=previous_days_of_same_symbol(1, include_current=True), metadata=_HISTORY),
        "raw_klines": AssetIn(partition_mapping=previous_days_of_same_symbol(VPIN_WINDOW_DAYS, include_current=True),
                              metadata=_HISTORY),
    },
    partitions_def=DAY_SYMBOL,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
)
def liquidity(
    context: AssetExecutionContext,
    partition_store: PartitionStoreResource,
    raw_book: PartitionedInput,
    raw_trades: PartitionedInput,
    raw_klines: PartitionedInput,
    raw_quotes: PartitionedInput,
):
    inputs = {"raw_book": raw_book, "raw_trades": raw_trades, "raw_klines": raw_klines, "raw_quotes": raw_quotes}
    by_symbol: dict[str, list[str]] = defaultdict(list)
    for day, symbol in run_partitions(context):
        by_symbol[symbol].append(day)
    store = partition_store.store
    # Consecutive days of a symbol share their VPIN windows' reads.
    chunks = [LiquidityChunk(store, inputs, symbol, run) for symbol, days in by_symbol.items()
              for run in consecutive_runs(days, DAYS_PER_CHUNK)]
    run = run_chunks(context, "liquidity", liquidity_chunk, chunks)
    yield Output(run.output("liquidity_metrics"), output_name="liquidity_metrics")
    yield Output(run.output("liquidity_daily"), output_name="liquidity_daily")


LIQUIDITY_ASSETS = [liquidity]
