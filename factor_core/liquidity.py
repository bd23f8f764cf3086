"""Order-book and trade liquidity metrics of one symbol-day (pure functions, no Dagster).

Inputs are the canonical raw frames (``schemas.BOOK``, ``schemas.TRADES``,
``schemas.KLINES``). Formulas and references: ``docs/liquidity.md``.

* ``minute_liquidity``: one row per minute (``ts`` = minute open) with the
  book metrics averaged over the snapshots taken inside the minute
  (``ts <= snapshot < ts + 1min``) and the trade metrics of the trades inside
  the minute. A row therefore uses nothing after ``ts + 1min``, so
  ``factors.compute_factor_bars`` can average it into the hourly bar without
  look-ahead. A minute without snapshots (or trades) has NaN book (trade)
  metrics: nothing is forward-filled.
* ``daily_liquidity``: the day's summary (means, Kyle's lambda, Amihud, Roll,
  Corwin–Schultz, VPIN) as a ``dict[str, float]``.

Robustness: a crossed or locked book (best bid >= best ask), an empty side,
non-finite or non-positive prices give NaN for that snapshot, never an
exception or ``inf``; zero volume gives NaN ratios.

Depth bands (futures ``bookDepth``: cumulative depth within ``band_pct`` % of
mid, no prices): depth within ±x bps is read off the cumulative depth curve
by linear interpolation through ``(0 %, 0)`` and the band edges, per side;
beyond the outermost band it is NaN. No mid/spread is available from bands,
so spreads and effective spreads are NaN for band-only books.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from factor_core.columns import ts_ns as _ts_ns
from factor_core import kernels as K

NS_MIN = 60_000_000_000
NS_DAY = 86_400_000_000_000
DEPTH_BPS = (10.0, 50.0)
#: Trades whose prevailing snapshot is older than this get no effective spread.
MAX_MID_AGE = pd.Timedelta("5min")
#: VPIN: the day's volume is split into this many equal buckets.
VPIN_BUCKETS = 50

MINUTE_COLUMNS: tuple[str, ...] = (
    "ts",
    "mid",
    "quoted_spread_bps",
    "effective_spread_bps",
    "depth_10bps_usd",
    "depth_50bps_usd",
    "depth_imbalance",
    "trade_imbalance",
    "n_snapshots",
    "n_trades",
    "buy_volume",
    "sell_volume",
    "signed_quote_volume",
    "effective_notional",
)

DAILY_KEYS: tuple[str, ...] = (
    "quoted_spread_bps",
    "effective_spread_bps",
    "depth_10bps_usd",
    "depth_50bps_usd",
    "depth_imbalance",
    "trade_imbalance",
    "kyle_lambda_bps_per_musd",
    "amihud_per_musd",
    "roll_spread_bps",
    "cs_spread_bps",
    "vpin",
    "n_trades",
    "quote_volume",
)


def _f64(df: pd.DataFrame, col: str) -> np.ndarray:
    if df is None or col not in df.columns:
        return np.full(0 if df is None else len(df), np.nan)
    return np.asarray(df[col].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _empty(df: pd.DataFrame | None) -> bool:
    return df is None or len(df) == 0


def _minute_grid(book, trades, klines) -> np.ndarray:
    """Every minute of the UTC day(s) covered by the inputs (klines define it when present)."""
    stamps = []
    for df, col in ((klines, "open_time"), (trades, "ts"), (book, "ts")):
        if not _empty(df):
            stamps.append(_ts_ns(df[col]))
            if df is klines:
                break
    if not stamps:
        return np.empty(0, dtype=np.int64)
    lo = min(int(s.min()) for s in stamps)
    hi = max(int(s.max()) for s in stamps)
    d0 = lo // NS_DAY * NS_DAY
    d1 = (hi // NS_DAY + 1) * NS_DAY
    return np.arange(d0, d1, NS_MIN, dtype=np.int64)


def _bin(ts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    if grid.size == 0:
        return np.full(ts.size, -1, dtype=np.int64)
    return (ts - grid[0]) // NS_MIN


def _snapshot_metrics(book: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-snapshot metrics: (top-N frame with mid/spread/depth, band frame with depth only)."""
    cols = ["ts", "mid", "spread_bps", "bid_10", "ask_10", "bid_50", "ask_50"]
    empty = pd.DataFrame({c: np.empty(0, dtype=np.int64 if c == "ts" else float) for c in cols})
    if _empty(book):
        return empty, empty.copy()
    ts = _ts_ns(book["ts"])
    is_bid = (book["side"].astype("string").str.lower() == "bid").fillna(False).to_numpy(dtype=bool)
    is_ask = (book["side"].astype("string").str.lower() == "ask").fillna(False).to_numpy(dtype=bool)
    price = _f64(book, "price")
    qty = _f64(book, "qty")
    notional = _f64(book, "notional")
    band = np.abs(_f64(book, "band_pct"))
    notional = np.where(np.isfinite(notional), notional, price * qty)
    thr = np.asarray(DEPTH_BPS, dtype=np.float64)
    sided = is_bid | is_ask

    out = []
    # top-N snapshots: rows with a price and no band
    sel = np.flatnonzero(sided & ~np.isfinite(band))
    if sel.size:
        order = sel[np.argsort(ts[sel], kind="stable")]
        t = ts[order]
        starts = np.r_[0, np.flatnonzero(np.diff(t)) + 1, t.size].astype(np.int64)
        mid, spread, bd, ad = K.snapshot_book_metrics(starts, is_bid[order], price[order], notional[order], thr)
        out.append(pd.DataFrame({"ts": t[starts[:-1]], "mid": mid, "spread_bps": spread, "bid_10": bd[:, 0],
                                 "ask_10": ad[:, 0], "bid_50": bd[:, 1], "ask_50": ad[:, 1]}))
    else:
        out.append(empty)
    # depth bands
    sel = np.flatnonzero(sided & np.isfinite(band))
    if sel.size:
        keys = pd.DataFrame({"ts": ts[sel], "bid": is_bid[sel], "band": band[sel], "row": sel})
        keys = keys.sort_values(["ts", "bid", "band"], kind="stable")
        rows = keys["row"].to_numpy()
        t = keys["ts"].to_numpy()
        b = keys["bid"].to_numpy()
        brk = np.flatnonzero((np.diff(t) != 0) | (np.diff(b) != 0)) + 1
        gstart = np.r_[0, brk, t.size].astype(np.int64)
        snap_ts, snap_of_row = np.unique(t, return_inverse=True)
        gsnap = snap_of_row[gstart[:-1]].astype(np.int64)
        bd, ad = K.band_book_metrics(gstart, is_bid[rows], band[rows], notional[rows], thr, gsnap, snap_ts.size)
        # a snapshot needs both sides, like a top-N book
        out.append(pd.DataFrame({"ts": snap_ts, "mid": np.nan, "spread_bps": np.nan, "bid_10": bd[:, 0],
                                 "ask_10": ad[:, 0], "bid_50": bd[:, 1], "ask_50": ad[:, 1]}))
    else:
        out.append(empty.copy())
    return out[0], out[1]


def _book_minutes(snaps: pd.DataFrame, grid: np.ndarray) -> dict[str, np.ndarray]:
    n = grid.size
    idx = _bin(snaps["ts"].to_numpy(np.int64), grid)
    bid10, ask10 = snaps["bid_10"].to_numpy(float), snaps["ask_10"].to_numpy(float)
    bid50, ask50 = snaps["bid_50"].to_numpy(float), snaps["ask_50"].to_numpy(float)
    d10 = bid10 + ask10
    d50 = bid50 + ask50
    imb = K.safe_ratio(bid50 - ask50, d50)
    mid = snaps["mid"].to_numpy(float)
    last_mid = np.full(n, np.nan)
    ok = (idx >= 0) & (idx < n) & np.isfinite(mid)
    last_mid[idx[ok]] = mid[ok]  # snapshots are time-sorted: the last assignment wins
    counts = np.bincount(idx[(idx >= 0) & (idx < n)], minlength=n)[:n] if n else np.zeros(0, np.int64)
    return {
        "mid": last_mid,
        "quoted_spread_bps": K.bin_nanmean(snaps["spread_bps"].to_numpy(float), idx, n),
        "depth_10bps_usd": K.bin_nanmean(d10, idx, n),
        "depth_50bps_usd": K.bin_nanmean(d50, idx, n),
        "depth_imbalance": K.bin_nanmean(imb, idx, n),
        "n_snapshots": counts.astype(np.int64),
    }


def _trade_arrays(trades: pd.DataFrame | None):
    if _empty(trades):
        e = np.empty(0)
        return np.empty(0, dtype=np.int64), e, e.copy(), np.empty(0, dtype=bool)
    ts = _ts_ns(trades["ts"])
    price = _f64(trades, "price")
    qty = _f64(trades, "qty")
    buyer_aggr = ~trades["is_buyer_maker"].fillna(False).to_numpy(dtype=bool)
    order = np.argsort(ts, kind="stable")
    return ts[order], price[order], qty[order], buyer_aggr[order]


def minute_liquidity(book: pd.DataFrame, trades: pd.DataFrame, klines: pd.DataFrame, *,
                     max_mid_age: pd.Timedelta = MAX_MID_AGE) -> pd.DataFrame:
    """Per-minute liquidity of one symbol-day; columns ``MINUTE_COLUMNS``.

    * ``quoted_spread_bps``: mean over the minute's top-N snapshots of
      ``(ask1 - bid1) / mid * 1e4``.
    * ``effective_spread_bps``: notional-weighted mean over the minute's trades
      of ``2 * D * (price - mid) / mid * 1e4`` with ``D = +1`` for a buyer-aggressor
      (``is_buyer_maker == False``), ``-1`` otherwise, and ``mid`` the mid of the
      last top-N snapshot at or before the trade (NaN if that snapshot is
      crossed/one-sided or older than ``max_mid_age``).
    * ``depth_10bps_usd`` / ``depth_50bps_usd``: mean over the minute's snapshots
      of bid + ask notional within ±10 / ±50 bps of mid (top-N: levels inside
      the range, truncated at the N-th level; bands: interpolated, see module doc).
    * ``depth_imbalance``: mean of ``(bid - ask) / (bid + ask)`` of the ±50 bps depth.
    * ``trade_imbalance``: ``(buy - sell) / (buy + sell)`` aggressor base volume.
    * ``mid`` (last valid snapshot mid in the minute), ``n_snapshots``,
      ``n_trades``, ``buy_volume``/``sell_volume`` (base), ``signed_quote_volume``
      (buy minus sell notional), ``effective_notional`` (notional of the trades
      with a valid mid: the weight of ``effective_spread_bps``).
    """
    grid = _minute_grid(book, trades, klines)
    n = grid.size
    top, bands = _snapshot_metrics(book)
    data: dict[str, np.ndarray] = {"ts": grid}
    bm = _book_minutes(top, grid)
    if len(bands):
        bb = _book_minutes(bands, grid)
        for col in ("depth_10bps_usd", "depth_50bps_usd", "depth_imbalance"):
            bm[col] = np.where(np.isfinite(bm[col]), bm[col], bb[col])
        bm["n_snapshots"] = bm["n_snapshots"] + bb["n_snapshots"]
    data.update(bm)

    t_ts, t_px, t_qty, t_buy = _trade_arrays(trades)
    tidx = _bin(t_ts, grid)
    inside = (tidx >= 0) & (tidx < n)
    valid = inside & np.isfinite(t_px) & np.isfinite(t_qty) & (t_px > 0) & (t_qty > 0)
    notional = np.where(valid, t_px * t_qty, 0.0)
    side = np.where(t_buy, 1.0, -1.0)
    buy = np.bincount(tidx[valid], weights=np.where(t_buy, t_qty, 0.0)[valid], minlength=n)[:n]
    sell = np.bincount(tidx[valid], weights=np.where(t_buy, 0.0, t_qty)[valid], minlength=n)[:n]
    sq = np.bincount(tidx[valid], weights=(side * notional)[valid], minlength=n)[:n]
    cnt = np.bincount(tidx[valid], minlength=n)[:n]
    # effective spread against the prevailing top-N mid
    snap_ts = top["ts"].to_numpy(np.int64)
    snap_mid = top["mid"].to_numpy(float)
    mid = np.full(t_ts.size, np.nan)
    if snap_ts.size:
        j = K.prevailing_index(t_ts, snap_ts)
        jj = np.maximum(j, 0)
        fresh = (j >= 0) & (t_ts - snap_ts[jj] <= pd.Timedelta(max_mid_age).value)
        mid = np.where(fresh, snap_mid[jj], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = 2.0 * side * (t_px - mid) / mid * 1e4
    ok = valid & np.isfinite(eff) & (mid > 0)
    w = np.bincount(tidx[ok], weights=notional[ok], minlength=n)[:n]
    ew = np.bincount(tidx[ok], weights=(eff * notional)[ok], minlength=n)[:n]
    data["effective_spread_bps"] = K.safe_ratio(ew, w)
    data["trade_imbalance"] = K.safe_ratio(buy - sell, buy + sell)
    data["n_trades"] = cnt.astype(np.int64)
    data["buy_volume"] = buy.astype(float)
    data["sell_volume"] = sell.astype(float)
    data["signed_quote_volume"] = sq.astype(float)
    data["effective_notional"] = w.astype(float)
    out = pd.DataFrame({c: data[c] for c in MINUTE_COLUMNS})
    out["ts"] = pd.DatetimeIndex(grid.view("datetime64[ns]")).tz_localize("UTC")
    return out


def _ols_slope(y: np.ndarray, x: np.ndarray, min_count: int = 10) -> float:
    m = np.isfinite(x) & np.isfinite(y)
    if m.sum() < max(min_count, 3):
        return float("nan")
    out = K.rolling_ols_slope(y[m], x[m], int(m.sum()), max(min_count, 3))
    return float(out[-1])


def daily_liquidity(book: pd.DataFrame, trades: pd.DataFrame, klines: pd.DataFrame,
                    minute: pd.DataFrame | None = None) -> dict[str, float]:
    """Daily liquidity summary of one symbol-day; keys ``DAILY_KEYS`` (NaN where undefined).

    * ``quoted_spread_bps``, ``depth_10bps_usd``, ``depth_50bps_usd``,
      ``depth_imbalance``: means over the minutes of ``minute_liquidity``.
    * ``effective_spread_bps``: notional-weighted over the day's trades.
    * ``trade_imbalance``: (buy - sell) / (buy + sell) aggressor volume of the day.
    * ``kyle_lambda_bps_per_musd``: Kyle (1985) lambda — OLS slope (with intercept)
      of the 1-minute log return of the kline close (bps; consecutive minutes only)
      on the minute's signed quote volume (millions; from trade aggressor flags,
      or ``2*taker_buy_quote_volume - quote_volume`` of the klines without trades).
    * ``amihud_per_musd``: Amihud (2002) on 1-minute bars — mean over minutes
      with quote volume > 0 of ``|r| / quote_volume * 1e6``.
    * ``roll_spread_bps``: Roll (1984) ``2 sqrt(-cov(dp_t, dp_{t-1}))`` of
      trade-by-trade log prices (kline closes without trades); NaN if the
      autocovariance is >= 0.
    * ``cs_spread_bps``: Corwin & Schultz (2012) mean over consecutive 1-minute
      high/low pairs (negative alphas set to 0).
    * ``vpin``: Easley, López de Prado & O'Hara (2012) with ``VPIN_BUCKETS``
      equal-volume buckets of the day; trades are classified by their exchange
      aggressor flag (exact, no bulk classification needed); without trades the
      1-minute taker-buy volumes of the klines are used.
    """
    if minute is None:
        minute = minute_liquidity(book, trades, klines)
    res: dict[str, float] = {k: float("nan") for k in DAILY_KEYS}

    def mean(col: str) -> float:
        v = minute[col].to_numpy(float) if col in minute else np.empty(0)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    for col in ("quoted_spread_bps", "depth_10bps_usd", "depth_50bps_usd", "depth_imbalance"):
        res[col] = mean(col)
    if len(minute):
        w = minute["effective_notional"].to_numpy(float)
        e = minute["effective_spread_bps"].to_numpy(float)
        ok = np.isfinite(e) & (w > 0)
        if ok.any():
            res["effective_spread_bps"] = float(np.sum(e[ok] * w[ok]) / np.sum(w[ok]))
        buy = float(minute["buy_volume"].sum())
        sell = float(minute["sell_volume"].sum())
        if buy + sell > 0:
            res["trade_imbalance"] = (buy - sell) / (buy + sell)
        res["n_trades"] = float(minute["n_trades"].sum())

    t_ts, t_px, t_qty, t_buy = _trade_arrays(trades)
    has_trades = t_ts.size > 0
    if not _empty(klines):
        kl = klines.sort_values("open_time", kind="stable")
        kts = _ts_ns(kl["open_time"])
        close = _f64(kl, "close")
        high = _f64(kl, "high")
        low = _f64(kl, "low")
        qv = _f64(kl, "quote_volume")
        consecutive = np.r_[False, np.diff(kts) == NS_MIN]
        r = K.log_return(close, 1)
        r[~consecutive] = np.nan
        res["quote_volume"] = float(np.nansum(np.where(np.isfinite(qv), qv, 0.0)))
        # Kyle's lambda
        if has_trades and len(minute):
            sq_by_minute = pd.Series(minute["signed_quote_volume"].to_numpy(float), index=_ts_ns(minute["ts"]))
            x = sq_by_minute.reindex(kts).to_numpy(float)
        else:
            x = 2.0 * _f64(kl, "taker_buy_quote_volume") - qv
        res["kyle_lambda_bps_per_musd"] = _ols_slope(r * 1e4, x * 1e-6)
        # Amihud
        a = K.safe_ratio(np.abs(r), np.where(qv > 0, qv, np.nan))
        a = a[np.isfinite(a)]
        if a.size:
            res["amihud_per_musd"] = float(a.mean() * 1e6)
        # Corwin-Schultz on consecutive minutes
        cs = K.corwin_schultz(high, low)
        cs[~consecutive] = np.nan
        cs = cs[np.isfinite(cs)]
        if cs.size:
            res["cs_spread_bps"] = float(cs.mean() * 1e4)
        if not has_trades:
            res["roll_spread_bps"] = float(K.roll_spread(close) * 1e4)
            tbv = _f64(kl, "taker_buy_volume")
            vol = _f64(kl, "volume")
            res["vpin"] = _vpin(tbv, vol - tbv)
    if has_trades:
        res["roll_spread_bps"] = float(K.roll_spread(t_px) * 1e4)
        ok = np.isfinite(t_qty) & (t_qty > 0)
        res["vpin"] = _vpin(np.where(t_buy & ok, t_qty, 0.0), np.where(~t_buy & ok, t_qty, 0.0))
    return res


def _vpin(buy: np.ndarray, sell: np.ndarray) -> float:
    ok = np.isfinite(buy) & np.isfinite(sell)
    total = float(np.sum(buy[ok]) + np.sum(sell[ok]))
    if not total > 0:
        return float("nan")
    return float(K.vpin(np.ascontiguousarray(buy, float), np.ascontiguousarray(sell, float), total / VPIN_BUCKETS))
