"""Numba kernels for the factor library: one operation each, NumPy arrays in and out.

Conventions shared by every kernel (unless its docstring says otherwise):

* Inputs are 1-D ``float64`` arrays of equal length, oldest first; outputs are
  new ``float64`` arrays of the same length, ``NaN`` where the value is not
  defined (warm-up, division by zero, missing input).
* **Leading NaN** (a series that starts late) is skipped the way TA-Lib's
  Python wrapper does it: the computation starts at the first index where all
  inputs are finite, so lookbacks count from there.
* **Interior NaN** in a *recursive* kernel (EMA, Wilder, OBV) propagates
  forward: the state is lost. ``factors.resample_bars`` forward-fills prices
  over empty hours precisely so that this never happens on bar data. Window
  kernels (``rolling_*``) return NaN for every window that contains a NaN,
  except the ``*_nan`` variants, which skip NaNs and need ``min_count`` finite
  values.
* Nothing here divides by zero: a zero denominator gives NaN, never ``inf``.
* Rolling sums are running sums re-synchronised from scratch every ``n``
  steps, so the accumulated rounding error stays at a few ulps of the window
  (results agree with a direct sum to ~1e-15 relative, and do not depend on
  where the series started beyond that).

Nothing in this module imports pandas or Dagster.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

NS_PER_MINUTE = 60_000_000_000
_IS_LINUX = sys.platform.startswith("linux")


# --------------------------------------------------------------------------- allocation

_MADV_HUGEPAGE = 14
_HUGEPAGE_MIN_BYTES = 4 << 20


@intrinsic
def _madvise(typingctx, addr, length, advice):
    """``madvise(addr, length, advice)`` from libc (Linux), resolved by name like NRT's own symbols."""
    if isinstance(addr, types.Integer) and isinstance(length, types.Integer) and isinstance(advice, types.Integer):
        def codegen(context, builder, signature, args):
            i8p = llvm_ir.IntType(8).as_pointer()
            fnty = llvm_ir.FunctionType(llvm_ir.IntType(32), [i8p, llvm_ir.IntType(64), llvm_ir.IntType(32)])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "madvise")
            a = builder.inttoptr(context.cast(builder, args[0], signature.args[0], types.int64), i8p)
            n = context.cast(builder, args[1], signature.args[1], types.int64)
            adv = context.cast(builder, args[2], signature.args[2], types.int32)
            return builder.call(fn, [a, n, adv])
        return types.int32(addr, length, advice), codegen
    return None


@njit(cache=True)
def empty_f64(m):
    """``np.empty(m)`` whose pages are transparent huge pages when the array is >= 4 MiB.

    NumPy does the same for its own large arrays (``madvise(MADV_HUGEPAGE)``);
    NRT's ``np.empty`` does not, and first-touch 4 KiB page faults then cost
    more than the kernels themselves on multi-million-element outputs. Linux
    only; elsewhere (or if THP is disabled) the advice is a no-op.
    """
    a = np.empty(m)
    nbytes = m * 8
    if _IS_LINUX and nbytes >= _HUGEPAGE_MIN_BYTES:
        p = np.int64(a.ctypes.data)
        lo = (p + 4095) & ~np.int64(4095)
        hi = (p + nbytes) & ~np.int64(4095)
        if hi > lo:
            _madvise(lo, hi - lo, _MADV_HUGEPAGE)
    return a


# --------------------------------------------------------------------------- helpers


@njit(cache=True)
def first_finite(x):
    """Index of the first finite element of ``x`` (``x.size`` if none)."""
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
    """Index of the first position where ``a``, ``b`` and ``c`` are all finite."""
    for i in range(a.size):
        if np.isfinite(a[i]) and np.isfinite(b[i]) and np.isfinite(c[i]):
            return i
    return a.size


@njit(cache=True)
def is_sorted(ts):
    """True if the int64 array ``ts`` is non-decreasing."""
    for i in range(1, ts.size):
        if ts[i] < ts[i - 1]:
            return False
    return True


# --------------------------------------------------------------------------- resampling

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_DBL_MIN = 2.2250738585072014e-308


@intrinsic
def _f64_to_bits(typingctx, x):
    """Reinterpret a float64 as int64 (a register move; lets LLVM vectorise ``_log_normal``)."""
    if isinstance(x, types.Float) and x.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvm_ir.IntType(64))
        return types.int64(x), codegen
    return None


@intrinsic
def _bits_to_f64(typingctx, x):
    """Reinterpret an int64 as float64."""
    if isinstance(x, types.Integer) and x.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvm_ir.DoubleType())
        return types.float64(x), codegen
    return None


@njit(cache=True, inline="always", error_model="numpy")
def _log_normal(x):
    """Natural log of a positive *normal* finite float64, branch-free (vectorisable).

    fdlibm / musl ``log`` (argument reduction to [sqrt(2)/2, sqrt(2)), degree-14
    polynomial in ``s = f / (2 + f)``), error < 1 ulp: agrees with ``math.log``
    to the last bit or one ulp. Garbage (not an exception) for x <= 0, subnormal,
    inf or NaN, so callers must only use the result for valid inputs.
    """
    u = _f64_to_bits(x)
    u += np.int64(0x3FF00000 - 0x3FE6A09E) << 32
    k = (u >> 52) - 0x3FF
    u = (u & np.int64(0x000FFFFFFFFFFFFF)) + (np.int64(0x3FE6A09E) << 32)
    f = _bits_to_f64(u) - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    dk = float(k)
    return s * (hfsq + r) + dk * _LN2_LO - hfsq + f + dk * _LN2_HI


_RESAMPLE_CHUNK = 1024


@njit(cache=True, error_model="numpy")
def resample_minutes(ts, o, h, l, c, v, qv, tc, tbv, tbqv, bar_ns):
    """Aggregate 1-minute bars (sorted by open time ``ts``, int64 ns) into bars of ``bar_ns``.

    Reference: the pandas reference ``df.resample(freq, label="left", closed="left")``
    with ``open=first, high=max, low=min, close=last`` and sums for the volume
    columns. The bar grid runs from the bar containing ``ts[0]`` to the bar
    containing ``ts[-1]``, every bar present. Raises ``ValueError`` if ``ts`` is
    not sorted (the caller sorts and retries: sortedness is checked in the same pass).

    Rules:
    * A minute whose open/high/low/close is not finite or not > 0 contributes no
      prices (it is treated as missing); its finite volume fields still count.
      Non-finite volume fields count as 0.
    * A bar without any valid minute gets ``open = high = low = close =`` the
      previous bar's close (forward fill), zero volumes, ``n_minutes = 0`` and
      ``realized_var = 0``. Bars before the first valid price stay NaN.
    * ``realized_var`` is the sum of squared 1-minute log returns
      ``ln(close_i) - ln(close_prev)`` of the minutes in the bar, where ``close_prev``
      is the close of the previous valid minute in the input (possibly in an
      earlier bar: only past data). The very first valid minute of the input
      uses ``ln(close / open)``.

    One streaming pass over the input columns (each read once, ~80 bytes/row,
    so the kernel runs near memory bandwidth): the logs of a chunk of closes are
    computed first by a vectorised loop (``_log_normal``) into a small buffer
    that stays in L1, then the rows of the chunk are aggregated in order.

    Returns ``(bar_start_ns, open, high, low, close, volume, quote_volume,
    trade_count, taker_buy_volume, taker_buy_quote_volume, n_minutes, realized_var)``.
    """
    m = ts.size
    if m == 0:
        e = np.empty(0, dtype=np.float64)
        ei = np.empty(0, dtype=np.int64)
        return ei, e, e.copy(), e.copy(), e.copy(), e.copy(), e.copy(), ei.copy(), e.copy(), e.copy(), ei.copy(), e.copy()
    t0 = (ts[0] // bar_ns) * bar_ns
    nb = ((ts[m - 1] // bar_ns) * bar_ns - t0) // bar_ns + 1
    if nb < 1:
        raise ValueError("resample_minutes: ts is not sorted")
    start = np.empty(nb, dtype=np.int64)
    for b in range(nb):
        start[b] = t0 + b * bar_ns
    bo = np.empty(nb)
    bh = np.empty(nb)
    bl = np.empty(nb)
    bc = np.empty(nb)
    bv = np.zeros(nb)
    bqv = np.zeros(nb)
    btc = np.zeros(nb, dtype=np.int64)
    btbv = np.zeros(nb)
    btbqv = np.zeros(nb)
    nmin = np.zeros(nb, dtype=np.int64)
    rv = np.zeros(nb)
    lbuf = np.empty(_RESAMPLE_CHUNK)
    have_prev = False
    prev_lc = 0.0
    prev_t = ts[0]
    # state of the current bar
    b = -1
    end = t0  # first row opens bar 0
    sv = 0.0
    sqv = 0.0
    stbv = 0.0
    stbqv = 0.0
    stc = 0
    k = 0
    fo = 0.0
    hi = 0.0
    lo = 0.0
    cl = 0.0
    srv = 0.0
    for a in range(0, m, _RESAMPLE_CHUNK):
        z = min(m, a + _RESAMPLE_CHUNK)
        seg = c[a:z]
        for r in range(seg.size):  # vectorised (no branches, no calls, zero-based index)
            lbuf[r] = _log_normal(seg[r])
        for r in range(a, z):
            t = ts[r]
            if t < prev_t:
                raise ValueError("resample_minutes: ts is not sorted")
            prev_t = t
            if t >= end:
                if b >= 0:
                    bv[b] = sv
                    bqv[b] = sqv
                    btbv[b] = stbv
                    btbqv[b] = stbqv
                    btc[b] = stc
                    nmin[b] = k
                    rv[b] = srv
                    bo[b] = fo
                    bh[b] = hi
                    bl[b] = lo
                    bc[b] = cl
                b = (t - t0) // bar_ns
                if b >= nb:
                    raise ValueError("resample_minutes: ts is not sorted")
                end = t0 + (b + 1) * bar_ns
                sv = 0.0
                sqv = 0.0
                stbv = 0.0
                stbqv = 0.0
                stc = 0
                k = 0
                fo = np.nan
                hi = -np.inf
                lo = np.inf
                cl = np.nan
                srv = 0.0
            x = v[r]
            sv += x if np.isfinite(x) else 0.0
            x = qv[r]
            sqv += x if np.isfinite(x) else 0.0
            x = tbv[r]
            stbv += x if np.isfinite(x) else 0.0
            x = tbqv[r]
            stbqv += x if np.isfinite(x) else 0.0
            stc += tc[r]
            oi = o[r]
            hr = h[r]
            lr = l[r]
            ci = c[r]
            # one comparison chain also rejects NaN (comparisons with NaN are False) and +inf
            if not (oi > 0.0 and hr > 0.0 and lr > 0.0 and ci > 0.0
                    and oi < np.inf and hr < np.inf and lr < np.inf and ci < np.inf):
                continue
            if k == 0:
                fo = oi
            if hr > hi:
                hi = hr
            if lr < lo:
                lo = lr
            lc = lbuf[r - a] if ci >= _DBL_MIN else math.log(ci)
            if have_prev:
                d = lc - prev_lc
            else:
                d = math.log(ci / oi)
                have_prev = True
            srv += d * d
            prev_lc = lc
            cl = ci
            k += 1
    bv[b] = sv
    bqv[b] = sqv
    btbv[b] = stbv
    btbqv[b] = stbqv
    btc[b] = stc
    nmin[b] = k
    rv[b] = srv
    bo[b] = fo
    bh[b] = hi
    bl[b] = lo
    bc[b] = cl
    # bars never visited (no input row) and bars without a valid minute: forward fill
    last = np.nan
    for j in range(nb):
        if nmin[j] == 0:
            bo[j] = last
            bh[j] = last
            bl[j] = last
            bc[j] = last
        else:
            last = bc[j]
    return start, bo, bh, bl, bc, bv, bqv, btc, btbv, btbqv, nmin, rv


@njit(cache=True)
def safe_ratio(num, den):
    """Element-wise ``num / den``; NaN where ``den == 0`` or either side is not finite."""
    out = np.full(num.size, np.nan)
    for i in range(num.size):
        a = num[i]
        b = den[i]
        if np.isfinite(a) and np.isfinite(b) and b != 0.0:
            out[i] = a / b
    return out


@njit(cache=True)
def bin_nanmean(values, bin_idx, n_bins):
    """Mean of the finite ``values`` falling in each bin (``bin_idx`` int64, out-of-range ignored).

    Reference: ``pd.Series(values).groupby(bin_idx).mean()`` reindexed to
    ``range(n_bins)``. A bin without finite values is NaN.
    """
    s = np.zeros(n_bins)
    k = np.zeros(n_bins, dtype=np.int64)
    for i in range(values.size):
        b = bin_idx[i]
        x = values[i]
        if b >= 0 and b < n_bins and np.isfinite(x):
            s[b] += x
            k[b] += 1
    out = np.full(n_bins, np.nan)
    for b in range(n_bins):
        if k[b] > 0:
            out[b] = s[b] / k[b]
    return out


@njit(cache=True)
def asof_values(query_ts, event_ts, event_values, strict=False):
    """Value of the latest event at or before each query time (as-of join, no look-ahead).

    Reference: ``pd.merge_asof(query, events, direction="backward",
    allow_exact_matches=not strict)``. With ``strict=True`` only events
    strictly before the query count (an event stamped exactly at the query
    time is ignored). ``event_ts`` must be sorted (int64 ns); ``query_ts`` must
    be non-decreasing. Events with a non-finite value are skipped (the previous
    finite one stays in force). Queries before the first event are NaN.
    """
    out = np.full(query_ts.size, np.nan)
    j = 0
    cur = np.nan
    for i in range(query_ts.size):
        q = query_ts[i]
        while j < event_ts.size and (event_ts[j] < q or (not strict and event_ts[j] == q)):
            if np.isfinite(event_values[j]):
                cur = event_values[j]
            j += 1
        out[i] = cur
    return out


@njit(cache=True)
def lagged_day_values(query_ts, day_ts, day_values, lag_days):
    """For each query time, the value of the daily row of the UTC day ``lag_days`` before the query's day.

    ``day_ts`` (int64 ns, sorted, unique) are UTC midnights, one per day;
    ``query_ts`` any int64 ns times. Exact-day lookup: when the row of that day
    is missing the value is NaN (nothing older is carried forward), so the
    result for a query depends only on that one day's row.
    Reference: ``days.reindex(query.floor("1D") - lag_days * 1D)``.
    """
    ns_day = np.int64(86_400_000_000_000)
    out = np.full(query_ts.size, np.nan)
    if day_ts.size == 0:
        return out
    for i in range(query_ts.size):
        target = (query_ts[i] // ns_day - lag_days) * ns_day
        j = np.searchsorted(day_ts, target)
        if j < day_ts.size and day_ts[j] == target:
            out[i] = day_values[j]
    return out


# --------------------------------------------------------------------------- returns


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
    """``wa*a + wb*b + wc*c``; NaN if any term is NaN (no re-weighting of missing terms)."""
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = wa * a[i] + wb * b[i] + wc * c[i]
    return out


# --------------------------------------------------------------------------- windows


@njit(cache=True, inline="always")
def _neumaier(s, comp, x):
    """Neumaier-compensated ``s + x`` (branch-free): returns the new sum and compensation."""
    t = s + x
    a = (s - t) + x
    b = (x - t) + s
    comp += a if abs(s) >= abs(x) else b
    return t, comp


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
                s = 0.0
                comp = 0.0
                for j in range(i - n + 1, i + 1):
                    if np.isfinite(x[j]):
                        s, comp = _neumaier(s, comp, x[j])
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
                s = 0.0
                comp = 0.0
                for j in range(i - n + 1, i + 1):
                    if np.isfinite(x[j]):
                        s, comp = _neumaier(s, comp, x[j])
            if k >= min_count and k > 0:
                out[i] = (s + comp) / k
    return out


@njit(cache=True, inline="always")
def _moments_into(x, n, ddof, mean_out, std_out, resync_every):
    """Rolling mean and std (``ddof``) of ``x`` into the given arrays (NaN where undefined).

    Running sums of ``d = x - K`` and ``d**2`` around a shift ``K`` (the latest
    value at the last re-synchronisation), rebuilt from the window every
    ``resync_every`` steps, when the sum of squares collapses by > 1e3 in one
    step (a dominant value left the window) and when the variance cancels
    below 1e-9 of the mean square (a flat window: exactly 0 after the rebuild).
    """
    m = x.size
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
            mean_out[i] = np.nan
            std_out[i] = np.nan
            continue
        num = s2 - s1 * (s1 / n)
        if rebuild or countdown <= 0 or num <= 1e-9 * s2:
            countdown = resync_every
            K = xi
            s1 = 0.0
            s2 = 0.0
            for j in range(i - n + 1, i + 1):
                d = x[j] - K
                s1 += d
                s2 += d * d
            num = s2 - s1 * (s1 / n)
        if num < 0.0:
            num = 0.0
        mean_out[i] = K + s1 / n
        std_out[i] = math.sqrt(num / (n - ddof)) if n > ddof else np.nan


@njit(cache=True)
def rolling_std(x, n, ddof):
    """Standard deviation of the last ``n`` values with ``ddof`` (0 = population, 1 = sample).

    Reference: ``pd.Series(x).rolling(n).std(ddof=ddof)``. NaN if the window holds
    a NaN or ``n - ddof <= 0``. Shifted running sums (see ``_moments_into``), so
    price-level series lose no precision and a flat window gives exactly 0.
    """
    m = x.size
    mean = np.empty(m)
    out = np.empty(m)
    if n - ddof <= 0 or n < 1:
        out[:] = np.nan
        return out
    _moments_into(x, n, ddof, mean, out, n)
    return out


@njit(cache=True)
def rolling_ratio(num, den, n):
    """``rolling_sum(num, n) / rolling_sum(den, n)``; NaN if the denominator sum is 0.

    Used for the rolling VWAP (quote volume / base volume) and windowed
    order-flow ratios.
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
def turnover_ratio(quote_volume, short, long):
    """Relative turnover: ``sum(qv, short) / (sum(qv, long) * short / long)``.

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
def amihud(log_ret, quote_volume, n, scale):
    """Amihud (2002) illiquidity: mean over the last ``n`` bars of ``|r| / quote_volume * scale``.

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
def order_flow_imbalance(taker_buy, volume, n):
    """Taker order-flow imbalance ``(buy - sell) / volume = (2 * sum(taker_buy) - sum(volume)) / sum(volume)``.

    In [-1, 1]; NaN if the window's volume is 0. ``n = 1`` gives the per-bar value.
    """
    b = rolling_sum(taker_buy, n)
    v = rolling_sum(volume, n)
    out = np.full(b.size, np.nan)
    for i in range(b.size):
        if np.isfinite(b[i]) and np.isfinite(v[i]) and v[i] > 0.0:
            out[i] = (2.0 * b[i] - v[i]) / v[i]
    return out


@njit(cache=True)
def signed_flow(taker_buy, volume):
    """Signed volume ``taker_buy - (volume - taker_buy) = 2 * taker_buy - volume``."""
    out = np.empty(volume.size)
    for i in range(volume.size):
        out[i] = 2.0 * taker_buy[i] - volume[i]
    return out


@njit(cache=True)
def rolling_ols_slope(y, x, n, min_count):
    """OLS slope of ``y`` on ``x`` (with intercept) over the last ``n`` pairs.

    ``cov(x, y) / var(x)`` over the finite pairs in the window; NaN if fewer than
    ``min_count`` pairs or ``var(x) == 0``. Computed directly per window
    (two-pass, O(n) each) for numerical safety.
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

    NaN if fewer than ``n // 2`` valid pairs in the window.
    """
    s = corwin_schultz(high, low)
    for i in range(s.size):
        s[i] *= scale
    return rolling_mean_nan(s, n, max(1, n // 2))


# --------------------------------------------------------------------------- TA-Lib equivalents


@njit(cache=True)
def sma_talib(x, n):
    """Numba equivalent of ``talib.SMA(x, timeperiod=n)``: running sum, first value at ``start + n - 1``."""
    m = x.size
    out = np.full(m, np.nan)
    s0 = first_finite(x)
    if m - s0 < n:
        return out
    total = 0.0
    for i in range(s0, s0 + n - 1):
        total += x[i]
    for i in range(s0 + n - 1, m):
        total += x[i]
        out[i] = total / n
        total -= x[i - n + 1]
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def ema_talib(x, n):
    """Numba equivalent of ``talib.EMA(x, timeperiod=n)`` (default compatibility, no unstable period).

    ``k = 2 / (n + 1)``; seeded with the simple mean of the first ``n`` finite
    values, emitted at ``start + n - 1``; then ``ema = (x - ema) * k + ema``
    (TA-Lib's operation order; FMA contraction allowed, ~1 ulp). Leading NaNs
    are skipped like the TA-Lib wrapper does; an interior NaN propagates.
    """
    m = x.size
    out = empty_f64(m)
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
    line = empty_f64(m)
    sig = empty_f64(m)
    hist = empty_f64(m)
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
    out = empty_f64(m)
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


@njit(cache=True)
def true_range(high, low, close):
    """Numba equivalent of ``talib.TRANGE``: ``max(h - l, |h - c_prev|, |l - c_prev|)``, NaN at the first bar."""
    m = close.size
    out = np.full(m, np.nan)
    s0 = first_finite3(high, low, close)
    for i in range(s0 + 1, m):
        pc = close[i - 1]
        a = high[i] - low[i]
        b = abs(high[i] - pc)
        c = abs(low[i] - pc)
        r = a
        if b > r:
            r = b
        if c > r:
            r = c
        if a != a or b != b or c != c:
            r = np.nan
        out[i] = r
    return out


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def atr_wilder(high, low, close, n):
    """Numba equivalent of ``talib.ATR(high, low, close, timeperiod=n)`` — Wilder's ATR.

    Seed: simple mean of the first ``n`` true ranges (bars ``start+1 .. start+n``),
    emitted at ``start + n``; then ``atr = (atr * (n-1) + tr) / n`` (``/ n`` as
    ``* (1/n)``). True range fused in the same pass.
    """
    m = close.size
    out = empty_f64(m)
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


@njit(cache=True, error_model="numpy")
def bbands(close, n, k):
    """Bollinger bands only: ``(upper, mid, lower)`` in ``talib.BBANDS`` order.

    ``mid = SMA(n)``, ``upper/lower = mid ± k * population std (ddof=0)``; same
    definition and output as ``talib.BBANDS(close, n, k, k, matype=0)``. One
    pass of shifted running moments, exactly the algorithm of ``_moments_into``
    (sums of ``d = x - K`` and ``d**2`` around the value ``K`` at the last
    re-synchronisation, rebuilt every ``16 n`` steps, when the sum of squares
    collapses by > 1e3 in one step or when the variance cancels below 1e-9 of
    the mean square), so a flat window has ``upper == lower == mid`` exactly, as
    in TA-Lib, and price level costs no precision. ``/ n`` is a multiplication
    by ``1 / n`` (within an ulp). A window holding a NaN gives NaN.
    """
    m = close.size
    up = empty_f64(m)
    mid = empty_f64(m)
    lo = empty_f64(m)
    if n < 1:
        up[:] = np.nan
        mid[:] = np.nan
        lo[:] = np.nan
        return up, mid, lo
    inv = 1.0 / n
    resync_every = 16 * n
    K = 0.0
    s1 = 0.0
    s2 = 0.0
    bad = 0
    countdown = resync_every
    for i in range(m):
        countdown -= 1
        xi = close[i]
        if np.isfinite(xi):
            d = xi - K
            s1 += d
            s2 += d * d
        else:
            bad += 1
        rebuild = False
        if i >= n:
            xo = close[i - n]
            if np.isfinite(xo):
                d = xo - K
                before = s2
                s1 -= d
                s2 -= d * d
                rebuild = s2 < 1e-3 * before
            else:
                bad -= 1
        if i < n - 1 or bad > 0:
            up[i] = np.nan
            mid[i] = np.nan
            lo[i] = np.nan
            continue
        q = s1 * inv
        num = s2 - s1 * q
        if rebuild or countdown <= 0 or num <= 1e-9 * s2:
            countdown = resync_every
            K = xi
            s1 = 0.0
            s2 = 0.0
            for j in range(i - n + 1, i + 1):
                d = close[j] - K
                s1 += d
                s2 += d * d
            q = s1 * inv
            num = s2 - s1 * q
        if num < 0.0:
            num = 0.0
        mu = K + q
        dev = k * math.sqrt(num * inv)
        up[i] = mu + dev
        mid[i] = mu
        lo[i] = mu - dev
    return up, mid, lo


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


# --------------------------------------------------------------------------- liquidity helpers


@njit(cache=True)
def snapshot_book_metrics(snap_start, is_bid, price, notional, thresholds_bps):
    """Per top-N snapshot: best bid/ask, mid, quoted spread and notional depth within ±x bps of mid.

    Rows of snapshot ``s`` are ``snap_start[s] : snap_start[s+1]`` (any order
    within). Levels with non-finite or non-positive price or notional are
    ignored. A snapshot with an empty side or a crossed/locked book
    (``best_bid >= best_ask``) gets NaN everywhere. Depth within ``x`` bps
    counts bid levels with ``price >= mid * (1 - x/1e4)`` and ask levels with
    ``price <= mid * (1 + x/1e4)``.
    Returns ``(mid, spread_bps, bid_depth[s, j], ask_depth[s, j])``.
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
            if not (np.isfinite(p) and np.isfinite(q)) or p <= 0.0 or q <= 0.0:
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
                if not (np.isfinite(p) and np.isfinite(q)) or p <= 0.0 or q <= 0.0:
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
    ``x / 100`` percent. Returns ``(bid_depth[s, j], ask_depth[s, j])``.
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


@njit(cache=True)
def prevailing_index(query_ts, event_ts):
    """For each query time, index of the last event at or before it (-1 if none). Both sorted int64."""
    out = np.full(query_ts.size, -1, dtype=np.int64)
    j = -1
    for i in range(query_ts.size):
        q = query_ts[i]
        while j + 1 < event_ts.size and event_ts[j + 1] <= q:
            j += 1
        out[i] = j
    return out
