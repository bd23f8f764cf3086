"""Small helpers shared by the kernels: first finite index, safe division."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def first_finite(x):
    """Index of the first finite element of ``x`` (``x.size`` if none).

    Reference: ``np.flatnonzero(np.isfinite(x))[0]``.
    """
    for i in range(x.size):
        if np.isfinite(x[i]):
            return i
    return x.size


@njit(cache=True)
def first_finite2(a, b):
    """Index of the first position where both ``a`` and ``b`` are finite (``a.size`` if none)."""
    for i in range(a.size):
        if np.isfinite(a[i]) and np.isfinite(b[i]):
            return i
    return a.size


@njit(cache=True)
def first_finite3(a, b, c):
    """Index of the first position where ``a``, ``b`` and ``c`` are all finite (``a.size`` if none)."""
    for i in range(a.size):
        if np.isfinite(a[i]) and np.isfinite(b[i]) and np.isfinite(c[i]):
            return i
    return a.size


@njit(cache=True)
def safe_ratio(num, den):
    """Element-wise ``num / den``; NaN where ``den == 0`` or either side is not finite.

    Reference: ``(num / den)`` with ``inf`` and division by zero replaced by NaN.
    """
    out = np.full(num.size, np.nan)
    for i in range(num.size):
        a = num[i]
        b = den[i]
        if np.isfinite(a) and np.isfinite(b) and b != 0.0:
            out[i] = a / b
    return out
