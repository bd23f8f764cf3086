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
"""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.partition_keys import run_partitions
from factor_core.factors import FACTORS, LIQUIDITY_DAILY_LAG_DAYS, WARMUP_DAYS, compute_factor_bars
from partitions import DAY_SYMBOL, previous_days_of_same_symbol

FACTOR_GROUP = "factors"
_HISTORY = {"allow_missing_partitions": True}


def _utc_day(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%d")


def _of_symbol(frame: pd.DataFrame, symbol: str, time_column: str) -> pd.DataFrame | None:
    """One symbol's rows, time-sorted, without the partition columns; None when there are none."""
    if frame.empty:
        return None
    part = frame[frame["symbol"] == symbol]
    if part.empty:
        return None
    return part.sort_values(time_column, kind="stable").drop(columns=["date", "symbol"]).reset_index(drop=True)


@asset(
    group_name=FACTOR_GROUP,
    partitions_def=DAY_SYMBOL,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "numba"},
    ins={
        "raw_klines": AssetIn(
            partition_mapping=previous_days_of_same_symbol(WARMUP_DAYS, include_current=True),
            metadata=_HISTORY,
        ),
        "raw_funding": AssetIn(
            partition_mapping=previous_days_of_same_symbol(1, include_current=True),
            metadata=_HISTORY,
        ),
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
    raw_klines: pd.DataFrame,
    raw_funding: pd.DataFrame,
    liquidity_metrics: pd.DataFrame,
    liquidity_daily: pd.DataFrame,
) -> pd.DataFrame:
    targets = run_partitions(context)
    wanted_days: dict[str, set[str]] = {}
    for day, symbol in targets:
        wanted_days.setdefault(symbol, set()).add(day)

    available = set(zip(raw_klines.get("date", []), raw_klines.get("symbol", []), strict=True))
    missing = [f"{day}|{symbol}" for day, symbol in targets if (day, symbol) not in available]
    if missing:
        raise ValueError(f"factor_bars: raw_klines has no data for partition(s) {missing[:10]}")

    daily_days: set[tuple[str, str]] = set()
    if not liquidity_daily.empty:
        daily_days = set(zip(liquidity_daily["date"], liquidity_daily["symbol"], strict=True))
    previous_day = {
        day: (pd.Timestamp(day) - pd.Timedelta(days=LIQUIDITY_DAILY_LAG_DAYS)).strftime("%Y-%m-%d")
        for day, _ in targets
    }
    without_daily = [f"{day}|{symbol}" for day, symbol in targets if (previous_day[day], symbol) not in daily_days]
    if without_daily:
        context.log.warning(
            f"factor_bars: no liquidity_daily for the previous day of {len(without_daily)} partition(s) "
            f"(first day of history?); liqd_* are NaN there: {without_daily[:10]}"
        )

    outputs = []
    for symbol, days in sorted(wanted_days.items()):
        bars = compute_factor_bars(
            _of_symbol(raw_klines, symbol, "open_time"),
            funding=_of_symbol(raw_funding, symbol, "ts"),
            liquidity=_of_symbol(liquidity_metrics, symbol, "ts"),
            liquidity_daily=_of_symbol(liquidity_daily, symbol, "ts"),
        )
        bars = bars.assign(date=_utc_day(bars["ts"]), symbol=symbol)
        outputs.append(bars[bars["date"].isin(days)])
    result = pd.concat(outputs, ignore_index=True)
    context.add_output_metadata(
        {
            "warmup_days": MetadataValue.int(WARMUP_DAYS),
            "factors": MetadataValue.int(len(FACTORS)),
            "history_partitions_loaded": MetadataValue.int(len(available)),
            "partitions_without_previous_liquidity_daily": MetadataValue.json(without_daily[:100]),
        }
    )
    return result


FACTOR_ASSETS = [factor_bars]
