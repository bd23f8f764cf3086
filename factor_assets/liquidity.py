"""Liquidity layer: per-minute and daily liquidity per UTC day x symbol, from one step.

``liquidity`` is one multi-asset: each partition's ``raw_book``, ``raw_trades``,
``raw_klines`` and ``raw_quotes`` are read once and give both
``liquidity_metrics`` (``factor_core.liquidity.minute_liquidity``, 1440 rows)
and ``liquidity_daily`` (``compute_daily``, one row). Formulas:
``docs/liquidity.md``. A partition with bars only (no trades, book or quotes,
e.g. from a landing folder) still materializes: the bar-based measures are
computed, the others are null, and its metadata says why, measure by measure.

VPIN rolls across days: day d continues the buckets of day d-1 and sizes them
from the previous days' volume. That state is stored with each
``liquidity_daily`` row (``state``, JSON) and read back through a previous-day
partition mapping onto the asset itself; in a range run consecutive days hand
it on in memory. So a range run equals the same days run one by one.
``factor_bars`` joins the minute frame of the same day (``liq_*``) and the
daily row of the PREVIOUS day (``liqd_*``).
"""


import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetKey, AssetOut, BackfillPolicy, MetadataValue, Output, multi_asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, ChunkRunner
from factor_assets.partition_keys import run_partitions
from factor_core.liquidity import DAILY_KEYS, MINUTE_COLUMNS, LiquidityState, compute_daily, minute_liquidity
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_assets.day_ranges import consecutive_runs, shift_day
from partitions import DAY_SYMBOL, previous_days_of_same_symbol
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions

LIQUIDITY_GROUP = "liquidity"
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


def _previous_state(chunk: LiquidityChunk) -> LiquidityState | None:
    """The state the stored liquidity_daily of the chunk's first day minus one left, if any."""
    day = shift_day(chunk.days[0], -1)
    frame = chunk.inputs["previous_liquidity_daily"].symbol_frame(chunk.symbol, [day])
    if frame.empty or "state" not in frame.columns or not isinstance(frame["state"].iloc[0], str):
        return None
    return LiquidityState.from_json(frame["state"].iloc[0], what=f"liquidity_daily {day}|{chunk.symbol} state")


def liquidity_chunk(chunk: LiquidityChunk) -> ChunkResult:
    """Both liquidity outputs of the chunk's consecutive days, staged, in day order (runs in a worker process)."""
    result = ChunkResult(staged={"liquidity_metrics": [], "liquidity_daily": []},
                         metadata={"liquidity_metrics": {}, "liquidity_daily": {}})
    state = _previous_state(chunk)
    for day in chunk.days:
        book, trades, klines, quotes = (_rows(chunk.inputs[name], day, chunk.symbol) for name in _INPUTS)
        minute = minute_liquidity(book, trades, klines, quotes)
        summary = compute_daily(dt.date.fromisoformat(day), klines=klines, trades=trades, book=book, quotes=quotes,
                                minute=minute, previous=state)
        state = summary.state
        start = pd.Timestamp(day, tz="UTC")
        daily = pd.DataFrame([{"ts": start, "known_at": start + pd.Timedelta(days=1), **summary.values,
                               "state": state.to_json()}], columns=["ts", "known_at", *DAILY_KEYS, "state"])
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
        **{name: AssetIn() for name in _INPUTS},
        # The previous day's rolling VPIN state (absent on the first day of history).
        "previous_liquidity_daily": AssetIn(
            key="liquidity_daily",
            partition_mapping=previous_days_of_same_symbol(1, include_current=False),
            metadata={"allow_missing_partitions": True},
        ),
    },
    # The minute metrics need only the partition's raw data; the daily summary also continues its own
    # previous day (VPIN state).
    internal_asset_deps={
        "liquidity_metrics": {AssetKey(name) for name in _INPUTS},
        "liquidity_daily": {AssetKey(name) for name in _INPUTS} | {AssetKey("liquidity_daily")},
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
    previous_liquidity_daily: PartitionedInput,
):
    inputs = {"raw_book": raw_book, "raw_trades": raw_trades, "raw_klines": raw_klines, "raw_quotes": raw_quotes,
              "previous_liquidity_daily": previous_liquidity_daily}
    by_symbol: dict[str, list[str]] = defaultdict(list)
    for day, symbol in run_partitions(context):
        by_symbol[symbol].append(day)
    store = partition_store.store
    # One chunk per run of consecutive days of a symbol: the VPIN state is handed on from day to day.
    # (A symbol's days are one sequential chain, so they are never split across workers.)
    chunks = [LiquidityChunk(store, inputs, symbol, run) for symbol, days in by_symbol.items()
              for run in consecutive_runs(days, 10_000)]
    staged = defaultdict(list)
    for result in ChunkRunner("liquidity").run(liquidity_chunk, chunks):
        for asset, files in result.staged.items():
            staged[asset].extend(files)
        for asset, per_partition in result.metadata.items():
            for key, metadata in per_partition.items():
                context.add_asset_metadata(metadata, asset_key=asset, partition_key=key)
    yield Output(StagedPartitions(staged["liquidity_metrics"]), output_name="liquidity_metrics")
    yield Output(StagedPartitions(staged["liquidity_daily"]), output_name="liquidity_daily")


LIQUIDITY_ASSETS = [liquidity]
