"""Fixed-length rolling windows: sums, means, moments, ratios and the OLS slope over the last ``n`` bars.

A window holding a NaN gives NaN, except in ``rolling_mean_nan`` (which skips
NaNs and needs ``min_count`` finite values) and ``rolling_ols_slope`` (finite
pairs only). Running sums are re-synchronised from scratch every ``n`` steps,
so the rounding error stays at a few ulps of the window and does not depend on
where the series started.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from factor_core.kernels.common import safe_ratio


@njit(cache=True, inline="always")
def _neumaier(s, comp, x):
    """Neumaier-compensated ``s + x`` (branch-free): returns the new sum and compensation."""
    t = s + x
    a = (s - t) + x
    b = (x - t) + s
    comp += a if abs(s) >= abs(x) else b
    return t, comp


@njit(cache=True, inline="always")
def _finite_sum(x, lo, hi):
    """Neumaier-compensated sum of the finite values of ``x[lo:hi]``: ``(sum, compensation)``."""
    s = 0.0
    comp = 0.0
    for j in range(lo, hi):
        if np.isfinite(x[j]):
            s, comp = _neumaier(s, comp, x[j])
    return s, comp


@njit(cache=True)
def rolling_sum(x, n):
    """Sum of the last ``n`` values; NaN until ``n`` values exist or if the window holds a NaN.

    Reference: ``pd.Series(x).rolling(n).sum()`` (min_periods = n). Running sum
    with Neumaier compensation (like pandas' Kahan summation: a huge value
    leaving the window leaves no residue), re-synchronised every ``n`` steps.
    """
    m = x.size
    out = np.full(m, np.nan)
    if n <= 0:
        return out
    s = 0.0
    comp = 0.0
    bad = 0
    countdown = n  # rebuild when it reaches 0: at i = n-1, 2n-1, ... (no integer modulo)
    for i in range(m):
        countdown -= 1
        xi = x[i]
        if np.isfinite(xi):
            s, comp = _neumaier(s, comp, xi)
        else:
            bad += 1
        if i >= n:
            xo = x[i - n]
            if np.isfinite(xo):
                s, comp = _neumaier(s, comp, -xo)
            else:
                bad -= 1
        if i >= n - 1:
            if countdown == 0:
                countdown = n
                s, comp = _finite_sum(x, i - n + 1, i + 1)
            if bad == 0:
                out[i] = s + comp
    return out


@njit(cache=True)
def rolling_mean_nan(x, n, min_count):
    """Mean of the finite values among the last ``n``; NaN if fewer than ``min_count`` are finite.

    Reference: ``pd.Series(x).rolling(n, min_periods=min_count).mean()`` (the
    first ``n - 1`` positions are NaN as well, windows are always full length).
    Compensated running sum as in ``rolling_sum``.
    """
    m = x.size
    out = np.full(m, np.nan)
    s = 0.0
    comp = 0.0
    k = 0
    countdown = n
    for i in range(m):
        countdown -= 1
        xi = x[i]
        if np.isfinite(xi):
            s, comp = _neumaier(s, comp, xi)
            k += 1
        if i >= n:
            xo = x[i - n]
            if np.isfinite(xo):
                s, comp = _neumaier(s, comp, -xo)
                k -= 1
        if i >= n - 1:
            if countdown == 0:
                countdown = n
                s, comp = _finite_sum(x, i - n + 1, i + 1)
            if k >= min_count and k > 0:
                out[i] = (s + comp) / k
    return out


@njit(cache=True)
def rolling_moments(x, n, ddof, resync_every):
    """Rolling mean and standard deviation (``ddof``) of the last ``n`` values: ``(mean, std)``.

    Reference: ``s.rolling(n).mean()`` and ``s.rolling(n).std(ddof=ddof)``; NaN
    where the window is short or holds a NaN, everywhere if ``n < 1`` or
    ``n <= ddof``. One pass of running sums of ``d = x - K`` and ``d**2``
    around a shift ``K`` (the latest value at the last re-synchronisation), so
    price-level series lose no precision. The sums are rebuilt from the window
    every ``resync_every`` steps, when the sum of squares collapses by > 1e3 in
    one step (a dominant value left the window) and when the variance cancels
    below 1e-9 of the mean square (a flat window: exactly 0 after the rebuild).
    ``/ n`` and ``/ (n - ddof)`` are multiplications by the reciprocal (within an ulp).
    """
    m = x.size
    mean = np.empty(m)
    std = np.empty(m)
    if n < 1 or n <= ddof:
        mean[:] = np.nan
        std[:] = np.nan
        return mean, std
    inv_n = 1.0 / n
    inv_dof = 1.0 / (n - ddof)
    K = 0.0
    s1 = 0.0
    s2 = 0.0
    bad = 0
    countdown = resync_every
    for i in range(m):
        countdown -= 1
        xi = x[i]
        if np.isfinite(xi):
            d = xi - K
            s1 += d
            s2 += d * d
        else:
            bad += 1
        rebuild = False
        if i >= n:
            xo = x[i - n]
            if np.isfinite(xo):
                d = xo - K
                before = s2
                s1 -= d
                s2 -= d * d
                rebuild = s2 < 1e-3 * before
            else:
                bad -= 1
        if i < n - 1 or bad > 0:
            mean[i] = np.nan
            std[i] = np.nan
            continue
        q = s1 * inv_n
        num = s2 - s1 * q
        if rebuild or countdown <= 0 or num <= 1e-9 * s2:
            countdown = resync_every
            K = xi
            s1 = 0.0
            s2 = 0.0
            for j in range(i - n + 1, i + 1):
                d = x[j] - K
                s1 += d
                s2 += d * d
            q = s1 * inv_n
            num = s2 - s1 * q
        if num < 0.0:
            num = 0.0
        mean[i] = K + q
        std[i] = math.sqrt(num * inv_dof)
    return mean, std


@njit(cache=True)
def rolling_std(x, n, ddof):
    """Standard deviation of the last ``n`` values with ``ddof`` (0 = population, 1 = sample).

    Reference: ``pd.Series(x).rolling(n).std(ddof=ddof)``. NaN if the window holds
    a NaN or ``n - ddof <= 0``. Shifted running sums (``rolling_moments``,
    rebuilt every ``n`` steps), so price-level series lose no precision and a
    flat window gives exactly 0.
    """
    return rolling_moments(x, n, ddof, n)[1]


@njit(cache=True)
def rolling_ratio(num, den, n):
    """``rolling_sum(num, n) / rolling_sum(den, n)``; NaN if the denominator sum is 0.

    Reference: ``num.rolling(n).sum() / den.rolling(n).sum()``; used for the
    rolling VWAP (quote volume / base volume).
    """
    return safe_ratio(rolling_sum(num, n), rolling_sum(den, n))


@njit(cache=True)
def realized_vol(realized_var, n):
    """``sqrt(sum of the last n bars' realized variance)`` (log-return units, not annualised).

    Reference: Andersen & Bollerslev (1998) realised variance; per bar the
    input is the sum of squared 1-minute log returns.
    """
    s = rolling_sum(realized_var, n)
    out = np.full(s.size, np.nan)
    for i in range(s.size):
        if np.isfinite(s[i]) and s[i] >= 0.0:
            out[i] = math.sqrt(s[i])
    return out


@njit(cache=True)
def volume_momentum(volume, n):
    """``sum(volume, last n) / sum(volume, the n before) - 1``; NaN if the earlier sum is 0.

    Reference: ``v.rolling(n).sum() / v.rolling(n).sum().shift(n) - 1``.
    """
    s = rolling_sum(volume, n)
    out = np.full(s.size, np.nan)
    for i in range(n, s.size):
        a = s[i]
        b = s[i - n]
        if np.isfinite(a) and np.isfinite(b) and b > 0.0:
            out[i] = a / b - 1.0
    return out


@njit(cache=True)
def rolling_ols_slope(y, x, n, min_count):
    """OLS slope of ``y`` on ``x`` (with intercept) over the last ``n`` pairs.

    Reference: ``np.polyfit(x[window], y[window], 1)[0]`` =
    ``y.rolling(n).cov(x) / x.rolling(n).var()``, over the finite pairs in the
    window; NaN if fewer than ``min_count`` pairs or ``var(x) == 0``. Computed
    directly per window (two-pass, O(n) each) for numerical safety.
    """
    m = y.size
    out = np.full(m, np.nan)
    for i in range(n - 1, m):
        sx = 0.0
        sy = 0.0
        k = 0
        for j in range(i - n + 1, i + 1):
            if np.isfinite(x[j]) and np.isfinite(y[j]):
                sx += x[j]
                sy += y[j]
                k += 1
        if k < min_count or k < 2:
            continue
        mx = sx / k
        my = sy / k
        sxx = 0.0
        sxy = 0.0
        for j in range(i - n + 1, i + 1):
            if np.isfinite(x[j]) and np.isfinite(y[j]):
                dx = x[j] - mx
                sxx += dx * dx
                sxy += dx * (y[j] - my)
        if sxx > 0.0:
            out[i] = sxy / sxx
    return out
