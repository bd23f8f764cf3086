"""Arrow columns of one parsed archive file -> the canonical table of its dataset.

Each builder takes the typed columns pyarrow read, the parse context (for
error messages) and the time window the rows must fall in, and returns
``(table, time_unit, duplicates_dropped)``. Output is sorted by time.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factor_core.schemas import BOOK, FUNDING, KLINES, QUOTES, TRADES, TS
from factor_core.timeutil import NS_PER_UNIT

from .columns import check_finite, check_range, epoch_to_utc_ns, to_numpy, ts_array, unit_of
from .csvread import ParseContext
from .dedupe import dedupe_sort, is_sorted



def epoch_column(table: pa.Table, ctx: ParseContext, name: str, window) -> tuple[np.ndarray, str]:
    raw = to_numpy(table.column(name))
    ns, unit = epoch_to_utc_ns(raw, ctx, name)
    if window is not None:
        check_range(ns, window[0], window[1], ctx, name, raw, window[2])
    return ns, unit


def build_klines(table: pa.Table, ctx: ParseContext, window):
    ns, unit = epoch_column(table, ctx, "open_time", window)
    floats = ["open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
              "taker_buy_quote_volume"]
    check_finite(table, ctx, floats)
    arrays = [ts_array(ns)] + [table.column(n) for n in KLINES.names[1:]]
    out = pa.Table.from_arrays(arrays, schema=KLINES)
    if bool((ns[1:] > ns[:-1]).all()):
        return out, unit, 0
    out, dropped = dedupe_sort(out, ctx, [ns], ["open_time"])
    return out, unit, dropped


def _chunks_numpy(column: pa.ChunkedArray) -> list[np.ndarray]:
    """Zero-copy numpy views of a null-free primitive column's chunks."""
    return [c.to_numpy(zero_copy_only=True) for c in column.chunks if len(c)]


def _increasing(chunks: Sequence[np.ndarray], strict: bool) -> bool:
    """Whether the concatenation of ``chunks`` is (strictly) increasing, chunk by
    chunk (cache-sized passes, no concatenated copy)."""
    prev = None
    for a in chunks:
        if prev is not None and (a[0] <= prev if strict else a[0] < prev):
            return False
        d = a[1:] > a[:-1] if strict else a[1:] >= a[:-1]
        if not d.all():
            return False
        prev = a[-1]
    return True


def _fast_trades(table: pa.Table, window) -> tuple[pa.Table, str] | None:
    """The normal archive in Arrow, without concatenating columns: one unit, rows
    inside the window, finite numbers, ids strictly increasing and time
    non-decreasing. ``None`` when any of that fails (the general path then
    finds and names the offending line)."""
    ts = table.column("ts")
    if ts.null_count or table.num_rows == 0:
        return None
    mm = pc.min_max(ts)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    unit = unit_of(lo)
    if unit is None or unit_of(hi) != unit:
        return None
    factor = NS_PER_UNIT[unit]
    if window is not None and not (lo * factor >= window[0] and hi * factor < window[1]):
        return None
    if hi * factor >= 2**63:
        return None
    for name in ("price", "qty"):  # NaN/inf propagate into the sum; finite sums can't overflow here
        total = pc.sum(table.column(name)).as_py()
        if total is None or not np.isfinite(total):
            return None
    ts_np = _chunks_numpy(ts)
    if not _increasing(_chunks_numpy(table.column("trade_id")), strict=True):
        return None
    if not _increasing(ts_np, strict=False):
        return None
    ns = pa.chunked_array(
        [pa.array(a * factor, type=pa.int64()).view(TS) for a in ts_np], type=TS
    )
    out = pa.Table.from_arrays(
        [table.column("trade_id"), ns, table.column("price"), table.column("qty"),
         table.column("is_buyer_maker")],
        schema=TRADES,
    )
    return out, unit


def _build_trades(table: pa.Table, ctx: ParseContext, window):
    fast = _fast_trades(table, window)
    if fast is not None:
        return fast[0], fast[1], 0
    ns, unit = epoch_column(table, ctx, "ts", window)
    check_finite(table, ctx, ["price", "qty"])
    ids = to_numpy(table.column("trade_id"))
    out = pa.Table.from_arrays(
        [table.column("trade_id"), ts_array(ns), table.column("price"), table.column("qty"),
         table.column("is_buyer_maker")],
        schema=TRADES,
    )
    # fast path: ids strictly increasing and time non-decreasing (the normal archive)
    if bool((ids[1:] > ids[:-1]).all()) and bool((ns[1:] >= ns[:-1]).all()):
        return out, unit, 0
    out, dropped = dedupe_sort(out, ctx, [ids], ["trade_id"])
    ns2 = to_numpy(out.column("ts").cast(pa.int64()))
    ids2 = to_numpy(out.column("trade_id"))
    if not is_sorted([ns2, ids2]):
        out = out.take(pa.array(np.lexsort((ids2, ns2))))
    return out, unit, dropped


def _build_book(table: pa.Table, ctx: ParseContext, window):
    ns = to_numpy(table.column("timestamp").cast(pa.timestamp("ns")).cast(pa.int64()))
    if window is not None:
        check_range(ns, window[0], window[1], ctx, "timestamp", None, window[2])
    check_finite(table, ctx, ["percentage", "depth", "notional"])
    pct = to_numpy(table.column("percentage"))
    zero = pct == 0
    if zero.any():
        bad = int(np.flatnonzero(zero)[0])
        raise ctx.error("percentage 0 is neither bid (<0) nor ask (>0) side", row=bad,
                        column="percentage", value=0.0)
    is_bid = pct < 0
    band = np.abs(pct)
    level = np.zeros(len(pct), dtype=np.int16)
    for side_mask in (is_bid, ~is_bid):
        bands = np.unique(band[side_mask])  # rank of the band from mid, per side, over the file
        level[side_mask] = np.searchsorted(bands, band[side_mask]) + 1
    side = pc.if_else(pa.array(is_bid), "bid", "ask")
    n = len(pct)
    out = pa.Table.from_arrays(
        [ts_array(ns), side, pa.array(level, type=pa.int16()), pa.nulls(n, pa.float64()),
         table.column("depth"), pa.array(band, type=pa.float64()), table.column("notional")],
        schema=BOOK,
    )
    side_code = np.where(is_bid, 0, 1)  # bid rows first within a timestamp
    out, dropped = dedupe_sort(out, ctx, [ns, side_code, band], ["ts", "side", "band_pct"])
    return out, "s", dropped


def _build_funding(table: pa.Table, ctx: ParseContext, window):
    ns, unit = epoch_column(table, ctx, "calc_time", window)
    check_finite(table, ctx, ["last_funding_rate"])
    hours = to_numpy(table.column("funding_interval_hours"))
    bad = (hours <= 0) | (hours > 24 * 7)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ctx.error("funding interval must be 1..168 hours", row=i,
                        column="funding_interval_hours", value=int(hours[i]))
    out = pa.Table.from_arrays(
        [ts_array(ns), table.column("last_funding_rate"),
         table.column("funding_interval_hours").cast(pa.int16())],
        schema=FUNDING,
    )
    if bool((ns[1:] > ns[:-1]).all()):
        return out, unit, 0
    out, dropped = dedupe_sort(out, ctx, [ns], ["calc_time"])
    return out, unit, dropped


def _build_quotes(table: pa.Table, ctx: ParseContext, window):
    """bookTicker -> QUOTES: ``ts`` = transaction_time; rows sorted by (ts, update_id)."""
    ns, unit = epoch_column(table, ctx, "transaction_time", window)
    prices = ["best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty"]
    check_finite(table, ctx, prices)
    out = pa.Table.from_arrays([ts_array(ns)] + [table.column(n) for n in prices], schema=QUOTES)
    ids = to_numpy(table.column("update_id"))
    if bool((ns[1:] >= ns[:-1]).all()) and bool((ids[1:] > ids[:-1]).all()):
        return out, unit, 0
    keyed = out.append_column("update_id", table.column("update_id"))
    keyed, dropped = dedupe_sort(keyed, ctx, [ids], ["update_id"], sort_keys=[ns, ids])
    return keyed.drop_columns(["update_id"]), unit, dropped


#: Builder per dataset key of :data:`~factor_core.binance.datasets.DATASETS`.
BUILDERS = {
    "klines": build_klines, "um_klines": build_klines, "aggTrades": _build_trades,
    "um_aggTrades": _build_trades, "bookDepth": _build_book, "bookTicker": _build_quotes,
    "fundingRate": _build_funding,
}  # fmt: skip
