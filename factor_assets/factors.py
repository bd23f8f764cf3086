"""Factor layer: hourly bars and the Numba factor set per UTC day x symbol.

The look-back that crosses midnight comes from the previous ``WARMUP_DAYS``
days of the same symbol through a partition mapping, so the graph shows the
dependency and a day's values equal a single pass over the whole history once
the warm-up is past.

Inputs of day d (same symbol): ``raw_klines`` d-WARMUP_DAYS..d, ``raw_funding``
d-1..d (rates settled strictly before each bar's close_time), ``liquidity_metrics``
of d (``liq_*``, required) and ``liquidity_daily`` of d-1 only (``liqd_*``: a day's
summary is known at its end, so it is joined to the next day's bars, never to
its own). Nothing of d+1 is read.

A range run is cut into chunks of consecutive days of one symbol: a chunk
reads its days plus the warm-up once, computes the factors in one pass and
stages one file per day.
"""


from collections import defaultdict
from dataclasses import dataclass

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, run_chunks
from factor_assets.day_ranges import consecutive_runs, day_span, shift_day
from factor_assets.partition_keys import run_partitions
from factor_core.factors import FACTORS, LIQUIDITY_DAILY_LAG_DAYS, WARMUP_DAYS, compute_factor_bars
from factor_core.partition_store import PartitionedInput, PartitionFileError, PartitionStore, rematerialize_hint
from partitions import DAY_SYMBOL, previous_days_of_same_symbol
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions

FACTOR_GROUP = "factors"
#: Days per chunk: the warm-up is read once per chunk, so long chunks amortise it.
DAYS_PER_CHUNK = 64
_HISTORY = {"allow_missing_partitions": True}


def _of_symbol(frame: pd.DataFrame, time_column: str) -> pd.DataFrame | None:
    """Rows time-sorted, without the partition columns; None when there are none."""
    if frame.empty:
        return None
    return frame.sort_values(time_column, kind="stable").drop(columns=["date", "symbol"]).reset_index(drop=True)


@dataclass(frozen=True)
class FactorChunk:
    store: PartitionStore
    inputs: dict[str, PartitionedInput]
    symbol: str
    days: tuple[str, ...]  # consecutive days

    @property
    def partitions(self) -> list[str]:
        return [f"{day}|{self.symbol}" for day in self.days]


def factor_chunk(chunk: FactorChunk) -> ChunkResult:
    """The factor bars of a chunk's days, from one pass over the days plus their warm-up (worker process)."""
    first, last, symbol = chunk.days[0], chunk.days[-1], chunk.symbol
    klines = chunk.inputs["raw_klines"].symbol_frame(symbol, day_span(shift_day(first, -WARMUP_DAYS), last))
    have = set(klines["date"]) if not klines.empty else set()
    missing = [d for d in chunk.days if d not in have]
    if missing:
        raise PartitionFileError(
            f"raw_klines of {symbol} has no data for {missing[:5]}; materialize it with: "
            f"{rematerialize_hint('raw_klines', {'date': missing[0], 'symbol': symbol})}"
        )
    funding = chunk.inputs["raw_funding"].symbol_frame(symbol, day_span(shift_day(first, -1), last))
    minute = chunk.inputs["liquidity_metrics"].symbol_frame(symbol, chunk.days)
    daily = chunk.inputs["liquidity_daily"].symbol_frame(
        symbol, day_span(shift_day(first, -LIQUIDITY_DAILY_LAG_DAYS), shift_day(last, -LIQUIDITY_DAILY_LAG_DAYS))
    )
    bars = compute_factor_bars(
        _of_symbol(klines, "open_time"),
        funding=_of_symbol(funding, "ts"),
        liquidity=_of_symbol(minute, "ts"),
        liquidity_daily=_of_symbol(daily, "ts"),
    )
    bar_day = bars["ts"].dt.strftime("%Y-%m-%d")
    have_daily = set(daily["date"]) if not daily.empty else set()
    history_days = len(have - set(chunk.days))
    result = ChunkResult(staged={"factor_bars": []}, metadata={"factor_bars": {}})
    for day in chunk.days:
        rows = bars[bar_day == day].reset_index(drop=True)
        result.staged["factor_bars"].append(chunk.store.stage_frame("factor_bars", {"date": day, "symbol": symbol}, rows))
        metadata = {
            "rows": MetadataValue.int(len(rows)),
            "warmup_days_available": MetadataValue.int(min(WARMUP_DAYS, history_days + chunk.days.index(day))),
        }
        if shift_day(day, -LIQUIDITY_DAILY_LAG_DAYS) not in have_daily:
            metadata["note"] = MetadataValue.text("no liquidity_daily for the previous day: liqd_* are NaN")
        result.metadata["factor_bars"][f"{day}|{symbol}"] = metadata
    return result


@asset(
    group_name=FACTOR_GROUP,
    partitions_def=DAY_SYMBOL,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "numba"},
    automation_condition=keep_fresh(same_partition=["liquidity_metrics"]),
    ins={
        "raw_klines": AssetIn(
            partition_mapping=previous_days_of_same_symbol(WARMUP_DAYS, include_current=True), metadata=_HISTORY
        ),
        "raw_funding": AssetIn(partition_mapping=previous_days_of_same_symbol(1, include_current=True), metadata=_HISTORY),
        # Same partition, required: liq_* must never be silently NaN.
        "liquidity_metrics": AssetIn(),
        # The previous day only (no look-ahead); clipped / absent before the first day of history.
        "liquidity_daily": AssetIn(
            partition_mapping=previous_days_of_same_symbol(LIQUIDITY_DAILY_LAG_DAYS, include_current=False),
            metadata=_HISTORY,
        ),
    },
    description=(
        f"Hourly bars (labelled by open time, values known at close_time) with {len(FACTORS)} factors "
        f"from the factor registry; warm-started from {WARMUP_DAYS} previous days of the same symbol. "
        "liq_*: the day's liquidity_metrics; liqd_*: liquidity_daily of the previous day."
    ),
)
def factor_bars(
    context: AssetExecutionContext,
    partition_store: PartitionStoreResource,
    raw_klines: PartitionedInput,
    raw_funding: PartitionedInput,
    liquidity_metrics: PartitionedInput,
    liquidity_daily: PartitionedInput,
) -> StagedPartitions:
    inputs = {"raw_klines": raw_klines, "raw_funding": raw_funding,
              "liquidity_metrics": liquidity_metrics, "liquidity_daily": liquidity_daily}
    by_symbol: dict[str, list[str]] = defaultdict(list)
    for day, symbol in run_partitions(context):
        by_symbol[symbol].append(day)
    # Consecutive days of a symbol share one warm-up read; a gap starts a new chunk.
    chunks = [
        FactorChunk(partition_store.store, inputs, symbol, run)
        for symbol, days in by_symbol.items()
        for run in consecutive_runs(days, DAYS_PER_CHUNK)
    ]
    return run_chunks(context, "factor_bars", factor_chunk, chunks).output("factor_bars")


FACTOR_ASSETS = [factor_bars]
