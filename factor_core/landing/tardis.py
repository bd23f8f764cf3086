"""Tardis.dev CSV datasets (gzipped, with a header row) -> canonical raw tables.

Columns as Tardis documents them (timestamps: microseconds since the epoch, UTC;
``timestamp`` is the exchange's time, ``local_timestamp`` Tardis's arrival time;
an empty cell is a missing value):

* ``trades``: exchange,symbol,timestamp,local_timestamp,id,side,price,amount
  (``side`` = the aggressor: buy -> ``is_buyer_maker`` False, sell -> True);
* ``book_snapshot_5`` / ``book_snapshot_25``: exchange,symbol,timestamp,local_timestamp,
  asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,... (levels 0..N-1);
* ``quotes``: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount;
* ``derivative_ticker``: exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,
  predicted_funding_rate,open_interest,last_price,index_price,mark_price.

Tardis splits files by *arrival* time, so a day's file can hold a few events
stamped just before its midnight: rows whose ``timestamp`` is outside the UTC
day of the file are left out and counted (``rows_outside_day``).

Funding from ``derivative_ticker``: a settlement is where ``funding_timestamp``
(the next funding time) advances from F to a later value once F has passed;
it is stamped F with the last ``funding_rate`` quoted for F, and its interval is
the gap to the previous funding time (for the first one in view, to the next).
The settlement at 00:00 UTC is seen only across midnight, i.e. with the
previous day's file as well; when that file is not landed, provenance says so.
"""

from __future__ import annotations

import gzip
import re
import zlib
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from factor_core.binance.columns import epoch_to_utc_ns, to_numpy, ts_array
from factor_core.binance.csvread import ParseContext, diagnose
from factor_core.binance.errors import ParseError
from factor_core.schemas import BOOK, FUNDING, QUOTES, TRADES
from factor_core.timeutil import NS_PER_HOUR, day_bounds_ns

from .names import LandingFileError
from .scan import LandedFile

_F64, _I64, _STR = pa.float64(), pa.int64(), pa.string()
_FIX = "fix or replace the file; stored partitions stay as they are until it reads cleanly"
_INT_TEXT = re.compile(r"^[-+]?\d+$")


def _columns(file: LandedFile) -> dict[str, pa.DataType]:
    """The columns read from a file of ``file.kind``, with their types."""
    base = {"timestamp": _I64}
    if file.kind == "trades":
        return {**base, "id": _STR, "side": _STR, "price": _F64, "amount": _F64}
    if file.kind == "quotes":
        return {**base, "ask_amount": _F64, "ask_price": _F64, "bid_price": _F64, "bid_amount": _F64}
    if file.kind == "derivative_ticker":
        return {**base, "funding_timestamp": _I64, "funding_rate": _F64}
    levels = int(file.kind.rsplit("_", 1)[1])  # book_snapshot_5 / book_snapshot_25
    return {**base, **{f"{side}[{i}].{what}": _F64 for i in range(levels)
                       for side in ("asks", "bids") for what in ("price", "amount")}}


def _read(file: LandedFile) -> tuple[pa.Table, ParseContext]:
    source = file.relative_path
    try:
        csv = gzip.decompress(file.path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise LandingFileError(source, f"not a complete gzip file ({exc}); download it again") from exc
    if not csv.strip():
        raise LandingFileError(source, "file has no data rows; land a file with data or remove it")
    header = csv.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    wanted = _columns(file)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise LandingFileError(source, f"missing Tardis {file.kind} column(s) {missing}; found {header}. "
                                       f"Is it really a {file.kind} file? {_FIX}")
    ctx = ParseContext(source, csv, header=True)
    read = pacsv.ReadOptions(use_threads=False)
    convert = pacsv.ConvertOptions(column_types=wanted, include_columns=list(wanted),
                                   null_values=[""], strings_can_be_null=True)
    try:
        table = pacsv.read_csv(pa.BufferReader(csv), read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LandingFileError(source, f"{diagnose(ctx, header, {'timestamp': _I64}, exc)}; {_FIX}") from exc
    if table.num_rows == 0:
        raise LandingFileError(source, "file has a header but no data rows; land a file with data or remove it")
    if table.column("timestamp").null_count:
        row = int(np.flatnonzero(to_numpy(table.column("timestamp").is_null()))[0])
        raise LandingFileError(source, f"line {ctx.line_of(row)}: empty timestamp; {_FIX}")
    return table, ctx


def _stamped(table: pa.Table, ctx: ParseContext, day: date | None) -> tuple[pa.Table, np.ndarray, str, int]:
    """Rows sorted by exchange time, those outside ``day`` (if given) left out and counted."""
    try:
        ns, unit = epoch_to_utc_ns(to_numpy(table.column("timestamp")), ctx, "timestamp")
    except ParseError as exc:
        raise LandingFileError(ctx.source, f"{exc}; {_FIX}") from exc
    order = np.argsort(ns, kind="stable")
    table, ns = table.take(pa.array(order)), ns[order]
    outside = 0
    if day is not None:
        start, end = day_bounds_ns(day)
        keep = (ns >= start) & (ns < end)
        outside = int((~keep).sum())
        if outside:
            table, ns = table.filter(pa.array(keep)), ns[keep]
    return table, ns, unit, outside


def _trades(table: pa.Table, ctx: ParseContext, ns: np.ndarray) -> tuple[pa.Table, dict[str, str]]:
    side = table.column("side")
    buy, sell = pc.equal(side, "buy"), pc.equal(side, "sell")
    bad = ~(to_numpy(pc.fill_null(pc.or_(buy, sell), False)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LandingFileError(ctx.source, f"side {side[row].as_py()!r} is neither 'buy' nor 'sell' (the "
                                           f"aggressor side must be known for raw_trades); {_FIX}")
    ids = table.column("id")
    note = {}
    if ids.null_count == 0 and pc.all(pc.match_substring_regex(ids, _INT_TEXT.pattern)).as_py():
        trade_id = ids.cast(_I64)
    else:  # some exchanges publish no or non-numeric trade ids
        trade_id = pa.array(np.arange(table.num_rows, dtype=np.int64))
        note = {"trade_id": "row number in the file (the file's ids are missing or not integers)"}
    for name in ("price", "amount"):
        if table.column(name).null_count:
            row = int(np.flatnonzero(to_numpy(table.column(name).is_null()))[0])
            raise LandingFileError(ctx.source, f"empty {name} on a trade row; {_FIX}")
    out = pa.Table.from_arrays(
        [trade_id, ts_array(ns), table.column("price"), table.column("amount"), pc.fill_null(sell, False)],
        schema=TRADES,
    )
    return out, note


def _book(table: pa.Table, ns: np.ndarray, levels: int) -> pa.Table:
    """Wide snapshot rows -> BOOK long rows (bid side first within a timestamp, levels from 1)."""
    pieces = []
    for side, prefix in (("bid", "bids"), ("ask", "asks")):
        for i in range(levels):
            price = to_numpy(table.column(f"{prefix}[{i}].price"))
            qty = to_numpy(table.column(f"{prefix}[{i}].amount"))
            present = ~np.isnan(price) & ~np.isnan(qty)  # thin books leave deep levels empty
            pieces.append((ns[present], np.full(present.sum(), side == "ask"), np.full(present.sum(), i + 1),
                           price[present], qty[present]))
    ts, is_ask, level, price, qty = (np.concatenate(parts) for parts in zip(*pieces))
    order = np.lexsort((level, is_ask, ts))
    n = len(order)
    return pa.Table.from_arrays(
        [ts_array(ts[order]), pa.array(np.where(is_ask[order], "ask", "bid")),
         pa.array(level[order].astype(np.int16)), pa.array(price[order]), pa.array(qty[order]),
         pa.nulls(n, _F64), pa.array(price[order] * qty[order])],
        schema=BOOK,
    )


def _quotes(table: pa.Table, ns: np.ndarray) -> tuple[pa.Table, dict[str, str]]:
    out = pa.Table.from_arrays(
        [ts_array(ns), table.column("bid_price"), table.column("bid_amount"), table.column("ask_price"),
         table.column("ask_amount")],
        schema=QUOTES,
    )
    # one side of the book can be empty: kept as nulls (the quote in force has no bid or no ask)
    one_sided = pc.or_(pc.is_null(out.column("bid_price")), pc.is_null(out.column("ask_price")))
    rows = int(to_numpy(one_sided).sum())
    return out, ({"one_sided_rows": str(rows)} if rows else {})


def settlements(ns: np.ndarray, funding_ns: np.ndarray, rate: np.ndarray, source: str) -> pa.Table:
    """Funding settlements from time-sorted ticker rows (see the module docstring) -> FUNDING."""
    ok = ~np.isnan(rate) & (funding_ns > 0)
    ns, funding_ns, rate = ns[ok], funding_ns[ok], rate[ok]
    advance = np.flatnonzero((funding_ns[1:] > funding_ns[:-1]) & (ns[1:] >= funding_ns[:-1]))
    stamps, rates = funding_ns[advance], rate[advance]
    distinct = np.unique(funding_ns)
    hours = []
    for stamp, nxt in zip(stamps, funding_ns[advance + 1]):
        k = int(np.searchsorted(distinct, stamp))
        gap = stamp - distinct[k - 1] if k > 0 else nxt - stamp
        hours.append(int(round(gap / NS_PER_HOUR)))
    bad = [h for h in hours if not 1 <= h <= 168]
    if bad:
        raise LandingFileError(source, f"funding interval of {bad[0]} h derived from funding_timestamp is "
                                       f"outside 1..168 h; {_FIX}")
    return pa.Table.from_arrays(
        [ts_array(stamps), pa.array(rates, _F64), pa.array(np.array(hours, dtype=np.int16))], schema=FUNDING)


def _funding(file: LandedFile, day: date, previous: LandedFile | None) -> tuple[pa.Table, dict[str, str]]:
    parts = []
    for f in ([previous] if previous is not None else []) + [file]:
        table, ctx = _read(f)
        table, ns, _, _ = _stamped(table, ctx, None)
        funding_ns = _funding_ns(table, ctx)
        parts.append((ns, funding_ns, to_numpy(pc.fill_null(table.column("funding_rate"), np.nan))))
    ns, funding_ns, rate = (np.concatenate(p) for p in zip(*parts))
    order = np.argsort(ns, kind="stable")
    events = settlements(ns[order], funding_ns[order], rate[order], file.relative_path)
    start, end = day_bounds_ns(day)
    stamps = to_numpy(events.column("ts").cast(_I64))
    events = events.filter(pa.array((stamps >= start) & (stamps < end)))
    notes = {"settlements": str(events.num_rows)}
    if previous is None and not (stamps == start).any():
        notes["note"] = ("a settlement at 00:00 UTC is only found together with the previous day's "
                         "derivative_ticker file; land it to complete this partition")
    elif previous is not None:
        notes["previous_day_file"] = previous.relative_path
    return events, notes


def _funding_ns(table: pa.Table, ctx: ParseContext) -> np.ndarray:
    """``funding_timestamp`` in ns; 0 where the cell is empty."""
    values = to_numpy(pc.fill_null(table.column("funding_timestamp"), 0))
    present = values > 0
    out = np.zeros(len(values), dtype=np.int64)
    if present.any():
        try:
            out[present] = epoch_to_utc_ns(values[present], ctx, "funding_timestamp")[0]
        except ParseError as exc:
            raise LandingFileError(ctx.source, f"{exc}; {_FIX}") from exc
    return out


def read_tardis_file(file: LandedFile, day: date, previous: LandedFile | None = None
                     ) -> tuple[pa.Table, dict[str, str]]:
    """The canonical table of ``day`` from one Tardis file (plus, for funding, the previous day's)."""
    provenance = {"format": file.format, "tardis_data_type": file.kind, "exchange": file.exchange or "",
                  "time_unit": "us", "checksum_verified": "n/a"}
    if file.dataset == "funding":
        table, notes = _funding(file, day, previous)
        return table, {**provenance, **notes}
    table, ctx = _read(file)
    table, ns, unit, outside = _stamped(table, ctx, day)
    provenance.update(time_unit=unit, rows_outside_day=str(outside))
    if table.num_rows == 0:
        raise LandingFileError(file.relative_path, f"no row is stamped inside {day} (UTC); is the date in "
                                                   f"the name right? {_FIX}")
    if file.dataset == "trades":
        out, note = _trades(table, ctx, ns)
    elif file.dataset == "quotes":
        out, note = _quotes(table, ns)
    else:
        out, note = _book(table, ns, int(file.kind.rsplit("_", 1)[1])), {}
    return out, {**provenance, **note}
