"""Returns over a fixed number of bars, and fixed-weight combinations of factor columns."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def log_return(close, n):
    """``ln(close_t / close_{t-n})``; NaN for the first ``n`` values or a non-finite/non-positive price.

    Reference: ``np.log(close / close.shift(n))``.
    """
    out = np.full(close.size, np.nan)
    for i in range(n, close.size):
        a = close[i]
        b = close[i - n]
        if np.isfinite(a) and np.isfinite(b) and a > 0.0 and b > 0.0:
            out[i] = math.log(a / b)
    return out


@njit(cache=True)
def simple_return(close, n):
    """Momentum as a simple return ``close_t / close_{t-n} - 1``.

    Reference: ``close.pct_change(n)`` (NaN for non-finite or non-positive prices).
    """
    out = np.full(close.size, np.nan)
    for i in range(n, close.size):
        a = close[i]
        b = close[i - n]
        if np.isfinite(a) and np.isfinite(b) and b > 0.0:
            out[i] = a / b - 1.0
    return out


@njit(cache=True)
def weighted_sum3(a, b, c, wa, wb, wc):
    """``wa*a + wb*b + wc*c``; NaN if any term is NaN (no re-weighting of missing terms).

    Reference: ``wa * a + wb * b + wc * c`` in NumPy.
    """
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = wa * a[i] + wb * b[i] + wc * c[i]
    return out
