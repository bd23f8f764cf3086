"""Book-side helpers: the UTC minute grid and per-snapshot metrics (spread, depth within ±x bps).

Top-N snapshots give mid, quoted spread and depth; depth bands (futures ``bookDepth``:
cumulative depth within ``band_pct`` % of mid, no prices) give depth only: depth within
±x bps is read off the cumulative depth curve by linear interpolation through
``(0 %, 0)`` and the band edges, per side; beyond the outermost band it is NaN. A crossed
or locked snapshot (best bid >= best ask), an empty side, non-finite or non-positive
prices give NaN for that snapshot, never an exception or ``inf``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from factor_core import kernels as K
from factor_core.columns import float64_column
from factor_core.columns import ts_ns as _ts_ns
from factor_core.timeutil import NS_PER_DAY, NS_PER_MINUTE

DEPTH_BPS = (10.0, 50.0)


def f64(df: pd.DataFrame, col: str) -> np.ndarray:
    if df is None or col not in df.columns:
        return np.full(0 if df is None else len(df), np.nan)
    return float64_column(df, col)


def is_empty(df: pd.DataFrame | None) -> bool:
    return df is None or len(df) == 0


def minute_grid(book, trades, klines, quotes=None) -> np.ndarray:
    """Every minute of the UTC day(s) covered by the inputs (klines define it when present)."""
    stamps = []
    for df, col in ((klines, "open_time"), (trades, "ts"), (book, "ts"), (quotes, "ts")):
        if not is_empty(df):
            stamps.append(_ts_ns(df[col]))
            if df is klines:
                break
    if not stamps:
        return np.empty(0, dtype=np.int64)
    lo = min(int(s.min()) for s in stamps)
    hi = max(int(s.max()) for s in stamps)
    d0 = lo // NS_PER_DAY * NS_PER_DAY
    d1 = (hi // NS_PER_DAY + 1) * NS_PER_DAY
    return np.arange(d0, d1, NS_PER_MINUTE, dtype=np.int64)


def bin_minutes(ts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    if grid.size == 0:
        return np.full(ts.size, -1, dtype=np.int64)
    return (ts - grid[0]) // NS_PER_MINUTE


def snapshot_metrics(book: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-snapshot metrics: (top-N frame with mid/spread/depth, band frame with depth only)."""
    cols = ["ts", "mid", "spread_bps", "bid_10", "ask_10", "bid_50", "ask_50"]
    empty = pd.DataFrame({c: np.empty(0, dtype=np.int64 if c == "ts" else float) for c in cols})
    if is_empty(book):
        return empty, empty.copy()
    ts = _ts_ns(book["ts"])
    is_bid = (book["side"].astype("string").str.lower() == "bid").fillna(False).to_numpy(dtype=bool)
    is_ask = (book["side"].astype("string").str.lower() == "ask").fillna(False).to_numpy(dtype=bool)
    price = f64(book, "price")
    qty = f64(book, "qty")
    notional = f64(book, "notional")
    band = np.abs(f64(book, "band_pct"))
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


def book_minutes(snaps: pd.DataFrame, grid: np.ndarray) -> dict[str, np.ndarray]:
    n = grid.size
    idx = bin_minutes(snaps["ts"].to_numpy(np.int64), grid)
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

