"""The quote in force at each trade: from ``raw_quotes`` where present, else from a fresh book snapshot.

One place for the matching rule, shared by the effective spread (``liquidity``) and the
raw-layer check that trades print inside the quote (``quality``):

* **quotes** (``schemas.QUOTES``): the quote in force at time ``t`` is the last row with
  ``ts <= t`` (a row is in force from its ``ts`` until the next row's ``ts``). Its age is
  not limited: a quote stream describes the book continuously. Trades before the day's
  first quote are unmatched (the previous day's partition is never read).
* **book snapshots** (top-N, ``schemas.BOOK``): the top level of the last snapshot at or
  before ``t``, only if it is at most ``max_snapshot_age_s`` old (default
  :data:`MAX_SNAPSHOT_AGE_S`): with one snapshot a minute the median snapshot is 30 s old
  when a trade prints and the mid has moved, which biases an effective spread upward.

A matched quote that is crossed, locked (``bid >= ask``), one-sided, non-finite or has a
non-positive size is *invalid*: the trade counts as unmatched for the effective spread
and is reported by the quality check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from factor_core.columns import float64_column
from factor_core.columns import ts_ns as _ts_ns

#: Oldest book snapshot (seconds before the trade) accepted as its quote when there is no quote stream.
MAX_SNAPSHOT_AGE_S = 5.0


@dataclass(frozen=True)
class QuoteSeries:
    """Top-of-book rows sorted by time: ``ts`` (int64 ns), best bid/ask prices and sizes."""

    ts: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_qty: np.ndarray
    ask_qty: np.ndarray
    source: str  # "quotes" or "book"

    def __len__(self) -> int:
        return int(self.ts.size)

    @property
    def valid(self) -> np.ndarray:
        """Finite, positive, two-sided and strictly uncrossed (``bid < ask``)."""
        with np.errstate(invalid="ignore"):
            return (np.isfinite(self.bid) & np.isfinite(self.ask) & (self.bid > 0) & (self.bid < self.ask)
                    & (self.bid_qty > 0) & (self.ask_qty > 0))



def quote_series(quotes: pd.DataFrame) -> QuoteSeries:
    """``raw_quotes`` rows as a :class:`QuoteSeries`, stably sorted by ``ts``."""
    ts = _ts_ns(quotes["ts"])
    order = np.argsort(ts, kind="stable")
    cols = [float64_column(quotes, c)[order] for c in ("bid_price", "ask_price", "bid_qty", "ask_qty")]
    return QuoteSeries(ts[order], cols[0], cols[1], cols[2], cols[3], "quotes")


def book_top(book: pd.DataFrame) -> QuoteSeries:
    """Best bid/ask (highest bid, lowest ask price with a positive size) of each top-N snapshot.

    Depth-band rows (``band_pct`` set, no prices) are ignored; a snapshot missing a side has
    NaN there (so it is invalid as a quote).
    """
    if book is None or len(book) == 0:
        e = np.empty(0)
        return QuoteSeries(np.empty(0, np.int64), e, e.copy(), e.copy(), e.copy(), "book")
    price = float64_column(book, "price")
    qty = float64_column(book, "qty")
    band = float64_column(book, "band_pct") if "band_pct" in book.columns else np.full(len(book), np.nan)
    side = book["side"].astype("string").str.lower()
    is_bid = (side == "bid").fillna(False).to_numpy(dtype=bool)
    is_ask = (side == "ask").fillna(False).to_numpy(dtype=bool)
    keep = (is_bid | is_ask) & ~np.isfinite(band) & np.isfinite(price) & (qty > 0)
    ts = _ts_ns(book["ts"])
    snap_ts = np.unique(ts[~np.isfinite(band)]) if len(book) else np.empty(0, np.int64)
    frame = pd.DataFrame({"ts": ts[keep], "bid": is_bid[keep], "price": price[keep], "qty": qty[keep]})
    bids = frame[frame["bid"]].sort_values(["ts", "price"], ascending=[True, False]).drop_duplicates("ts")
    asks = frame[~frame["bid"]].sort_values(["ts", "price"], ascending=[True, True]).drop_duplicates("ts")
    b = bids.set_index("ts").reindex(snap_ts)
    a = asks.set_index("ts").reindex(snap_ts)
    return QuoteSeries(snap_ts.astype(np.int64), b["price"].to_numpy(float), a["price"].to_numpy(float),
                       b["qty"].to_numpy(float), a["qty"].to_numpy(float), "book")


def quote_in_force(series: QuoteSeries, trade_ts: np.ndarray, *, max_age_s: float | None = None) -> np.ndarray:
    """Row of ``series`` in force at each trade time (-1 if none, or older than ``max_age_s``)."""
    if len(series) == 0 or trade_ts.size == 0:
        return np.full(trade_ts.size, -1, dtype=np.int64)
    j = np.searchsorted(series.ts, trade_ts, side="right") - 1  # last row with ts <= t
    if max_age_s is not None:
        too_old = (j >= 0) & (trade_ts - series.ts[np.maximum(j, 0)] > int(round(max_age_s * 1e9)))
        j = np.where(too_old, -1, j)
    return j


def prevailing_quotes(trade_ts: np.ndarray, quotes: pd.DataFrame | None, book: pd.DataFrame | None, *,
                      max_snapshot_age_s: float = MAX_SNAPSHOT_AGE_S) -> tuple[QuoteSeries, np.ndarray]:
    """The quote series used for ``trade_ts`` (quotes when the frame has rows, else book tops) and,
    per trade, the index of its quote in force (-1 = unmatched)."""
    if quotes is not None and len(quotes):
        series = quote_series(quotes)
        return series, quote_in_force(series, trade_ts)
    series = book_top(book)
    return series, quote_in_force(series, trade_ts, max_age_s=max_snapshot_age_s)
