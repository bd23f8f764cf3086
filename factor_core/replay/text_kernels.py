"""Numba kernels that write the JSON text of replay messages, already framed for their transport.

Every kernel writes whole messages into one ``uint8`` buffer and returns the
offsets of the messages in it; message ``i`` is *framed*:

* ``NDJSON`` (HTTP): the JSON text, then ``\\n``;
* ``WEBSOCKET``: an RFC 6455 frame header (FIN + text opcode ``0x81``, unmasked as a
  server's frames are, 7-bit / 16-bit / 64-bit payload length), then the JSON text.

So a round of messages from one source goes to the socket without another
copy; a merged round is gathered run by run (:func:`gather`).

Bytes are copied with element loops over *unsigned* indices: Numba checks a
signed index for wrap-around (``a[-1]``), which keeps LLVM from vectorising the
loop (12x slower measured), and a Numba slice assignment is an element loop too,
plus two atomic reference-count updates.
Numbers are written digit by digit here: integers, ISO timestamps, and floats
that are short decimals (:func:`decimal_parts`: prices and amounts on a tick or
lot grid always are); any other float arrives formatted by Arrow (shortest
round-trip text, ``encode.Numbers``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

NDJSON, WEBSOCKET = 0, 1
P10 = np.array([10**k for k in range(20)], np.uint64)
ISO_LEN = 27  # 2024-01-02T00:00:00.082264Z
_US_PER_DAY = 86_400_000_000
# Numba's "numpy" error model: no zero-division checks in the digit loops (every divisor is a constant).
_FAST = {"cache": True, "nogil": True, "error_model": "numpy"}


def text(value: str) -> np.ndarray:
    return np.frombuffer(value.encode(), np.uint8).copy()


def day_cache() -> np.ndarray:
    """Scratch for :func:`put_iso`: the last day seen and its 10 date characters."""
    cache = np.zeros(11, np.int64)
    cache[0] = np.iinfo(np.int64).min
    return cache


@njit(**_FAST)
def framing_len(size, mode):
    if mode == NDJSON:
        return 1
    return 2 if size < 126 else (4 if size < 65536 else 10)


@njit(**_FAST)
def open_frame(out, pos, size, mode):
    """The WebSocket header of a ``size``-byte text message (nothing for NDJSON); returns the payload position."""
    if mode == NDJSON:
        return pos
    out[pos] = 0x81
    if size < 126:
        out[pos + 1] = size
        return pos + 2
    if size < 65536:
        out[pos + 1] = 126
        out[pos + 2] = (size >> 8) & 0xFF
        out[pos + 3] = size & 0xFF
        return pos + 4
    out[pos + 1] = 127
    for s in range(8):
        out[pos + 2 + s] = (size >> (8 * (7 - s))) & 0xFF
    return pos + 10


@njit(**_FAST)
def close_frame(out, pos, mode):
    if mode == NDJSON:
        out[pos] = 10
        return pos + 1
    return pos


@njit(**_FAST)
def put(out, pos, src):
    base = np.uint64(pos)
    for k in range(np.uint64(len(src))):
        out[base + k] = src[k]
    return pos + len(src)


MAX_DECIMALS = 15
FALLBACK, NULL = -1, -2  # ``decimals`` codes: Arrow-formatted text, JSON null (NaN or infinite)
_P10F = np.array([10.0**k for k in range(MAX_DECIMALS + 1)])
_EXACT_INT = 2.0**53


@njit(**_FAST)
def decimal_parts(values):
    """Per float64 ``x``: the smallest ``d`` <= 15 and integer ``m`` with ``m / 10**d == x`` exactly, else a code.

    ``m`` and ``10**d`` are exact doubles (``|m| < 2**53``, ``d <= 22``), so IEEE division rounds the exact
    quotient ``m·10**-d`` correctly: it equals ``x`` iff the decimal text ``m·10**-d`` parses back to ``x``.
    NaN / infinite -> ``NULL``; no such ``d`` (or -0.0) -> ``FALLBACK`` (formatted by Arrow instead).
    """
    n = len(values)
    mantissa = np.zeros(n, np.int64)
    decimals = np.empty(n, np.int64)
    for i in range(n):
        x = values[i]
        if not np.isfinite(x):
            decimals[i] = NULL
            continue
        decimals[i] = FALLBACK
        if x == 0.0 and np.signbit(x):
            continue
        for d in range(MAX_DECIMALS + 1):
            m = np.rint(x * _P10F[d])
            if abs(m) >= _EXACT_INT:
                break
            if m / _P10F[d] == x:
                mantissa[i] = np.int64(m)
                decimals[i] = d
                break
    return mantissa, decimals


@njit(**_FAST)
def _digits(u, p10):
    n = 1
    while n < 20 and u >= p10[n]:
        n += 1
    return n


@njit(**_FAST)
def number_len(mantissa, decimals, f_off, i, p10):
    """Characters of value ``i`` as written by :func:`put_number`."""
    d = decimals[i]
    if d == FALLBACK:
        return f_off[i + 1] - f_off[i]
    if d == NULL:
        return 4
    m = mantissa[i]
    sign = 1 if m < 0 else 0
    digits = _digits(np.uint64(-m if m < 0 else m), p10)
    if d == 0:
        return sign + digits
    return sign + max(digits - d, 1) + 1 + d


@njit(**_FAST)
def _put_digits(out, pos, u, width):
    """``u`` in exactly ``width`` digits (zero-padded)."""
    ten = np.uint64(10)
    for k in range(pos + width - 1, pos - 1, -1):
        q = u // ten
        out[k] = np.uint8(48 + (u - q * ten))
        u = q
    return pos + width


@njit(**_FAST)
def put_number(out, pos, mantissa, decimals, f_off, f_data, i, p10):
    """Value ``i`` as JSON: ``m`` with ``d`` decimals (``34878.61``, ``0.00012``, ``100``), fallback text, or null."""
    d = decimals[i]
    if d == FALLBACK:
        a = f_off[i]
        size = f_off[i + 1] - a
        base, first = np.uint64(pos), np.uint64(a)
        for k in range(np.uint64(size)):
            out[base + k] = f_data[first + k]
        return pos + size
    if d == NULL:
        out[pos] = 110  # null
        out[pos + 1] = 117
        out[pos + 2] = 108
        out[pos + 3] = 108
        return pos + 4
    m = mantissa[i]
    if m < 0:
        out[pos] = 45
        pos += 1
        m = -m
    u = np.uint64(m)
    if d == 0:
        return _put_digits(out, pos, u, _digits(u, p10))
    scale = p10[d]
    whole = u // scale
    pos = _put_digits(out, pos, whole, _digits(whole, p10))
    out[pos] = 46  # .
    return _put_digits(out, pos + 1, u - whole * scale, d)


@njit(**_FAST)
def int_len(v, p10):
    u = np.uint64(-v) if v < 0 else np.uint64(v)
    n = 1
    while n < 20 and u >= p10[n]:
        n += 1
    return n + (1 if v < 0 else 0)


@njit(**_FAST)
def put_int(out, pos, v, p10):
    if v < 0:
        out[pos] = 45  # '-'
        pos += 1
        u = np.uint64(-v)
    else:
        u = np.uint64(v)
    n = 1
    while n < 20 and u >= p10[n]:
        n += 1
    ten = np.uint64(10)
    for k in range(pos + n - 1, pos - 1, -1):
        q = u // ten
        out[k] = np.uint8(48 + (u - q * ten))
        u = q
    return pos + n


@njit(**_FAST)
def _two_digits(out, pos, v):
    q = v // np.uint64(10)
    out[pos] = np.uint8(48 + q)
    out[pos + 1] = np.uint8(48 + v - q * np.uint64(10))


@njit(**_FAST)
def _civil_date(days, out):
    """``YYYY-MM-DD`` of ``days`` since 1970-01-01 (H. Hinnant, ``civil_from_days``), into ``out[1:11]``."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    for k in range(4):
        out[4 - k] = 48 + y % 10
        y //= 10
    out[5] = 45
    out[6] = 48 + m // 10
    out[7] = 48 + m % 10
    out[8] = 45
    out[9] = 48 + d // 10
    out[10] = 48 + d % 10


@njit(**_FAST)
def put_iso(out, pos, ts_ns, cache):
    """ISO 8601 UTC of ``ts_ns`` floored to the microsecond, e.g. ``2024-01-02T00:00:00.082264Z``."""
    us = ts_ns // 1000
    day = us // _US_PER_DAY
    if day != cache[0]:
        cache[0] = day
        _civil_date(day, cache)
    for k in range(10):
        out[pos + k] = cache[1 + k]
    out[pos + 10] = 84  # T
    u = np.uint64(us - day * _US_PER_DAY)
    hh = u // np.uint64(3_600_000_000)
    u -= hh * np.uint64(3_600_000_000)
    mm = u // np.uint64(60_000_000)
    u -= mm * np.uint64(60_000_000)
    ss = u // np.uint64(1_000_000)
    frac = u - ss * np.uint64(1_000_000)
    _two_digits(out, pos + 11, hh)
    out[pos + 13] = 58
    _two_digits(out, pos + 14, mm)
    out[pos + 16] = 58
    _two_digits(out, pos + 17, ss)
    out[pos + 19] = 46
    ten = np.uint64(10)
    for k in range(6):
        q = frac // ten
        out[pos + 25 - k] = np.uint8(48 + frac - q * ten)
        frac = q
    out[pos + 26] = 90  # Z
    return pos + ISO_LEN


@njit(**_FAST)
def copy_within(out, pos, source, length):
    """Copy ``out[source:source + length]`` (written earlier in the same message) to ``pos``."""
    base, first = np.uint64(pos), np.uint64(source)
    for k in range(np.uint64(length)):
        out[base + k] = out[first + k]
    return pos + length


TRADE_PIECES = (text('","price":'), text(',"amount":'), text(',"side":"'), text('","timestamp":"'),
                text('","localTimestamp":"'), text('"}'), text("sell"), text("unknown"), text("buy"))


@njit(**_FAST)
def encode_trades(mode, prefix, ts, ids, p_m, p_d, p_off, p_data, q_m, q_d, q_off, q_data, side,
                  s_price, s_amount, s_side, s_ts, s_local, s_end, w_sell, w_unknown, w_buy, p10, cache):
    """Framed trade messages; see ``encode.py`` for the shape."""
    n = len(ts)
    fixed = (len(prefix) + len(s_price) + len(s_amount) + len(s_side) + len(s_ts) + len(s_local) + len(s_end)
             + 2 * ISO_LEN)
    sizes = np.empty(n, np.int64)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):
        side_len = len(w_buy) if side[i] > 0 else (len(w_sell) if side[i] < 0 else len(w_unknown))
        size = (fixed + int_len(ids[i], p10) + side_len + number_len(p_m, p_d, p_off, i, p10)
                + number_len(q_m, q_d, q_off, i, p10))
        sizes[i] = size
        offsets[i + 1] = offsets[i] + size + framing_len(size, mode)
    out = np.empty(offsets[n], np.uint8)
    for i in range(n):
        pos = open_frame(out, offsets[i], sizes[i], mode)
        pos = put(out, pos, prefix)
        pos = put_int(out, pos, ids[i], p10)
        pos = put(out, pos, s_price)
        pos = put_number(out, pos, p_m, p_d, p_off, p_data, i, p10)
        pos = put(out, pos, s_amount)
        pos = put_number(out, pos, q_m, q_d, q_off, q_data, i, p10)
        pos = put(out, pos, s_side)
        pos = put(out, pos, w_buy if side[i] > 0 else (w_sell if side[i] < 0 else w_unknown))
        pos = put(out, pos, s_ts)
        stamp = pos
        pos = put_iso(out, pos, ts[i], cache)
        pos = put(out, pos, s_local)
        pos = copy_within(out, pos, stamp, ISO_LEN)
        pos = put(out, pos, s_end)
        close_frame(out, pos, mode)
    return out, offsets


BOOK_PIECES = (text('{"price":'), text(',"amount":'), text("}"), text(","), text('],"asks":['),
               text('],"timestamp":"'), text('","localTimestamp":"'), text('"}'))


@njit(**_FAST)
def encode_books(mode, prefix, ts, lo, n_bids, p_m, p_d, p_off, p_data, q_m, q_d, q_off, q_data,
                 s_open, s_amount, s_close, s_comma, s_asks, s_ts, s_local, s_end, p10, cache):
    """Framed book-snapshot messages: snapshot ``i`` has levels ``lo[i]:lo[i+1]``, the first ``n_bids[i]`` bids."""
    n = len(ts)
    level_fixed = len(s_open) + len(s_amount) + len(s_close)
    sizes = np.empty(n, np.int64)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):
        size = len(prefix) + len(s_asks) + len(s_ts) + len(s_local) + len(s_end) + 2 * ISO_LEN
        for j in range(lo[i], lo[i + 1]):
            size += level_fixed + number_len(p_m, p_d, p_off, j, p10) + number_len(q_m, q_d, q_off, j, p10)
        nb = n_bids[i]
        na = lo[i + 1] - lo[i] - nb
        size += max(nb - 1, 0) + max(na - 1, 0)  # commas between levels
        sizes[i] = size
        offsets[i + 1] = offsets[i] + size + framing_len(size, mode)
    out = np.empty(offsets[n], np.uint8)
    for i in range(n):
        pos = open_frame(out, offsets[i], sizes[i], mode)
        pos = put(out, pos, prefix)
        bid_end = lo[i] + n_bids[i]
        for j in range(lo[i], lo[i + 1]):
            if j == bid_end:
                pos = put(out, pos, s_asks)
            elif j > lo[i]:
                pos = put(out, pos, s_comma)
            pos = put(out, pos, s_open)
            pos = put_number(out, pos, p_m, p_d, p_off, p_data, j, p10)
            pos = put(out, pos, s_amount)
            pos = put_number(out, pos, q_m, q_d, q_off, q_data, j, p10)
            pos = put(out, pos, s_close)
        if bid_end == lo[i + 1]:
            pos = put(out, pos, s_asks)
        pos = put(out, pos, s_ts)
        stamp = pos
        pos = put_iso(out, pos, ts[i], cache)
        pos = put(out, pos, s_local)
        pos = copy_within(out, pos, stamp, ISO_LEN)
        pos = put(out, pos, s_end)
        close_frame(out, pos, mode)
    return out, offsets


@njit(**_FAST)
def gather(data, offsets, order):
    """Messages ``order[0], order[1], ...`` of ``data`` back to back; runs of consecutive messages copied at once.

    Returns the bytes and each message's end offset in them.
    """
    n = len(order)
    ends = np.empty(n, np.int64)
    total = 0
    for k in range(n):
        total += offsets[order[k] + 1] - offsets[order[k]]
        ends[k] = total
    out = np.empty(total, np.uint8)
    k = 0
    pos = 0
    while k < n:
        first = order[k]
        last = first
        while k + 1 < n and order[k + 1] == last + 1:
            k += 1
            last += 1
        a = offsets[first]
        size = offsets[last + 1] - a
        base, first = np.uint64(pos), np.uint64(a)
        for c in range(np.uint64(size)):
            out[base + c] = data[first + c]
        pos += size
        k += 1
    return out, ends
