"""One archive file (zip bytes or CSV bytes) -> the canonical table of its dataset.

Pipeline for a zip::

    verified zip bytes --zipfile directory--> the one CSV member, inflated block by block
    (ISA-L) straight into pyarrow's CSV reader --> typed Arrow columns
    --unit detection, window / finite / duplicate checks--> canonical table (schemas.py)

Every returned table carries ``binance.*`` schema metadata (:func:`parse_info`).
Nothing here does I/O beyond the bytes it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from factor_core.timeutil import NS_PER_DAY, as_date, day_bounds_ns, month_bounds_ns

from .builders import BUILDERS
from .columns import to_numpy
from .csvread import ParseContext, detect_header, read_csv
from .datasets import Dataset, get_dataset
from .errors import ParseError
from .zipmember import MemberReader, inflate_member, open_member


@dataclass
class ParseInfo:
    source: str
    rows_read: int
    rows: int
    time_unit: str
    header: bool
    duplicates_dropped: int
    sha256: str | None = None

    def metadata(self) -> dict[bytes, bytes]:
        return {f"binance.{k}".encode(): str(v).encode() for k, v in self.__dict__.items() if v is not None}


def parse_info(table: pa.Table) -> dict[str, str]:
    """The ``binance.*`` schema metadata a parser attached: source, time_unit, header,
    rows_read, rows, duplicates_dropped and (after download) sha256."""
    meta = table.schema.metadata or {}
    return {k.decode()[len("binance."):]: v.decode() for k, v in meta.items() if k.startswith(b"binance.")}


def window_of(dataset: str | Dataset, day: date | str | None = None,
              month: tuple[int, int] | None = None) -> tuple[int, int, str] | None:
    """``(start_ns, end_ns, what)`` the rows of one file must fall in: its UTC day (daily
    datasets) or month (monthly ones); None when neither is given."""
    ds = get_dataset(dataset)
    if ds.period == "daily" and day is not None:
        d = as_date(day)
        return (*day_bounds_ns(d), f"UTC day {d}")
    if ds.period == "monthly" and month is not None:
        year, m = month
        return (*month_bounds_ns(year, m), f"UTC month {year:04d}-{m:02d}")
    return None


def parse_csv(csv: bytes, dataset: str | Dataset, *, source: str, day: date | str | None = None,
              month: tuple[int, int] | None = None, use_threads: bool = True,
              block_size: int | None = None) -> pa.Table:
    """Parse one archive CSV (with or without header) into the dataset's canonical schema.

    ``day`` (daily datasets) / ``month`` (monthly) bound the rows: a row outside is
    an error. Output is sorted by time; exact duplicate rows are dropped (counted
    in the ``binance.duplicates_dropped`` metadata), conflicting duplicates raise.
    """
    ds = get_dataset(dataset)
    if not csv or csv.isspace():
        raise ParseError(source, "file has no data rows")
    ctx = ParseContext(source, csv, detect_header(csv))
    return _parse(ds, ctx, csv, None, window_of(ds, day, month), use_threads, block_size)


def parse_zip(data: bytes, dataset: str | Dataset, *, source: str, day: date | str | None = None,
              month: tuple[int, int] | None = None, use_threads: bool = True,
              block_size: int | None = None) -> pa.Table:
    """Zip bytes (already verified) -> canonical table. See :func:`parse_csv`.

    A deflated member is inflated block by block while pyarrow parses it
    (:class:`~factor_core.binance.zipmember.MemberReader`); the whole CSV is only
    materialised when an error message needs line numbers. A damaged archive is
    reported as :class:`CorruptArchive` even when the damage first shows up as bad CSV.
    """
    ds = get_dataset(dataset)
    info, stored, raw = open_member(data, source)
    if raw is None:
        return parse_csv(stored, ds, source=source, day=day, month=month,  # type: ignore[arg-type]
                         use_threads=use_threads, block_size=block_size)
    stream = MemberReader(raw, info, source)
    try:
        head = stream.peek()
        if not head or (stream.done and head.isspace()):
            raise ParseError(source, "file has no data rows")
        ctx = ParseContext(source, None, detect_header(head), lambda: inflate_member(raw, info, source))
        return _parse(ds, ctx, head, stream, window_of(ds, day, month), use_threads, block_size)
    except ParseError:
        if not stream.done:
            inflate_member(raw, info, source)  # corruption (CRC/size/deflate) takes precedence
        raise


def _parse(ds: Dataset, ctx: ParseContext, head: bytes, stream, window, use_threads: bool,
           block_size: int | None) -> pa.Table:
    table = read_csv(ds, ctx, head, stream, use_threads=use_threads, block_size=block_size)
    out, unit, dropped = BUILDERS[ds.name](table, ctx, window)
    info = ParseInfo(ctx.source, table.num_rows, out.num_rows, unit, ctx.header, dropped)
    return out.replace_schema_metadata(info.metadata())


def split_by_day(table: pa.Table, *, column: str | None = None) -> dict[date, pa.Table]:
    """Split a canonical table into UTC-day pieces ``{date: table}`` (only days with rows).

    Rows keep their order within a day; schema metadata is kept on every piece.
    """
    if column is None:
        column = next(n for n in ("ts", "open_time") if n in table.column_names)
    if table.num_rows == 0:
        return {}
    ns = to_numpy(table.column(column).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()))
    days = ns // NS_PER_DAY
    order = np.argsort(days, kind="stable")
    if not (order == np.arange(len(order))).all():
        table = table.take(pa.array(order))
        days = days[order]
    cuts = np.flatnonzero(np.diff(days)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(days)]))
    epoch = date(1970, 1, 1)
    return {epoch + timedelta(days=int(days[s])): table.slice(int(s), int(e - s)) for s, e in zip(starts, ends)}
