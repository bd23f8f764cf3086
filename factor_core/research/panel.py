"""The cross-sectional factor panel of one UTC day: factors, their normalisations, and labels.

One row per (hour ``ts``, symbol) for the symbols that are members of the
universe at that hour (point-in-time: a symbol delisted later keeps its past
rows; after its delisting it has none). Per row: the raw factor values (as in
``factor_bars``, known at ``close_time = ts + 1h``), their cross-sectional
rank in [0, 1] and z-score among that hour's members, and the labels
``fwd_ret_{h}h = close(ts + h) / close(ts) - 1`` (simple return from the close
of the stamped hour to the close h hours later).

Normalisations use only the hour's own cross-section, so nothing stamped at
``ts`` depends on a later value; the labels are the only forward-looking
columns and are never used as inputs. A label is null when the future close
is not in the given bars (e.g. the next day is not materialized yet) or the
symbol is no longer a member then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from factor_core.columns import ts_ns
from factor_core.research.catalog import PLANTED_FACTOR, factors_in
from factor_core.research.strategies import RANK_PREFIX, Z_PREFIX

HORIZONS_H: tuple[int, ...] = (1, 4, 24)
KEYS = ("ts", "close_time", "date", "symbol")
#: z-scores are winsorised at this many standard deviations (a single outlier cannot dominate a composite).
Z_CLIP = 3.0
HOUR = pd.Timedelta(hours=1)
#: Start of a membership interval for symbols listed before observation began.
HISTORY_START = pd.Timestamp("1970-01-01", tz="UTC")


def fwd_column(horizon_h: int) -> str:
    return f"fwd_ret_{horizon_h}h"


def membership_from_universe(universe: pd.DataFrame, symbols: Iterable[str] = ()) -> pd.DataFrame:
    """``symbol_universe`` rows (``listed_on`` / ``delisted_on`` ISO dates) -> membership intervals.

    The same rule as ``factor_core.universe.is_listed`` (one definition of membership
    for the panel, the automation conditions and the ingestion triggers): a symbol is a
    member from ``listed_on`` 00:00 UTC through the end of ``delisted_on`` (it traded on
    the day it was delisted), i.e. ``listed_from = listed_on`` (inclusive) and
    ``listed_until = delisted_on + 1 day`` (exclusive). A null ``listed_on`` means
    "listed before observation began" (a member from the start of history); a null
    ``delisted_on`` means still listed. ``symbols`` the table does not know (a symbol
    with data but no universe row) are members throughout, as ``is_listed`` says.
    """
    for column in ("symbol", "listed_on", "delisted_on"):
        if column not in universe.columns:
            raise ValueError(f"symbol_universe: missing column {column!r}; got {list(universe.columns)}")
    known = universe["symbol"].astype(str)
    unknown = sorted(set(map(str, symbols)) - set(known))
    listed_on = pd.to_datetime(universe["listed_on"], utc=True)
    delisted_on = pd.to_datetime(universe["delisted_on"], utc=True)
    membership = pd.DataFrame({
        "symbol": pd.concat([known, pd.Series(unknown, dtype=str)], ignore_index=True),
        "listed_from": pd.concat([listed_on.fillna(HISTORY_START), pd.Series([HISTORY_START] * len(unknown))],
                                 ignore_index=True),
        "listed_until": pd.concat([delisted_on + pd.Timedelta(days=1), pd.Series([pd.NaT] * len(unknown))],
                                  ignore_index=True),
    })
    membership["listed_from"] = pd.to_datetime(membership["listed_from"], utc=True)
    membership["listed_until"] = pd.to_datetime(membership["listed_until"], utc=True)
    return membership


def member_mask(symbols: pd.Series, ts: pd.Series, membership: pd.DataFrame | None) -> np.ndarray:
    """True where ``symbols[i]`` is a member at ``ts[i]`` (every row is one without membership)."""
    if membership is None:
        return np.ones(len(symbols), dtype=bool)
    for column in ("symbol", "listed_from", "listed_until"):
        if column not in membership.columns:
            raise ValueError(f"membership: missing column {column!r} (symbol, listed_from, listed_until)")
    mask = np.zeros(len(symbols), dtype=bool)
    ts_values = ts_ns(ts)
    sym_values = symbols.astype(str).to_numpy()
    starts = ts_ns(membership["listed_from"])
    ends = ts_ns(membership["listed_until"].fillna(pd.Timestamp.max.tz_localize("UTC").floor("D")))
    for symbol, start, end in zip(membership["symbol"].astype(str), starts, ends, strict=True):
        mask |= (sym_values == symbol) & (ts_values >= start) & (ts_values < end)
    return mask


def planted_signal_rows(signals: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The simulator's ``planted_signal`` frames (per symbol) as an extra panel column.

    A signal published at hour boundary ``known_at = T`` is known at ``T`` and
    drives the return over ``[T, T + 1h)``: it belongs to the bar whose
    ``close_time`` is ``T``, i.e. the row stamped ``ts = T - 1h``, whose
    ``fwd_ret_1h`` is exactly that return.
    """
    frames = []
    for symbol, frame in signals.items():
        frames.append(pd.DataFrame({
            "ts": pd.to_datetime(frame["known_at"], utc=True) - HOUR,
            "symbol": symbol,
            PLANTED_FACTOR: frame["signal"].astype("float64").to_numpy(),
        }))
    if not frames:
        return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), "symbol": pd.Series(dtype=str),
                             PLANTED_FACTOR: pd.Series(dtype="float64")})
    return pd.concat(frames, ignore_index=True)


def cross_sectional_rank(values: pd.DataFrame, ts: pd.Series) -> pd.DataFrame:
    """Per hour, ``(average rank - 1) / (n - 1)`` among the finite values: 0 = lowest, 1 = highest.

    NaN where fewer than two symbols have a finite value (a rank among one carries nothing).
    """
    finite = values.where(np.isfinite(values))
    grouped = finite.groupby(ts.to_numpy())
    ranks = grouped.rank(method="average")
    count = grouped.transform("count")
    return ((ranks - 1.0) / (count - 1.0)).where(count >= 2)


def cross_sectional_zscore(values: pd.DataFrame, ts: pd.Series, clip: float = Z_CLIP) -> pd.DataFrame:
    """Per hour, ``(x - mean) / std`` (population std, ddof = 0) among the finite values, clipped to +-clip.

    NaN where fewer than two symbols have a value or the values do not differ.
    """
    finite = values.where(np.isfinite(values))
    grouped = finite.groupby(ts.to_numpy())
    mean = grouped.transform("mean")
    std = grouped.transform(lambda x: x.std(ddof=0))
    count = grouped.transform("count")
    z = (finite - mean) / std.where(std > 0)
    return z.where(count >= 2).clip(-clip, clip)


def _attach_extras(bars: pd.DataFrame, extras: Sequence[pd.DataFrame]) -> pd.DataFrame:
    for extra in extras:
        if extra is None:
            continue
        missing = [c for c in ("ts", "symbol") if c not in extra.columns]
        if missing:
            raise ValueError(f"extra panel column frame lacks key column(s) {missing}; give ts (bar open) and symbol")
        value_columns = [c for c in extra.columns if c not in ("ts", "symbol")]
        clash = [c for c in value_columns if c in bars.columns]
        if clash:
            raise ValueError(f"extra panel column(s) {clash} already in factor_bars")
        keyed = extra.assign(ts=pd.to_datetime(extra["ts"], utc=True))
        duplicated = keyed.duplicated(["ts", "symbol"])
        if duplicated.any():
            first = keyed[duplicated].iloc[0]
            raise ValueError(f"extra panel column(s) {value_columns}: more than one row for "
                             f"symbol {first['symbol']} at ts {first['ts']}")
        bars = bars.merge(keyed, on=["ts", "symbol"], how="left")
    return bars


def _check_bars(bars: pd.DataFrame, what: str) -> None:
    missing = [c for c in ("ts", "symbol", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; expected factor_bars rows of every symbol")
    duplicated = bars.duplicated(["ts", "symbol"])
    if duplicated.any():
        first = bars[duplicated].iloc[0]
        raise ValueError(f"{what}: more than one bar for symbol {first['symbol']} at ts {first['ts']}")


def build_factor_panel(
    bars: pd.DataFrame,
    *,
    day: str | None = None,
    next_day_bars: pd.DataFrame | None = None,
    membership: pd.DataFrame | None = None,
    extras: Iterable[pd.DataFrame] = (),
    horizons_h: Sequence[int] = HORIZONS_H,
) -> pd.DataFrame:
    """The ``factor_panel`` rows of one UTC day (or of every day in ``bars`` when ``day`` is None).

    ``bars``: factor_bars of the day, every symbol (``ts``, ``symbol``, ``close`` and
    factor columns; other columns are ignored). ``next_day_bars``: the next day's
    factor_bars (only ``ts``, ``symbol``, ``close`` are read) for the labels of the
    last hours; None leaves those labels null. ``membership``: ``symbol``,
    ``listed_from`` (inclusive), ``listed_until`` (exclusive, null = listed) as
    timestamps (see ``membership_from_universe``); None = every symbol with a bar.
    ``extras``: frames keyed by (``ts`` = bar open, ``symbol``) adding hourly factors such
    as ``sentiment_score`` or ``planted_signal`` (see ``planted_signal_rows``).
    """
    _check_bars(bars, "factor_bars")
    frame = bars.assign(ts=pd.to_datetime(bars["ts"], utc=True))
    frame = _attach_extras(frame, list(extras))
    if day is not None:
        frame = frame[frame["ts"].dt.strftime("%Y-%m-%d") == day]
    frame = frame[member_mask(frame["symbol"], frame["ts"], membership)]
    frame = frame.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    factors = factors_in(frame.columns)

    panel = pd.DataFrame({
        "ts": frame["ts"],
        "close_time": frame["ts"] + HOUR,
        "date": frame["ts"].dt.strftime("%Y-%m-%d"),
        "symbol": frame["symbol"].astype(str),
        "close": frame["close"].astype("float64"),
    })
    raw = frame[factors].astype("float64")
    raw = raw.where(np.isfinite(raw))  # inf (a division by zero upstream) is no value
    ranks = cross_sectional_rank(raw, panel["ts"]).add_prefix(RANK_PREFIX)
    zscores = cross_sectional_zscore(raw, panel["ts"]).add_prefix(Z_PREFIX)
    labels = forward_returns(panel, [bars] + ([next_day_bars] if next_day_bars is not None else []),
                             membership, horizons_h)
    return pd.concat([panel, raw, ranks, zscores, labels], axis=1)


def forward_returns(
    panel: pd.DataFrame,
    price_frames: Sequence[pd.DataFrame],
    membership: pd.DataFrame | None,
    horizons_h: Sequence[int] = HORIZONS_H,
) -> pd.DataFrame:
    """``fwd_ret_{h}h = close(ts + h) / close(ts) - 1`` per panel row, closes looked up by exact timestamp.

    Null where either close is missing or the symbol is not a member at ``ts + h``.
    """
    prices = []
    for i, frame in enumerate(price_frames):
        _check_bars(frame, "factor_bars" if i == 0 else "next day's factor_bars")
        prices.append(pd.DataFrame({"ts": pd.to_datetime(frame["ts"], utc=True),
                                    "symbol": frame["symbol"].astype(str),
                                    "close": frame["close"].astype("float64")}))
    closes = pd.concat(prices, ignore_index=True).drop_duplicates(["ts", "symbol"], keep="first")
    closes = closes[member_mask(closes["symbol"], closes["ts"], membership)]
    closes = closes[np.isfinite(closes["close"]) & (closes["close"] > 0)]
    lookup = pd.Series(closes["close"].to_numpy(), index=pd.MultiIndex.from_arrays([closes["ts"], closes["symbol"]]))
    now = panel["close"].to_numpy()
    out = {}
    for h in horizons_h:
        later_keys = pd.MultiIndex.from_arrays([panel["ts"] + pd.Timedelta(hours=h), panel["symbol"]])
        later = lookup.reindex(later_keys).to_numpy(dtype="float64")
        with np.errstate(invalid="ignore", divide="ignore"):
            out[fwd_column(h)] = np.where(now > 0, later / now - 1.0, np.nan)
    return pd.DataFrame(out, index=panel.index)
