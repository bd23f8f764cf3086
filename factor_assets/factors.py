"""Factor layer: hourly bars and the Numba factor set per UTC day x symbol.

The look-back that crosses midnight comes from the previous ``WARMUP_DAYS``
days of the same symbol through a partition mapping, so the graph shows the
dependency and a day's values equal a single pass over the whole history once
the warm-up is past.
"""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.partition_keys import run_partitions
from factor_core.factors import FACTORS, WARMUP_DAYS, compute_factor_bars
from partitions import DAY_SYMBOL, previous_days_of_same_symbol

FACTOR_GROUP = "factors"
_HISTORY = {"allow_missing_partitions": True}


def _utc_day(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%d")


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
    },
    description=(
        f"Hourly bars (labelled by open time, values known at close_time) with {len(FACTORS)} factors "
        f"from the factor registry; warm-started from {WARMUP_DAYS} previous days of the same symbol."
    ),
)
def factor_bars(
    context: AssetExecutionContext, raw_klines: pd.DataFrame, raw_funding: pd.DataFrame
) -> pd.DataFrame:
    targets = run_partitions(context)
    wanted_days: dict[str, set[str]] = {}
    for day, symbol in targets:
        wanted_days.setdefault(symbol, set()).add(day)

    available = set(zip(raw_klines.get("date", []), raw_klines.get("symbol", []), strict=True))
    missing = [f"{day}|{symbol}" for day, symbol in targets if (day, symbol) not in available]
    if missing:
        raise ValueError(f"factor_bars: raw_klines has no data for partition(s) {missing[:10]}")

    outputs = []
    for symbol, days in sorted(wanted_days.items()):
        klines = raw_klines[raw_klines["symbol"] == symbol].sort_values("open_time")
        funding = None
        if not raw_funding.empty:
            funding = raw_funding[raw_funding["symbol"] == symbol].sort_values("ts")
        bars = compute_factor_bars(
            klines.drop(columns=["date", "symbol"]).reset_index(drop=True),
            funding=None if funding is None else funding.drop(columns=["date", "symbol"]).reset_index(drop=True),
        )
        bars = bars.assign(date=_utc_day(bars["ts"]), symbol=symbol)
        outputs.append(bars[bars["date"].isin(days)])
    result = pd.concat(outputs, ignore_index=True)
    context.add_output_metadata(
        {
            "warmup_days": MetadataValue.int(WARMUP_DAYS),
            "factors": MetadataValue.int(len(FACTORS)),
            "history_partitions_loaded": MetadataValue.int(len(available)),
        }
    )
    return result


FACTOR_ASSETS = [factor_bars]
