"""Liquidity and order-flow estimators on bars: Amihud, Kyle-type price impact, Corwin–Schultz, turnover, OFI."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from factor_core.kernels.windows import rolling_mean_nan, rolling_ols_slope, rolling_sum


@njit(cache=True)
def amihud(log_ret, quote_volume, n, scale):
    """Amihud (2002) illiquidity: mean over the last ``n`` bars of ``|r| / quote_volume * scale``.

    Reference: ``(r.abs() / qv.where(qv > 0) * scale).rolling(n, min_periods=n // 2).mean()``.
    Bars with zero/non-finite quote volume or NaN return are skipped (no
    division by zero); NaN if fewer than ``n // 2`` bars qualify.
    """
    x = np.full(log_ret.size, np.nan)
    for i in range(log_ret.size):
        q = quote_volume[i]
        r = log_ret[i]
        if np.isfinite(r) and np.isfinite(q) and q > 0.0:
            x[i] = abs(r) / q * scale
    return rolling_mean_nan(x, n, max(1, n // 2))


@njit(cache=True)
def price_impact(log_ret, taker_buy_quote, quote_volume, n, min_count):
    """Kyle-type price impact on bars: OLS slope of ``1e4 * log_ret`` (bps) on signed quote
    volume ``(2 * taker_buy_quote - quote_volume)`` in millions, over the last ``n`` bars.

    Reference: Kyle (1985) lambda estimated as in Hasbrouck (2009): regression
    of returns on signed order flow. Unit: bps per 1M quote currency. NaN if
    fewer than ``min_count`` valid bars or no variation in signed flow.
    """
    y = np.empty(log_ret.size)
    x = np.empty(log_ret.size)
    for i in range(log_ret.size):
        y[i] = log_ret[i] * 1e4
        x[i] = (2.0 * taker_buy_quote[i] - quote_volume[i]) * 1e-6
    return rolling_ols_slope(y, x, n, min_count)


@njit(cache=True)
def corwin_schultz(high, low):
    """Corwin & Schultz (2012) two-period high-low spread estimate for each pair (t-1, t).

    ``beta = ln(H_{t-1}/L_{t-1})^2 + ln(H_t/L_t)^2``,
    ``gamma = ln(max(H_{t-1},H_t) / min(L_{t-1},L_t))^2``,
    ``alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))``,
    ``S = 2 (e^alpha - 1) / (1 + e^alpha)``, with negative ``alpha`` set to 0
    (the paper's convention), so ``S >= 0``. Value at ``t`` uses bars ``t-1``
    and ``t`` only (no look-ahead); NaN at ``t = 0`` or for invalid prices.
    Returned as a fraction (multiply by 1e4 for bps).
    """
    m = high.size
    out = np.full(m, np.nan)
    k = 3.0 - 2.0 * math.sqrt(2.0)
    for i in range(1, m):
        h0 = high[i - 1]
        l0 = low[i - 1]
        h1 = high[i]
        l1 = low[i]
        if not (np.isfinite(h0) and np.isfinite(l0) and np.isfinite(h1) and np.isfinite(l1)):
            continue
        if l0 <= 0.0 or l1 <= 0.0 or h0 < l0 or h1 < l1:
            continue
        a0 = math.log(h0 / l0)
        a1 = math.log(h1 / l1)
        beta = a0 * a0 + a1 * a1
        g = math.log(max(h0, h1) / min(l0, l1))
        gamma = g * g
        alpha = (math.sqrt(2.0 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
        if alpha < 0.0:
            alpha = 0.0
        e = math.exp(alpha)
        out[i] = 2.0 * (e - 1.0) / (1.0 + e)
    return out


@njit(cache=True)
def spread_cs(high, low, n, scale):
    """Rolling mean of the Corwin–Schultz estimate over the last ``n`` bar pairs, times ``scale`` (1e4 = bps).

    Reference: ``(corwin_schultz(h, l) * scale).rolling(n, min_periods=n // 2).mean()``;
    NaN if fewer than ``n // 2`` valid pairs in the window.
    """
    s = corwin_schultz(high, low)
    for i in range(s.size):
        s[i] *= scale
    return rolling_mean_nan(s, n, max(1, n // 2))


@njit(cache=True)
def turnover_ratio(quote_volume, short, long):
    """Relative turnover: ``sum(qv, short) / (sum(qv, long) * short / long)``.

    Reference: ``qv.rolling(short).sum() / (qv.rolling(long).sum() * short / long)``.
    1.0 means the last ``short`` bars traded at the ``long``-window average
    pace. NaN if the long sum is 0.
    """
    a = rolling_sum(quote_volume, short)
    b = rolling_sum(quote_volume, long)
    out = np.full(a.size, np.nan)
    scale = short / long
    for i in range(a.size):
        if np.isfinite(a[i]) and np.isfinite(b[i]) and b[i] > 0.0:
            out[i] = a[i] / (b[i] * scale)
    return out


@njit(cache=True)
def order_flow_imbalance(taker_buy, volume, n):
    """Taker order-flow imbalance ``(buy - sell) / volume = (2 * sum(taker_buy) - sum(volume)) / sum(volume)``.

    Reference: ``(2 * tb.rolling(n).sum() - v.rolling(n).sum()) / v.rolling(n).sum()``.
    In [-1, 1]; NaN if the window's volume is 0. ``n = 1`` gives the per-bar value.
    """
    b = rolling_sum(taker_buy, n)
    v = rolling_sum(volume, n)
    out = np.full(b.size, np.nan)
    for i in range(b.size):
        if np.isfinite(b[i]) and np.isfinite(v[i]) and v[i] > 0.0:
            out[i] = (2.0 * b[i] - v[i]) / v[i]
    return out
