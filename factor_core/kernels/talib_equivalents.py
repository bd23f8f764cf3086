"""Numba equivalents of TA-Lib indicators: SMA-seeded EMA, MACD, Wilder RSI / ATR, Bollinger bands, OBV.

Recursive kernels (EMA, Wilder, OBV) skip leading NaNs the way TA-Lib's Python
wrapper does (the computation starts at the first index where all inputs are
finite, so look-backs count from there); an interior NaN propagates forward
(the state is lost). ``factors.resample_bars`` forward-fills prices over empty
hours precisely so that this never happens on bar data.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from factor_core.kernels.common import first_finite, first_finite2, first_finite3
from factor_core.kernels.windows import rolling_moments, rolling_sum


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def ema_talib(x, n):
    """Numba equivalent of ``talib.EMA(x, timeperiod=n)`` (default compatibility, no unstable period).

    ``k = 2 / (n + 1)``; seeded with the simple mean of the first ``n`` finite
    values, emitted at ``start + n - 1``; then ``ema = (x - ema) * k + ema``
    (TA-Lib's operation order; FMA contraction allowed, ~1 ulp). Leading NaNs
    are skipped like the TA-Lib wrapper does; an interior NaN propagates.
    """
    m = x.size
    out = np.empty(m)
    s0 = first_finite(x)
    if n < 1 or m - s0 < n:
        out[:] = np.nan
        return out
    out[: s0 + n - 1] = np.nan
    k = 2.0 / (n + 1.0)
    total = 0.0
    for i in range(s0, s0 + n):
        total += x[i]
    prev = total / n
    out[s0 + n - 1] = prev
    for i in range(s0 + n, m):
        prev = (x[i] - prev) * k + prev
        out[i] = prev
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def macd(close, fast, slow, signal):
    """MACD as the contract defines it: ``ema_talib(close, fast) - ema_talib(close, slow)``,
    signal = ``ema_talib(macd_line, signal)`` (SMA-seeded over the first ``signal``
    defined MACD values), hist = line - signal. One fused pass.

    Equals ``talib.EMA(c, fast) - talib.EMA(c, slow)`` and ``talib.EMA`` of that.
    Note: ``talib.MACD`` itself seeds the fast EMA later (aligned to the slow
    one) and therefore differs during the first few hundred bars.
    Returns ``(line, signal, hist)``; requires ``fast <= slow``.
    """
    m = close.size
    line = np.empty(m)
    sig = np.empty(m)
    hist = np.empty(m)
    s0 = first_finite(close)
    first_line = s0 + slow - 1
    first_sig = first_line + signal - 1
    line[: min(m, first_line)] = np.nan
    sig[: min(m, first_sig)] = np.nan
    hist[: min(m, first_sig)] = np.nan
    if fast < 1 or slow < fast or signal < 1 or first_line >= m:
        return line, sig, hist
    kf = 2.0 / (fast + 1.0)
    ks = 2.0 / (slow + 1.0)
    kg = 2.0 / (signal + 1.0)
    tf = 0.0
    ts_ = 0.0
    for i in range(s0, first_line + 1):
        ts_ += close[i]
        if i < s0 + fast:
            tf += close[i]
    ef = tf / fast
    for i in range(s0 + fast, first_line + 1):
        ef = (close[i] - ef) * kf + ef
    es = ts_ / slow
    line[first_line] = ef - es
    tg = line[first_line]
    # bars first_line+1 .. first_sig: the line only, summing the signal's seed
    for i in range(first_line + 1, min(m, first_sig + 1)):
        x = close[i]
        ef = (x - ef) * kf + ef
        es = (x - es) * ks + es
        v = ef - es
        line[i] = v
        tg += v
    eg = 0.0
    if first_sig < m:
        if first_sig == first_line:  # signal == 1
            sig[first_sig] = line[first_sig]
            hist[first_sig] = 0.0
        else:
            eg = tg / signal
            sig[first_sig] = eg
            hist[first_sig] = line[first_sig] - eg
    # steady state: no branches
    for i in range(first_sig + 1, m):
        x = close[i]
        ef = (x - ef) * kf + ef
        es = (x - es) * ks + es
        v = ef - es
        eg = (v - eg) * kg + eg
        line[i] = v
        sig[i] = eg
        hist[i] = v - eg
    return line, sig, hist


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def rsi_wilder(close, n):
    """Numba equivalent of ``talib.RSI(close, timeperiod=n)`` — Wilder smoothing.

    Average gain/loss are seeded with the simple mean of the first ``n``
    changes (first value at ``start + n``), then ``avg = (avg * (n-1) + x) / n``
    (the division by ``n`` is a multiplication by ``1/n``: within 1e-15 of TA-Lib).
    ``RSI = 100 * gain / (gain + loss)``; when ``gain + loss == 0`` (a flat
    series) RSI is 0, as TA-Lib defines it. Only an exact zero counts as flat
    (as in TA-Lib >= 0.6; TA-Lib < 0.6 used an absolute 1e-8 threshold that
    zeroed the RSI of sub-micro prices), so the kernel is scale-invariant.
    A non-finite close after the start makes the state NaN from there on.
    """
    m = close.size
    out = np.empty(m)
    s0 = first_finite(close)
    if n < 1 or m - s0 <= n:
        out[:] = np.nan
        return out
    out[: s0 + n] = np.nan
    gain = 0.0
    loss = 0.0
    prev = close[s0]
    for i in range(s0 + 1, s0 + n + 1):
        d = close[i] - prev
        prev = close[i]
        if d < 0.0:
            loss -= d
        else:
            gain += d
    gain /= n
    loss /= n
    t = gain + loss
    out[s0 + n] = 100.0 * (gain / t) if t != 0.0 else (0.0 if t == t else np.nan)
    nm1 = float(n - 1)
    inv = 1.0 / n
    for i in range(s0 + n + 1, m):
        x = close[i]
        d = x - prev
        prev = x
        up = d if d > 0.0 else 0.0
        dn = -d if d < 0.0 else 0.0
        if d != d:
            up = d
            dn = d
        gain = (gain * nm1 + up) * inv
        loss = (loss * nm1 + dn) * inv
        t = gain + loss
        out[i] = 100.0 * (gain / t) if t != 0.0 else (0.0 if t == t else np.nan)
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def atr_wilder(high, low, close, n):
    """Numba equivalent of ``talib.ATR(high, low, close, timeperiod=n)`` — Wilder's ATR.

    Seed: simple mean of the first ``n`` true ranges (bars ``start+1 .. start+n``),
    emitted at ``start + n``; then ``atr = (atr * (n-1) + tr) / n`` (``/ n`` as
    ``* (1/n)``). True range fused in the same pass.
    """
    m = close.size
    out = np.empty(m)
    s0 = first_finite3(high, low, close)
    if n < 1 or m - s0 <= n:
        out[:] = np.nan
        return out
    out[: s0 + n] = np.nan
    total = 0.0
    for i in range(s0 + 1, s0 + n + 1):
        pc = close[i - 1]
        total += max(high[i] - low[i], abs(high[i] - pc), abs(low[i] - pc))
    prev = total / n
    out[s0 + n] = prev
    nm1 = float(n - 1)
    inv = 1.0 / n
    for i in range(s0 + n + 1, m):
        pc = close[i - 1]
        a = high[i] - low[i]
        b = abs(high[i] - pc)
        c = abs(low[i] - pc)
        tr = a if a > b else b
        tr = tr if tr > c else c
        if a != a or b != b or c != c:
            tr = np.nan
        prev = (prev * nm1 + tr) * inv
        out[i] = prev
    return out


@njit(cache=True)
def bbands(close, n, k):
    """Bollinger bands only: ``(upper, mid, lower)`` in ``talib.BBANDS`` order.

    Reference: ``talib.BBANDS(close, n, k, k, matype=0)``: ``mid = SMA(n)``,
    ``upper/lower = mid ± k * population std (ddof=0)``. The moments come from
    ``rolling_moments`` (shifted running sums rebuilt every ``16 n`` steps), so
    a flat window has ``upper == lower == mid`` exactly, as in TA-Lib, and price
    level costs no precision. A window holding a NaN gives NaN.
    """
    mid, upper = rolling_moments(close, n, 0, 16 * n)
    lower = np.empty(close.size)
    for i in range(close.size):  # upper reuses the std array: one output fewer to allocate
        dev = k * upper[i]
        upper[i] = mid[i] + dev
        lower[i] = mid[i] - dev
    return upper, mid, lower


@njit(cache=True, error_model="numpy")
def bb_position_width(close, upper, lower, mid):
    """``position = (close - lower) / (upper - lower)`` (0 at the lower, 1 at the upper band, NaN if
    the bands coincide) and ``width = (upper - lower) / mid`` (NaN if ``mid == 0``)."""
    m = close.size
    pos = np.empty(m)
    wid = np.empty(m)
    for i in range(m):
        u = upper[i]
        l = lower[i]
        w = u - l
        mu = mid[i]
        pos[i] = (close[i] - l) / w if w > 0.0 else np.nan
        wid[i] = w / mu if mu != 0.0 else np.nan
    return pos, wid


@njit(cache=True)
def bollinger(close, n, k):
    """Bollinger bands plus derived columns: ``bbands`` then ``bb_position_width``.

    ``mid = SMA(n)``, ``upper/lower = mid ± k * population std (ddof=0)`` (as
    ``talib.BBANDS(close, n, k, k, matype=0)``), ``position = (close - lower) /
    (upper - lower)`` (NaN if the bands coincide) and ``width = (upper - lower) / mid``.
    Returns ``(mid, upper, lower, position, width)``.
    """
    up, mid, lo = bbands(close, n, k)
    pos, wid = bb_position_width(close, up, lo, mid)
    return mid, up, lo, pos, wid


@njit(cache=True)
def obv_talib(close, volume):
    """Numba equivalent of ``talib.OBV(close, volume)``: starts at ``volume[start]``, then
    ``+volume`` on an up-close, ``-volume`` on a down-close, unchanged on equal closes.

    Cumulative, so it depends on where the series starts (see ``obv_window``).
    """
    m = close.size
    out = np.full(m, np.nan)
    s0 = first_finite2(close, volume)
    if s0 >= m:
        return out
    acc = volume[s0]
    prev = close[s0]
    out[s0] = acc
    for i in range(s0 + 1, m):
        c = close[i]
        if c > prev:
            acc += volume[i]
        elif c < prev:
            acc -= volume[i]
        out[i] = acc
        prev = c
    return out


@njit(cache=True)
def obv_window(close, volume, n):
    """Windowed OBV: ``sum over the last n bars of sign(close_t - close_{t-1}) * volume_t``.

    Equals ``talib.OBV(c, v)[t] - talib.OBV(c, v)[t - n]``, so it does not depend
    on where the series starts.
    """
    m = close.size
    sv = np.full(m, np.nan)
    for i in range(1, m):
        d = close[i] - close[i - 1]
        if d == d:
            sv[i] = volume[i] if d > 0.0 else (-volume[i] if d < 0.0 else 0.0)
    return rolling_sum(sv, n)
