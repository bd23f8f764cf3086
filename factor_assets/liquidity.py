"""Liquidity layer: per-minute and daily order-book / trade liquidity per UTC day x symbol.

``liquidity_metrics`` is ``factor_core.liquidity.minute_liquidity`` of one
partition's ``raw_book``, ``raw_trades`` and ``raw_klines``; ``liquidity_daily``
is ``factor_core.liquidity.daily_liquidity`` of the same partition (computed
from the stored minute frame plus the day's trades and klines), one row per
partition. Formulas: ``docs/liquidity.md``.

Both read only their own (day, symbol) partition, so a range run equals the
same partitions run one by one. ``factor_bars`` joins the minute frame of the
same day (``liq_*``) and the daily row of the PREVIOUS day (``liqd_*``).
"""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset

from factor_assets.partition_keys import run_partitions
from factor_core.liquidity import DAILY_KEYS, MINUTE_COLUMNS, daily_liquidity, minute_liquidity
from partitions import DAY_SYMBOL

LIQUIDITY_GROUP = "liquidity"
_PARTITION_COLUMNS = ["date", "symbol"]


def _by_partition(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """``{(day, symbol): rows without the partition columns}`` of an input frame."""
    if frame.empty or not set(_PARTITION_COLUMNS) <= set(frame.columns):
        return {}
    return {
        (day, symbol): part.drop(columns=_PARTITION_COLUMNS).reset_index(drop=True)
        for (day, symbol), part in frame.groupby(["date", "symbol"], sort=False)
    }


def _partition_frame(groups: dict, frame: pd.DataFrame, day: str, symbol: str) -> pd.DataFrame:
    """The rows of one partition; a stored partition with zero rows gives an empty frame, not an error."""
    part = groups.get((day, symbol))
    if part is not None:
        return part
    return frame.drop(columns=[c for c in _PARTITION_COLUMNS if c in frame.columns]).iloc[0:0]


def _finite_mean(values: pd.Series) -> float:
    v = values.to_numpy(dtype=float, na_value=np.nan)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _float_metadata(values: dict[str, float]) -> dict[str, MetadataValue]:
    """Finite values as float metadata; the undefined ones listed under ``undefined``."""
    out: dict[str, MetadataValue] = {k: MetadataValue.float(float(v)) for k, v in values.items() if np.isfinite(v)}
    undefined = sorted(k for k, v in values.items() if not np.isfinite(v))
    if undefined:
        out["undefined"] = MetadataValue.json(undefined)
    return out


_SAME_PARTITION = {"raw_book": AssetIn(), "raw_trades": AssetIn(), "raw_klines": AssetIn()}


@asset(
    group_name=LIQUIDITY_GROUP,
    partitions_def=DAY_SYMBOL,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "numba"},
    ins=_SAME_PARTITION,
    description=(
        "Per-minute liquidity (1440 rows per day, ts = minute open): quoted and effective spread, "
        "depth within ±10/±50 bps, depth and trade imbalance, counts and volumes, from the partition's "
        "raw_book, raw_trades and raw_klines (factor_core.liquidity.minute_liquidity). A row uses "
        "nothing after ts + 1 min."
    ),
)
def liquidity_metrics(
    context: AssetExecutionContext, raw_book: pd.DataFrame, raw_trades: pd.DataFrame, raw_klines: pd.DataFrame
) -> pd.DataFrame:
    book, trades, klines = _by_partition(raw_book), _by_partition(raw_trades), _by_partition(raw_klines)
    outputs = []
    for day, symbol in run_partitions(context):
        minute = minute_liquidity(
            _partition_frame(book, raw_book, day, symbol),
            _partition_frame(trades, raw_trades, day, symbol),
            _partition_frame(klines, raw_klines, day, symbol),
        )
        outputs.append(minute.assign(date=day, symbol=symbol))
    result = pd.concat(outputs, ignore_index=True)
    n = len(result)
    context.add_output_metadata(
        {
            "partitions": MetadataValue.int(len(outputs)),
            "minutes": MetadataValue.int(n),
            "mean_quoted_spread_bps": MetadataValue.float(_finite_mean(result["quoted_spread_bps"])),
            "mean_effective_spread_bps": MetadataValue.float(_finite_mean(result["effective_spread_bps"])),
            "mean_depth_50bps_usd": MetadataValue.float(_finite_mean(result["depth_50bps_usd"])),
            "minutes_with_book": MetadataValue.float(float((result["n_snapshots"] > 0).mean()) if n else 0.0),
            "minutes_with_trades": MetadataValue.float(float((result["n_trades"] > 0).mean()) if n else 0.0),
        }
    )
    return result[[*MINUTE_COLUMNS, *_PARTITION_COLUMNS]]


@asset(
    group_name=LIQUIDITY_GROUP,
    partitions_def=DAY_SYMBOL,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "numba"},
    ins={"liquidity_metrics": AssetIn(), "raw_trades": AssetIn(), "raw_klines": AssetIn()},
    description=(
        "Daily liquidity summary, one row per day x symbol (ts = the day's 00:00 UTC, known_at = next "
        "00:00): mean spreads and depth, Kyle's lambda, Amihud, Roll and Corwin-Schultz spreads, VPIN "
        "(factor_core.liquidity.daily_liquidity). factor_bars joins it to the NEXT day's bars (liqd_*)."
    ),
)
def liquidity_daily(
    context: AssetExecutionContext,
    liquidity_metrics: pd.DataFrame,
    raw_trades: pd.DataFrame,
    raw_klines: pd.DataFrame,
) -> pd.DataFrame:
    minutes, trades, klines = _by_partition(liquidity_metrics), _by_partition(raw_trades), _by_partition(raw_klines)
    rows = []
    for day, symbol in run_partitions(context):
        minute = _partition_frame(minutes, liquidity_metrics, day, symbol)
        summary = daily_liquidity(
            None,  # the book enters through the stored minute frame
            _partition_frame(trades, raw_trades, day, symbol),
            _partition_frame(klines, raw_klines, day, symbol),
            minute=minute,
        )
        start = pd.Timestamp(day, tz="UTC")
        rows.append({"ts": start, "known_at": start + pd.Timedelta(days=1), **summary, "date": day, "symbol": symbol})
    result = pd.DataFrame(rows, columns=["ts", "known_at", *DAILY_KEYS, *_PARTITION_COLUMNS])
    result["ts"] = result["ts"].astype("datetime64[ns, UTC]")
    result["known_at"] = result["known_at"].astype("datetime64[ns, UTC]")
    metadata: dict[str, MetadataValue] = {"partitions": MetadataValue.int(len(rows))}
    if len(rows) == 1:
        metadata.update(_float_metadata({k: rows[0][k] for k in DAILY_KEYS}))
    else:
        metadata.update(
            _float_metadata({f"mean_{k}": _finite_mean(result[k]) for k in
                             ("quoted_spread_bps", "effective_spread_bps", "kyle_lambda_bps_per_musd", "vpin")})
        )
    context.add_output_metadata(metadata)
    return result


LIQUIDITY_ASSETS = [liquidity_metrics, liquidity_daily]
