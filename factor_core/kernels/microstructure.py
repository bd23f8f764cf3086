"""Market-microstructure estimators on order books and trades (used by ``factor_core.liquidity``).

Book metrics from top-N snapshots and from cumulative depth bands, the Roll
(1984) spread of trade prices and the VPIN of Easley, López de Prado & O'Hara (2012).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _valid_level(price, notional):
    """A book level counts when its price and notional are finite and > 0."""
    return np.isfinite(price) and np.isfinite(notional) and price > 0.0 and notional > 0.0


@njit(cache=True)
def snapshot_book_metrics(snap_start, is_bid, price, notional, thresholds_bps):
    """Per top-N snapshot: best bid/ask, mid, quoted spread and notional depth within ±x bps of mid.

    Rows of snapshot ``s`` are ``snap_start[s] : snap_start[s+1]`` (any order
    within). Levels with non-finite or non-positive price or notional are
    ignored. A snapshot with an empty side or a crossed/locked book
    (``best_bid >= best_ask``) gets NaN everywhere. Depth within ``x`` bps
    counts bid levels with ``price >= mid * (1 - x/1e4)`` and ask levels with
    ``price <= mid * (1 + x/1e4)``.
    Returns ``(mid, spread_bps, bid_depth[s, j], ask_depth[s, j])``. Definitions: ``docs/liquidity.md``.
    """
    ns = snap_start.size - 1
    nt = thresholds_bps.size
    mid = np.full(ns, np.nan)
    spread = np.full(ns, np.nan)
    bd = np.full((ns, nt), np.nan)
    ad = np.full((ns, nt), np.nan)
    for s in range(ns):
        a = snap_start[s]
        b = snap_start[s + 1]
        bb = -np.inf
        ba = np.inf
        for r in range(a, b):
            p = price[r]
            q = notional[r]
            if not _valid_level(p, q):
                continue
            if is_bid[r]:
                if p > bb:
                    bb = p
            else:
                if p < ba:
                    ba = p
        if not (np.isfinite(bb) and np.isfinite(ba)) or bb >= ba:
            continue
        mu = 0.5 * (bb + ba)
        mid[s] = mu
        spread[s] = (ba - bb) / mu * 1e4
        for j in range(nt):
            lo = mu * (1.0 - thresholds_bps[j] * 1e-4)
            hi = mu * (1.0 + thresholds_bps[j] * 1e-4)
            sb = 0.0
            sa = 0.0
            for r in range(a, b):
                p = price[r]
                q = notional[r]
                if not _valid_level(p, q):
                    continue
                if is_bid[r]:
                    if p >= lo:
                        sb += q
                else:
                    if p <= hi:
                        sa += q
            bd[s, j] = sb
            ad[s, j] = sa
    return mid, spread, bd, ad


@njit(cache=True)
def interp_cumulative_depth(band_pct, cum_notional, x_pct):
    """Cumulative depth at ``x_pct`` percent from mid, linearly interpolated through ``(0, 0)``
    and the band edges ``(band_pct[i], cum_notional[i])`` (``band_pct`` sorted ascending).

    NaN beyond the outermost band (no extrapolation) or with no valid band.
    Reference: ``np.interp(x_pct, [0, *band_pct], [0, *cum_notional], right=np.nan)``.
    """
    prev_x = 0.0
    prev_y = 0.0
    for i in range(band_pct.size):
        bx = band_pct[i]
        by = cum_notional[i]
        if not (np.isfinite(bx) and np.isfinite(by)) or bx <= prev_x:
            continue
        if x_pct <= bx:
            return prev_y + (by - prev_y) * (x_pct - prev_x) / (bx - prev_x)
        prev_x = bx
        prev_y = by
    if x_pct == prev_x and prev_x > 0.0:
        return prev_y
    return np.nan


@njit(cache=True)
def band_book_metrics(group_start, is_bid, band_pct, notional, thresholds_bps, group_snap, n_snap):
    """Per depth-band snapshot: bid and ask notional depth within ±x bps of mid.

    Rows of group ``g`` (one snapshot, one side, sorted by ``band_pct``) are
    ``group_start[g] : group_start[g+1]``; ``group_snap[g]`` is its snapshot
    index. Depth within ``x`` bps is ``interp_cumulative_depth`` at
    ``x / 100`` percent. Returns ``(bid_depth[s, j], ask_depth[s, j])``. Definitions: ``docs/liquidity.md``.
    """
    nt = thresholds_bps.size
    bd = np.full((n_snap, nt), np.nan)
    ad = np.full((n_snap, nt), np.nan)
    for g in range(group_start.size - 1):
        a = group_start[g]
        b = group_start[g + 1]
        if b <= a:
            continue
        s = group_snap[g]
        for j in range(nt):
            v = interp_cumulative_depth(band_pct[a:b], notional[a:b], thresholds_bps[j] / 100.0)
            if is_bid[a]:
                bd[s, j] = v
            else:
                ad[s, j] = v
    return bd, ad


@njit(cache=True)
def roll_spread(price):
    """Roll (1984) spread ``2 * sqrt(-cov(dp_t, dp_{t-1}))`` of log prices, as a fraction of price.

    ``dp`` are consecutive log-price changes of the finite, positive prices;
    the first-order autocovariance uses the sample means (n-1 pairs, divisor
    n-1). NaN if fewer than 3 changes or the autocovariance is >= 0 (the
    estimator is undefined there).
    """
    m = price.size
    lp = np.empty(m)
    k = 0
    for i in range(m):
        p = price[i]
        if np.isfinite(p) and p > 0.0:
            lp[k] = math.log(p)
            k += 1
    if k < 4:
        return np.nan
    nd = k - 1
    d = np.empty(nd)
    for i in range(nd):
        d[i] = lp[i + 1] - lp[i]
    npair = nd - 1
    ma = 0.0
    mb = 0.0
    for i in range(npair):
        ma += d[i + 1]
        mb += d[i]
    ma /= npair
    mb /= npair
    cov = 0.0
    for i in range(npair):
        cov += (d[i + 1] - ma) * (d[i] - mb)
    if npair > 1:
        cov /= npair - 1
    if not (cov < 0.0):
        return np.nan
    return 2.0 * math.sqrt(-cov)


@njit(cache=True)
def vpin(buy_volume, sell_volume, bucket_volume):
    """VPIN of Easley, López de Prado & O'Hara (2012) over the given volume sequence.

    Volume is poured in order into buckets of ``bucket_volume`` (a trade larger
    than the room left is split across buckets, proportionally on both sides);
    VPIN = mean over the *complete* buckets of ``|V_buy - V_sell| / bucket_volume``.
    NaN if no bucket completes or ``bucket_volume <= 0``.
    """
    if not (bucket_volume > 0.0):
        return np.nan
    fill = 0.0
    b_acc = 0.0
    s_acc = 0.0
    total = 0.0
    nb = 0
    for i in range(buy_volume.size):
        bv = buy_volume[i]
        sv = sell_volume[i]
        if not (np.isfinite(bv) and np.isfinite(sv)):
            continue
        vol = bv + sv
        if vol <= 0.0:
            continue
        fb = bv / vol
        while vol > 0.0:
            room = bucket_volume - fill
            take = vol if vol < room else room
            b_acc += take * fb
            s_acc += take * (1.0 - fb)
            fill += take
            vol -= take
            if fill >= bucket_volume * (1.0 - 1e-12):
                total += abs(b_acc - s_acc) / bucket_volume
                nb += 1
                fill = 0.0
                b_acc = 0.0
                s_acc = 0.0
    if nb == 0:
        return np.nan
    return total / nb
