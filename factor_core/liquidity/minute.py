"""Per-minute liquidity of one symbol-day: ``minute_liquidity`` (formulas: ``docs/liquidity.md``).

One row per minute (``ts`` = minute open). Book metrics average the snapshots taken inside
the minute (``ts <= snapshot < ts + 1min``), quote metrics the time each quote was in force
inside the minute, trade metrics use the minute's trades. A row therefore uses nothing
after ``ts + 1min``, so ``factors.compute_factor_bars`` can average it into the hourly bar
without look-ahead. Nothing is forward-filled across minutes without data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from factor_core import kernels as K
from factor_core.columns import ts_ns as _ts_ns
from factor_core.liquidity.book import bin_minutes, book_minutes, f64, is_empty, minute_grid, snapshot_metrics
from factor_core.liquidity.estimators import time_weighted_spread
from factor_core.liquidity.matching import MAX_SNAPSHOT_AGE_S, prevailing_quotes
from factor_core.timeutil import NS_PER_MINUTE

MINUTE_COLUMNS: tuple[str, ...] = (
    "ts",
    "mid",
    "quoted_spread_bps",
    "quoted_spread_tw_bps",
    "effective_spread_bps",
    "depth_10bps_usd",
    "depth_50bps_usd",
    "depth_imbalance",
    "trade_imbalance",
    "n_snapshots",
    "n_trades",
    "n_trades_matched",
    "buy_volume",
    "sell_volume",
    "signed_quote_volume",
    "effective_notional",
)


def trade_arrays(trades: pd.DataFrame | None):
    """``(ts_ns, price, qty, buyer_aggressor)`` of the trades, stably sorted by time."""
    if is_empty(trades):
        e = np.empty(0)
        return np.empty(0, dtype=np.int64), e, e.copy(), np.empty(0, dtype=bool)
    ts = _ts_ns(trades["ts"])
    price = f64(trades, "price")
    qty = f64(trades, "qty")
    buyer_aggr = ~trades["is_buyer_maker"].fillna(False).to_numpy(dtype=bool)
    order = np.argsort(ts, kind="stable")
    return ts[order], price[order], qty[order], buyer_aggr[order]


def minute_liquidity(book: pd.DataFrame | None, trades: pd.DataFrame | None, klines: pd.DataFrame | None,
                     quotes: pd.DataFrame | None = None, *,
                     max_snapshot_age_s: float = MAX_SNAPSHOT_AGE_S) -> pd.DataFrame:
    """Per-minute liquidity of one symbol-day; columns ``MINUTE_COLUMNS``.

    * ``quoted_spread_bps``: mean over the minute's top-N snapshots of ``(ask1 - bid1) / mid * 1e4``.
    * ``quoted_spread_tw_bps``: the same ratio from ``quotes`` (``raw_quotes``), weighted by the
      time each quote was in force inside the minute (NaN without quotes).
    * ``effective_spread_bps``: notional-weighted mean over the minute's matched trades of
      ``2 * D * (price - m) / m * 1e4``, ``D = +1`` for a buyer-aggressor
      (``is_buyer_maker == False``), ``-1`` otherwise, ``m`` the mid of the quote in force
      (:mod:`factor_core.liquidity.matching`: ``quotes`` where given, else a top-N snapshot
      at most ``max_snapshot_age_s`` old). ``n_trades_matched`` counts the trades with a
      valid quote in force, ``effective_notional`` their notional (the weight).
    * ``depth_10bps_usd`` / ``depth_50bps_usd``: mean over the minute's snapshots of bid + ask
      notional within ±10 / ±50 bps of mid; ``depth_imbalance``: mean of ``(bid - ask) /
      (bid + ask)`` of the ±50 bps depth.
    * ``trade_imbalance``: ``(buy - sell) / (buy + sell)`` aggressor base volume;
      ``buy_volume`` / ``sell_volume`` (base), ``signed_quote_volume`` (``sum D p q``).
    * ``mid``: last valid snapshot mid in the minute; ``n_snapshots``, ``n_trades``: counts.
    """
    grid = minute_grid(book, trades, klines, quotes)
    n = grid.size
    top, bands = snapshot_metrics(book)
    data: dict[str, np.ndarray] = {"ts": grid}
    bm = book_minutes(top, grid)
    if len(bands):
        bb = book_minutes(bands, grid)
        for col in ("depth_10bps_usd", "depth_50bps_usd", "depth_imbalance"):
            bm[col] = np.where(np.isfinite(bm[col]), bm[col], bb[col])
        bm["n_snapshots"] = bm["n_snapshots"] + bb["n_snapshots"]
    data.update(bm)

    t_ts, t_px, t_qty, t_buy = trade_arrays(trades)
    tidx = bin_minutes(t_ts, grid)
    inside = (tidx >= 0) & (tidx < n)
    valid = inside & np.isfinite(t_px) & np.isfinite(t_qty) & (t_px > 0) & (t_qty > 0)
    notional = np.where(valid, t_px * t_qty, 0.0)
    side = np.where(t_buy, 1.0, -1.0)
    buy = np.bincount(tidx[valid], weights=np.where(t_buy, t_qty, 0.0)[valid], minlength=n)[:n]
    sell = np.bincount(tidx[valid], weights=np.where(t_buy, 0.0, t_qty)[valid], minlength=n)[:n]
    sq = np.bincount(tidx[valid], weights=(side * notional)[valid], minlength=n)[:n]
    cnt = np.bincount(tidx[valid], minlength=n)[:n]

    # effective spread against the quote in force
    series, j = prevailing_quotes(t_ts, quotes, book, max_snapshot_age_s=max_snapshot_age_s)
    matched = j >= 0
    matched[matched] = series.valid[j[matched]]
    mid = np.full(t_ts.size, np.nan)
    mid[matched] = 0.5 * (series.bid[j[matched]] + series.ask[j[matched]])
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = 2.0 * side * (t_px - mid) / mid * 1e4
    ok = valid & matched & np.isfinite(eff)
    w = np.bincount(tidx[ok], weights=notional[ok], minlength=n)[:n]
    ew = np.bincount(tidx[ok], weights=(eff * notional)[ok], minlength=n)[:n]
    data["effective_spread_bps"] = K.safe_ratio(ew, w)
    data["n_trades_matched"] = np.bincount(tidx[ok], minlength=n)[:n].astype(np.int64)

    if series.source == "quotes" and n:
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.where(series.valid, (series.ask - series.bid) / (0.5 * (series.ask + series.bid)) * 1e4, np.nan)
        data["quoted_spread_tw_bps"] = time_weighted_spread(series.ts, spread, grid, NS_PER_MINUTE)
    else:
        data["quoted_spread_tw_bps"] = np.full(n, np.nan)

    data["trade_imbalance"] = K.safe_ratio(buy - sell, buy + sell)
    data["n_trades"] = cnt.astype(np.int64)
    data["buy_volume"] = buy.astype(float)
    data["sell_volume"] = sell.astype(float)
    data["signed_quote_volume"] = sq.astype(float)
    data["effective_notional"] = w.astype(float)
    out = pd.DataFrame({c: data[c] for c in MINUTE_COLUMNS})
    out["ts"] = pd.DatetimeIndex(grid.view("datetime64[ns]")).tz_localize("UTC")
    return out
