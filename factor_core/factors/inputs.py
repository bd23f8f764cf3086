"""What the factor kernels read: hourly bars resampled from 1-minute klines, and the optional inputs.

Every input is a NumPy array under a name; together they form the namespace
the registry's declared inputs refer to:

* the bar columns ``BAR_COLUMNS`` (``ts`` / ``close_time`` as int64 ns under
  ``ts_ns`` / ``close_time_ns``) and ``n_bars``;
* ``funding.<column>`` (``FUNDING_COLUMNS``);
* ``liquidity.<column>`` (minute liquidity) and ``liquidity.bar_index`` (the
  bar each minute row falls in);
* ``liquidity_daily.<column>`` (one row per UTC day) and ``liquidity_daily.ts``
  (the day's midnight, int64 ns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from factor_core import kernels as K
from factor_core.columns import float64_column, ts_ns

BAR_FREQ = "1h"
BAR_NS = int(pd.Timedelta(BAR_FREQ).value)
BARS_PER_DAY = 24

#: Columns produced by ``resample_bars`` (in this order), before the factor columns.
BAR_COLUMNS: tuple[str, ...] = (
    "ts",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "n_minutes",
    "realized_var",
    "vwap",
)

BAR_COLUMN_DOCS: dict[str, tuple[str, str]] = {
    "ts": ("bar open time (label), UTC", "timestamp"),
    "close_time": ("ts + 1h: the time the row's values become known", "timestamp"),
    "open": ("first valid 1-minute open in the bar", "quote currency"),
    "high": ("max 1-minute high", "quote currency"),
    "low": ("min 1-minute low", "quote currency"),
    "close": ("last valid 1-minute close", "quote currency"),
    "volume": ("sum of 1-minute base volume", "base units"),
    "quote_volume": ("sum of 1-minute quote volume", "quote currency"),
    "trade_count": ("sum of 1-minute trade counts", "trades"),
    "taker_buy_volume": ("base volume bought by aggressive buyers", "base units"),
    "taker_buy_quote_volume": ("quote volume bought by aggressive buyers", "quote currency"),
    "n_minutes": ("1-minute bars with valid prices in the bar (0..60)", "minutes"),
    "realized_var": (
        "sum of squared 1-minute log returns close_i/close_prev (prev = previous valid minute, "
        "possibly in the previous bar; the input's first minute uses close/open)",
        "log-return^2",
    ),
    "vwap": ("quote_volume / volume of the bar; NaN when volume is 0", "quote currency"),
}

#: Bars before ``t`` that a bar column of ``t`` reads (0 when absent): the first minute of a
#: bar's realised variance returns from the previous bar's last valid close. (The forward-filled
#: prices of an empty bar read further back; that is not counted.)
BAR_COLUMN_LOOKBACK: dict[str, int] = {"realized_var": 1}

TS_NS = "ts_ns"
CLOSE_TIME_NS = "close_time_ns"
N_BARS = "n_bars"
FUNDING = "funding"
LIQUIDITY = "liquidity"
LIQUIDITY_DAILY = "liquidity_daily"
#: Columns of the funding frame (``schemas.FUNDING``) the registry may read.
FUNDING_COLUMNS: tuple[str, ...] = ("ts", "funding_rate")
LIQUIDITY_BAR_INDEX = f"{LIQUIDITY}.bar_index"
LIQUIDITY_DAILY_TS = f"{LIQUIDITY_DAILY}.ts"
#: Names always present in the namespace, besides the bar columns and the optional-input columns.
DERIVED_INPUTS: tuple[str, ...] = (TS_NS, CLOSE_TIME_NS, N_BARS, LIQUIDITY_BAR_INDEX, LIQUIDITY_DAILY_TS)

_KLINE_FLOATS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")



def to_datetime(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize("UTC")


def bar_arrays(klines: pd.DataFrame, bar_ns: int = BAR_NS) -> dict[str, np.ndarray]:
    """``BAR_COLUMNS`` (times as ``ts_ns`` / ``close_time_ns``) of 1-minute klines resampled to ``bar_ns``."""
    missing = [c for c in ("open_time", *_KLINE_FLOATS, "trade_count") if c not in klines.columns]
    if missing:
        raise ValueError(f"klines: missing column(s) {missing}; expected the schemas.KLINES columns")
    ts = ts_ns(klines["open_time"])
    cols = {c: float64_column(klines, c) for c in _KLINE_FLOATS}
    tc = klines["trade_count"]
    tc = np.asarray(tc.fillna(0).to_numpy(dtype=np.int64) if tc.hasnans else tc.to_numpy(dtype=np.int64))

    def run(ts, cols, tc):
        return K.resample_minutes(
            ts, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], cols["quote_volume"],
            tc, cols["taker_buy_volume"], cols["taker_buy_quote_volume"], bar_ns)

    try:  # the pass that finds the bars also checks that ts is sorted
        bars = run(ts, cols, tc)
    except ValueError:  # unsorted input: stable sort, then the same passes
        order = np.argsort(ts, kind="stable")
        bars = run(ts[order], {name: col[order] for name, col in cols.items()}, tc[order])
    out = bars._asdict()
    start = out.pop("bar_start_ns")
    return {TS_NS: start, CLOSE_TIME_NS: start + bar_ns, **out, "vwap": K.safe_ratio(bars.quote_volume, bars.volume)}


def bars_frame(arrays: Mapping[str, np.ndarray], extra: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """``BAR_COLUMNS`` as a DataFrame (``ts`` / ``close_time`` as UTC timestamps), then ``extra`` columns."""
    data: dict[str, object] = {"ts": to_datetime(arrays[TS_NS]), "close_time": to_datetime(arrays[CLOSE_TIME_NS])}
    for col in BAR_COLUMNS[2:]:
        data[col] = arrays[col]
    if extra:
        data.update(extra)
    return pd.DataFrame(data, copy=False)


def resample_bars(klines: pd.DataFrame, freq: str = BAR_FREQ) -> pd.DataFrame:
    """1-minute bars (``schemas.KLINES`` columns, one symbol) -> bars of ``freq`` labelled by open time.

    Columns: ``BAR_COLUMNS`` (see ``BAR_COLUMN_DOCS``). Every bar between the
    first and the last input minute is present. An hour without any valid
    minute is emitted with open = high = low = close = the previous close
    (forward fill), zero volumes and ``n_minutes = 0`` (NaN prices only before
    the first valid minute). Unsorted input is sorted; duplicates are not removed.
    """
    bar_ns = int(pd.Timedelta(freq).value)
    if bar_ns <= 0:
        raise ValueError(f"freq must be positive, got {freq!r}")
    return bars_frame(bar_arrays(klines, bar_ns))


_LIQUIDITY_HINT = ("re-materialize the partition if it was written by an older version, or update "
                   "factor_core/factors/liquidity_inputs.py if factor_core.liquidity renamed the column")


def _require(frame: pd.DataFrame, what: str, columns: Iterable[str], needed_by: Mapping[str, str], hint: str) -> None:
    """Raise a ValueError naming the missing columns and the factors that read them."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        users = sorted({needed_by[f"{what}.{c}"] for c in missing if f"{what}.{c}" in needed_by})
        raise ValueError(
            f"{what}: missing column(s) {missing}, read by {', '.join(users) or 'the join'}; the frame has "
            f"{list(frame.columns)}: {hint}")


def funding_arrays(funding: pd.DataFrame | None, needed_by: Mapping[str, str]) -> dict[str, np.ndarray]:
    """``funding.ts`` (int64 ns, sorted) and ``funding.funding_rate``; empty arrays without funding."""
    if funding is None or len(funding) == 0:
        return {f"{FUNDING}.ts": np.empty(0, dtype=np.int64), f"{FUNDING}.funding_rate": np.empty(0)}
    _require(funding, FUNDING, FUNDING_COLUMNS, needed_by, "pass rows of schemas.FUNDING")
    ts = ts_ns(funding["ts"])
    order = np.argsort(ts, kind="stable")
    return {f"{FUNDING}.ts": ts[order], f"{FUNDING}.funding_rate": float64_column(funding, "funding_rate")[order]}


def liquidity_arrays(liquidity: pd.DataFrame | None, columns: Iterable[str], t0_ns: int, bar_ns: int,
                     needed_by: Mapping[str, str]) -> dict[str, np.ndarray]:
    """``liquidity.<column>`` of the minute rows and ``liquidity.bar_index``; nothing without liquidity."""
    if liquidity is None or len(liquidity) == 0:
        return {LIQUIDITY_BAR_INDEX: np.empty(0, dtype=np.int64)}
    columns = tuple(columns)
    _require(liquidity, LIQUIDITY, ("ts", *columns), needed_by, _LIQUIDITY_HINT)
    out = {LIQUIDITY_BAR_INDEX: np.floor_divide(ts_ns(liquidity["ts"]) - t0_ns, bar_ns)}
    out.update({f"{LIQUIDITY}.{c}": float64_column(liquidity, c) for c in columns})
    return out


def liquidity_daily_arrays(daily: pd.DataFrame | None, columns: Iterable[str],
                           needed_by: Mapping[str, str]) -> dict[str, np.ndarray]:
    """``liquidity_daily.<column>`` and ``liquidity_daily.ts`` (the UTC day's midnight), sorted by day.

    A row stamped inside a day keys that day; two rows for one day are an error.
    """
    if daily is None or len(daily) == 0:
        return {}
    columns = tuple(columns)
    if "ts" not in daily.columns:
        raise ValueError("liquidity_daily: missing column 'ts' (the UTC day's 00:00)")
    _require(daily, LIQUIDITY_DAILY, columns, needed_by, _LIQUIDITY_HINT)
    day = np.floor_divide(ts_ns(daily["ts"]), K.NS_PER_DAY) * K.NS_PER_DAY
    order = np.argsort(day, kind="stable")
    day = day[order]
    if day.size > 1 and (np.diff(day) == 0).any():
        dup = to_datetime(day[1:][np.diff(day) == 0][:3]).strftime("%Y-%m-%d").tolist()
        raise ValueError(f"liquidity_daily: more than one row for UTC day(s) {dup}")
    out = {LIQUIDITY_DAILY_TS: day}
    out.update({f"{LIQUIDITY_DAILY}.{c}": float64_column(daily, c)[order] for c in columns})
    return out
