"""Numba kernels of the liquidity estimators; each docstring names its reference definition.

Pure functions over NumPy arrays (no pandas, no I/O). Units are stated per kernel; the
daily module (:mod:`factor_core.liquidity.daily`) feeds them and names the results.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_CS_K = 3.0 - 2.0 * math.sqrt(2.0)


@njit(cache=True)
def time_weighted_spread(quote_ts, spread_bps, grid, bin_ns):
    """Per grid bin ``[grid[i], grid[i] + bin_ns)``: mean of ``spread_bps`` weighted by the time
    each quote is in force inside the bin (a quote is in force from its ts to the next one's;
    the last to the end of the grid). NaN spreads (invalid quotes) are left out, time before
    the first quote is not covered; a bin with no covered time is NaN."""
    nb = grid.size
    num = np.zeros(nb)
    den = np.zeros(nb)
    if nb == 0 or quote_ts.size == 0:
        return np.full(nb, np.nan)
    g0 = grid[0]
    g1 = grid[nb - 1] + bin_ns
    for q in range(quote_ts.size):
        s = spread_bps[q]
        if not np.isfinite(s):
            continue
        a = max(quote_ts[q], g0)
        b = g1 if q + 1 == quote_ts.size else min(quote_ts[q + 1], g1)
        while a < b:
            i = (a - g0) // bin_ns
            edge = min(b, g0 + (i + 1) * bin_ns)
            w = float(edge - a)
            num[i] += s * w
            den[i] += w
            a = edge
    out = np.full(nb, np.nan)
    for i in range(nb):
        if den[i] > 0.0:
            out[i] = num[i] / den[i]
    return out


@njit(cache=True)
def corwin_schultz_gap_adjusted(high, low, close):
    """Corwin & Schultz (2012) two-bar spread estimate for each pair of consecutive bars (t-1, t),
    with the paper's adjustment for overnight returns, applied to the gap between bar t-1's
    close and bar t's range: if ``L_t > C_{t-1}`` both ``H_t`` and ``L_t`` are lowered
    by ``L_t - C_{t-1}``; if ``H_t < C_{t-1}`` both are raised by ``C_{t-1} - H_t``. Then
    ``beta = ln(H_{t-1}/L_{t-1})^2 + ln(H_t/L_t)^2``,
    ``gamma = ln(max(H_{t-1}, H_t) / min(L_{t-1}, L_t))^2``,
    ``alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))``,
    ``S = 2 (e^alpha - 1) / (1 + e^alpha)``, negative ``S`` set to 0 (the paper's convention).
    Value at ``t`` (a fraction; NaN at ``t = 0`` or for invalid prices) uses bars ``t-1, t`` only.
    """
    m = high.size
    out = np.full(m, np.nan)
    for t in range(1, m):
        h0, l0, c0 = high[t - 1], low[t - 1], close[t - 1]
        h1, l1 = high[t], low[t]
        if not (np.isfinite(h0) and np.isfinite(l0) and np.isfinite(c0) and np.isfinite(h1) and np.isfinite(l1)):
            continue
        if l0 <= 0.0 or l1 <= 0.0 or h0 < l0 or h1 < l1:
            continue
        if l1 > c0:
            adj = l1 - c0
            h1 -= adj
            l1 -= adj
        elif h1 < c0:
            adj = c0 - h1
            h1 += adj
            l1 += adj
        a0 = math.log(h0 / l0)
        a1 = math.log(h1 / l1)
        beta = a0 * a0 + a1 * a1
        g = math.log(max(h0, h1) / min(l0, l1))
        alpha = (math.sqrt(2.0 * beta) - math.sqrt(beta)) / _CS_K - math.sqrt(g * g / _CS_K)
        e = math.exp(alpha)
        s = 2.0 * (e - 1.0) / (1.0 + e)
        out[t] = s if s > 0.0 else 0.0
    return out


@njit(cache=True)
def roll_autocovariance(price):
    """First-order sample autocovariance of consecutive log-price changes (Roll 1984).

    ``d_i = ln p_{i+1} - ln p_i`` over the finite, positive prices; ``cov = sum((d_i - mean_a)
    (d_{i-1} - mean_b)) / (n_pairs - 1)`` with the means of the leading / lagged series.
    Returns ``(cov, n_pairs)``; NaN with fewer than 2 pairs.
    """
    lp = np.empty(price.size)
    k = 0
    for i in range(price.size):
        p = price[i]
        if np.isfinite(p) and p > 0.0:
            lp[k] = math.log(p)
            k += 1
    npair = k - 2
    if npair < 2:
        return np.nan, max(npair, 0)
    ma = 0.0
    mb = 0.0
    for i in range(npair):
        ma += lp[i + 2] - lp[i + 1]
        mb += lp[i + 1] - lp[i]
    ma /= npair
    mb /= npair
    cov = 0.0
    for i in range(npair):
        cov += (lp[i + 2] - lp[i + 1] - ma) * (lp[i + 1] - lp[i] - mb)
    return cov / (npair - 1), npair


@njit(cache=True)
def signed_sqrt_dollar_volume(interval, signed_usd, n_intervals):
    """``S_n = sum_k sign(v_k) sqrt(|v_k|)`` per interval, ``v_k`` each trade's signed dollar volume
    (Hasbrouck 2009; Goyenko, Holden & Trzcinka 2009). Trades with interval < 0 or NaN are skipped."""
    out = np.zeros(n_intervals)
    for k in range(interval.size):
        n = interval[k]
        v = signed_usd[k]
        if n < 0 or n >= n_intervals or not np.isfinite(v):
            continue
        out[n] += math.copysign(math.sqrt(abs(v)), v)
    return out


@njit(cache=True)
def ols_through_origin(y, x):
    """Slope of ``y = b x + u`` without intercept, ``sum(x y) / sum(x^2)``, over finite pairs; (slope, n)."""
    sxy = 0.0
    sxx = 0.0
    n = 0
    for i in range(y.size):
        if np.isfinite(y[i]) and np.isfinite(x[i]):
            sxy += x[i] * y[i]
            sxx += x[i] * x[i]
            n += 1
    if n == 0 or sxx <= 0.0:
        return np.nan, n
    return sxy / sxx, n


@njit(cache=True)
def ols_slope(y, x):
    """OLS slope with intercept of ``y`` on ``x`` over finite pairs (centred sums); (slope, n)."""
    n = 0
    mx = 0.0
    my = 0.0
    for i in range(y.size):
        if np.isfinite(y[i]) and np.isfinite(x[i]):
            mx += x[i]
            my += y[i]
            n += 1
    if n < 3:
        return np.nan, n
    mx /= n
    my /= n
    sxy = 0.0
    sxx = 0.0
    for i in range(y.size):
        if np.isfinite(y[i]) and np.isfinite(x[i]):
            sxy += (x[i] - mx) * (y[i] - my)
            sxx += (x[i] - mx) * (x[i] - mx)
    if sxx <= 0.0:
        return np.nan, n
    return sxy / sxx, n


@njit(cache=True)
def pour_buckets(buy, sell, bucket_volume, fill, fill_buy):
    """Pour volumes, in order, into equal-volume buckets (Easley, López de Prado & O'Hara 2012).

    ``buy[i] + sell[i]`` is element ``i``'s volume (a trade, or a bar under bulk classification);
    an element larger than the room left is split across buckets in proportion to its buy
    share. ``fill`` / ``fill_buy`` are the volume and buy volume already in the open bucket (from
    the previous day). Returns ``(imbalances, fill, fill_buy)``: ``|V_buy - V_sell| / V`` of every
    bucket completed here, in order, and the open bucket left at the end. An open bucket that
    already holds ``>= bucket_volume`` (the bucket size fell overnight) is closed first with
    its own volume as denominator.
    """
    out = np.empty(buy.size + 2 + int((fill + np.nansum(buy) + np.nansum(sell)) / bucket_volume) + 1)
    nb = 0
    if fill >= bucket_volume:
        out[nb] = abs(2.0 * fill_buy - fill) / fill
        nb += 1
        fill = 0.0
        fill_buy = 0.0
    for i in range(buy.size):
        b = buy[i]
        s = sell[i]
        if not (np.isfinite(b) and np.isfinite(s)) or b < 0.0 or s < 0.0:
            continue
        vol = b + s
        if vol <= 0.0:
            continue
        share = b / vol
        while vol > 0.0:
            room = bucket_volume - fill
            take = vol if vol < room else room
            fill += take
            fill_buy += take * share
            vol -= take
            if fill >= bucket_volume * (1.0 - 1e-12):
                out[nb] = abs(2.0 * fill_buy - fill) / fill
                nb += 1
                fill = 0.0
                fill_buy = 0.0
    return out[:nb], fill, fill_buy


@njit(cache=True)
def bulk_buy_fraction(log_return, sigma):
    """Bulk volume classification (Easley, López de Prado & O'Hara 2012, eq. 1): the buy share of a
    bar is ``Z(dP / sigma_dP)``, ``Z`` the standard normal CDF; here ``dP`` is the bar's log return
    (close to close) and ``sigma`` a std of such returns known before the day. NaN returns give 0.5."""
    out = np.empty(log_return.size)
    for i in range(log_return.size):
        r = log_return[i]
        out[i] = 0.5 if not np.isfinite(r) else 0.5 * math.erfc(-r / sigma / math.sqrt(2.0))
    return out
