"""Binance public-data archive (data.binance.vision): URLs, verified download, parsing.

Pipeline for one file::

    URL  --GET-->  zip bytes  --sha256 vs .CHECKSUM-->  verified bytes
         --zip directory over BytesIO-->  the one CSV member, inflated in 1 MiB
           pieces (ISA-L) straight into pyarrow's CSV reader (never written to disk,
           never held whole; CRC-32 + size checked at the end of the stream)
         --pyarrow.csv (explicit column types, needed columns only)-->  Arrow columns
         --unit detection, range/duplicate checks-->  canonical table (schemas.py)

Datasets (keys of :data:`DATASETS`):

* ``klines``      spot 1-minute klines, daily            -> ``KLINES``
* ``um_klines``   USD-M futures 1-minute klines, daily   -> ``KLINES``
* ``aggTrades``   spot aggregate trades, daily           -> ``TRADES``
* ``bookDepth``   USD-M futures depth bands, daily       -> ``BOOK`` (depth-band shape)
* ``fundingRate`` USD-M futures funding, monthly         -> ``FUNDING`` (split with :func:`split_by_day`)

Duplicate policy: rows that are exact copies of an earlier row (same key, same
values) are dropped and counted (``binance.duplicates_dropped`` in the table's
schema metadata, plus a log warning); two rows with the same key but different
values are an error naming both lines.

Nothing here imports Dagster.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import logging
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Sequence

import aiohttp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from isal import isal_zlib  # ISA-L inflate + CRC-32: ~2.3x / ~3.5x stdlib zlib here

from factor_core.schemas import BOOK, FUNDING, KLINES, TRADES, TS, validate_symbol

from ._http import RETRYABLE_EXCEPTIONS, OwnedSession, RetryPolicy, Sleep, describe_exception, snippet
from .errors import (
    BinanceError,
    ChecksumError,
    ChecksumMismatch,
    ChecksumMissing,
    CorruptArchive,
    NotAvailableYet,
    ParseError,
    RequestFailed,
)

log = logging.getLogger(__name__)

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"

#: Refuse zip members that claim to inflate beyond this (zip-bomb guard).
MAX_MEMBER_BYTES = 8 * 1024**3

#: pyarrow.csv block size, also the inflate step of a streamed zip member.
#: 4 MiB measured best for 170 MB aggTrades files streamed from the zip (fewer
#: I/O-thread hand-offs; 0.5-2 MiB cost 5-15% more CPU); no difference when
#: parsing bytes already in memory. See bench/bench_parse.py.
DEFAULT_BLOCK_SIZE = 4 << 20

#: Binance archives never quote fields: with quoting off the tokenizer is ~8%
#: faster. A file that does quote fails that pass and is re-read with quoting.
_UNQUOTED = pacsv.ParseOptions(quote_char=False)

_MS_LO, _MS_HI = 10**12, 10**13  # 13-digit epoch milliseconds (2001-09-09 .. 2286-11-20)
_US_LO, _US_HI = 10**15, 10**16  # 16-digit epoch microseconds
_NS_PER_DAY = 86_400 * 10**9


# =========================================================================== datasets


@dataclass(frozen=True)
class Dataset:
    """How one archive dataset is laid out and parsed."""

    name: str
    market: str  # "spot" | "futures/um"
    period: str  # "daily" | "monthly"
    type: str  # URL path segment: klines, aggTrades, bookDepth, fundingRate
    interval: str | None  # "1m" for klines, else None
    columns: tuple[str, ...]  # internal names, in the order of headerless files
    types: Mapping[str, pa.DataType]  # columns that are converted (others are skipped)
    schema: pa.Schema  # canonical output schema
    time_column: str  # internal column holding the timestamp
    header_aliases: Mapping[str, str] = field(default_factory=dict)


_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
_KLINE_TYPES = {
    "open_time": pa.int64(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.float64(),
    "quote_volume": pa.float64(),
    "trade_count": pa.int64(),
    "taker_buy_volume": pa.float64(),
    "taker_buy_quote_volume": pa.float64(),
}
_KLINE_ALIASES = {
    "open_time": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
    "volume": "volume", "close_time": "close_time", "quote_volume": "quote_volume",
    "quote_asset_volume": "quote_volume", "count": "trade_count", "number_of_trades": "trade_count",
    "trade_count": "trade_count", "taker_buy_volume": "taker_buy_volume",
    "taker_buy_base_volume": "taker_buy_volume", "taker_buy_base_asset_volume": "taker_buy_volume",
    "taker_buy_quote_volume": "taker_buy_quote_volume",
    "taker_buy_quote_asset_volume": "taker_buy_quote_volume", "ignore": "ignore",
}  # fmt: skip

_AGG_COLUMNS = (
    "trade_id", "price", "qty", "first_trade_id", "last_trade_id", "ts",
    "is_buyer_maker", "is_best_match",
)  # fmt: skip
_AGG_TYPES = {
    "trade_id": pa.int64(),
    "price": pa.float64(),
    "qty": pa.float64(),
    "ts": pa.int64(),
    "is_buyer_maker": pa.bool_(),
}
_AGG_ALIASES = {
    "agg_trade_id": "trade_id", "aggregate_trade_id": "trade_id", "trade_id": "trade_id",
    "id": "trade_id", "price": "price", "quantity": "qty", "qty": "qty",
    "first_trade_id": "first_trade_id", "last_trade_id": "last_trade_id",
    "transact_time": "ts", "timestamp": "ts", "time": "ts", "ts": "ts",
    "is_buyer_maker": "is_buyer_maker", "was_the_buyer_the_maker": "is_buyer_maker",
    "is_best_match": "is_best_match", "was_the_trade_the_best_price_match": "is_best_match",
}  # fmt: skip

DATASETS: dict[str, Dataset] = {
    "klines": Dataset(
        "klines", "spot", "daily", "klines", "1m", _KLINE_COLUMNS, _KLINE_TYPES, KLINES,
        "open_time", _KLINE_ALIASES,
    ),
    "um_klines": Dataset(
        "um_klines", "futures/um", "daily", "klines", "1m", _KLINE_COLUMNS, _KLINE_TYPES,
        KLINES, "open_time", _KLINE_ALIASES,
    ),
    "aggTrades": Dataset(
        "aggTrades", "spot", "daily", "aggTrades", None, _AGG_COLUMNS, _AGG_TYPES, TRADES,
        "ts", _AGG_ALIASES,
    ),
    "bookDepth": Dataset(
        "bookDepth", "futures/um", "daily", "bookDepth", None,
        ("timestamp", "percentage", "depth", "notional"),
        {"timestamp": pa.timestamp("s"), "percentage": pa.float64(), "depth": pa.float64(),
         "notional": pa.float64()},
        BOOK, "timestamp",
        {"timestamp": "timestamp", "percentage": "percentage", "depth": "depth",
         "notional": "notional"},
    ),
    "fundingRate": Dataset(
        "fundingRate", "futures/um", "monthly", "fundingRate", None,
        ("calc_time", "funding_interval_hours", "last_funding_rate"),
        {"calc_time": pa.int64(), "funding_interval_hours": pa.int64(),
         "last_funding_rate": pa.float64()},
        FUNDING, "calc_time",
        {"calc_time": "calc_time", "funding_interval_hours": "funding_interval_hours",
         "last_funding_rate": "last_funding_rate", "funding_rate": "last_funding_rate"},
    ),
}  # fmt: skip


def get_dataset(dataset: str | Dataset) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}") from None


# =========================================================================== URLs


def _as_date(day: date | str) -> date:
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    return date.fromisoformat(str(day))


def period_label(dataset: str | Dataset, when: date | str | tuple[int, int]) -> str:
    """``YYYY-MM-DD`` for daily datasets, ``YYYY-MM`` for monthly ones."""
    ds = get_dataset(dataset)
    if ds.period == "monthly":
        if isinstance(when, tuple):
            year, month = when
        elif isinstance(when, str) and re.fullmatch(r"\d{4}-\d{2}", when):
            year, month = int(when[:4]), int(when[5:])
        else:
            d = _as_date(when)  # type: ignore[arg-type]
            year, month = d.year, d.month
        if not 1 <= month <= 12:
            raise ValueError(f"invalid month {month}")
        return f"{year:04d}-{month:02d}"
    if isinstance(when, tuple):
        raise ValueError(f"{ds.name} is a daily dataset: pass a date, not {when!r}")
    return _as_date(when).isoformat()


def archive_filename(dataset: str | Dataset, symbol: str, when) -> str:
    ds = get_dataset(dataset)
    validate_symbol(symbol)
    return f"{symbol}-{ds.interval or ds.type}-{period_label(ds, when)}.zip"


def archive_url(
    dataset: str | Dataset, symbol: str, when, base_url: str = DEFAULT_ARCHIVE_URL
) -> str:
    """Full URL of one archive zip, e.g.
    ``https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip``.
    The checksum lives at the same URL + ``.CHECKSUM``."""
    ds = get_dataset(dataset)
    validate_symbol(symbol)  # before any URL is built
    parts = [base_url.rstrip("/"), "data", ds.market, ds.period, ds.type, symbol]
    if ds.interval:
        parts.append(ds.interval)
    parts.append(archive_filename(ds, symbol, when))
    return "/".join(parts)


# =========================================================================== zip + checksum


_CHECKSUM_LINE = re.compile(rb"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")


def parse_checksum(text: bytes, *, url: str) -> tuple[str, str]:
    """Parse ``<sha256 hex>  <file name>`` (sha256sum format) -> (hex, name)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1 or not (m := _CHECKSUM_LINE.match(lines[0])):
        raise ChecksumError(
            f"malformed checksum file {url}: expected '<sha256 hex>  <file name>', "
            f"got {snippet(text, 160)!r}"
        )
    return m.group(1).decode().lower(), m.group(2).decode()


def verify_checksum(data: bytes, checksum_text: bytes, *, url: str) -> str:
    """Check ``data`` against its CHECKSUM file; return the sha256 hex or raise."""
    expected, name = parse_checksum(checksum_text, url=url + ".CHECKSUM")
    file_name = url.rsplit("/", 1)[-1]
    if name.rsplit("/", 1)[-1] != file_name:
        raise ChecksumError(
            f"checksum file {url}.CHECKSUM is for {name!r}, not for {file_name!r}"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumMismatch(url, expected, actual)
    return actual


_INFLATE_ERRORS = (zlib.error, isal_zlib.error)


def _open_member(data: bytes, source: str) -> tuple[zipfile.ZipInfo, bytes | None, memoryview | None]:
    """Validate the zip directory; return (info, stored bytes, deflate stream).

    Exactly one of the last two is set: the member's bytes when it is not
    deflated (read by zipfile, which checks the CRC), else a view of its raw
    deflate stream inside ``data`` (no copy).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [info for info in zf.infolist() if not info.is_dir()]
            csvs = [info for info in members if info.filename.lower().endswith(".csv")]
            if len(csvs) != 1 or len(members) != 1:
                raise CorruptArchive(
                    f"{source}: expected exactly one CSV member, found "
                    f"{[info.filename for info in members]}"
                )
            info = csvs[0]
            if info.file_size > MAX_MEMBER_BYTES:
                raise CorruptArchive(
                    f"{source}: member {info.filename!r} claims {info.file_size} bytes "
                    f"uncompressed (limit {MAX_MEMBER_BYTES})"
                )
            if info.flag_bits & 0x1:
                raise CorruptArchive(f"{source}: member {info.filename!r} is encrypted")
            if info.compress_type == zipfile.ZIP_DEFLATED:
                return info, None, _deflate_stream(data, info, source)
            return info, zf.read(info), None  # stored/other: zipfile checks the CRC
    except CorruptArchive:
        raise
    except (zipfile.BadZipFile, *_INFLATE_ERRORS, EOFError, ValueError, NotImplementedError) as exc:
        raise CorruptArchive(f"{source}: corrupt zip archive ({describe_exception(exc)})") from exc


def read_zip_member(data: bytes, *, source: str) -> tuple[str, bytes]:
    """Return (member name, bytes) of the single CSV inside a zip, all in memory."""
    info, stored, raw = _open_member(data, source)
    if raw is None:
        return info.filename, stored  # type: ignore[return-value]
    return info.filename, _inflate(raw, info, source)


def _deflate_stream(data: bytes, info: zipfile.ZipInfo, source: str) -> memoryview:
    """The raw deflate bytes of ``info`` inside ``data`` (a view, no copy)."""
    off = info.header_offset
    header = data[off : off + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise CorruptArchive(f"{source}: bad local file header for {info.filename!r}")
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    start = off + 30 + name_len + extra_len
    raw = memoryview(data)[start : start + info.compress_size]
    if len(raw) != info.compress_size:
        raise CorruptArchive(f"{source}: member {info.filename!r} is truncated")
    return raw


def _inflate(raw: memoryview, info: zipfile.ZipInfo, source: str) -> bytes:
    """Inflate a whole deflated member in one call with a pre-sized output buffer;
    the CRC-32 and size are verified exactly as zipfile would."""
    try:
        out = isal_zlib.decompress(raw, -15, max(info.file_size, 1))
    except _INFLATE_ERRORS as exc:
        raise CorruptArchive(f"{source}: corrupt zip archive ({exc})") from exc
    _check_member(info, len(out), isal_zlib.crc32(out), source)
    return out


def _check_member(info: zipfile.ZipInfo, size: int, crc: int, source: str) -> None:
    if size != info.file_size:
        raise CorruptArchive(
            f"{source}: member {info.filename!r} inflates to {size} bytes, "
            f"directory says {info.file_size}"
        )
    if crc != info.CRC:
        raise CorruptArchive(f"{source}: corrupt zip archive (bad CRC-32 for {info.filename!r})")


class _MemberReader(io.RawIOBase):
    """Read-only file over a deflated zip member that inflates on demand.

    pyarrow's CSV reader pulls ``block_size`` bytes at a time, so at most a few
    blocks of CSV exist at once and each is parsed while still in cache; with
    ``use_threads=True`` pyarrow's I/O thread inflates (ISA-L releases the GIL)
    while its CPU threads parse earlier blocks. The CRC-32 and size are checked
    when the stream ends; any failure is kept in :attr:`error` (pyarrow may wrap
    exceptions raised inside ``read``).
    """

    def __init__(self, raw: memoryview, info: zipfile.ZipInfo, source: str):
        super().__init__()
        self._raw, self._info, self._source = raw, info, source
        self._pos = 0
        self._d = isal_zlib.decompressobj(-15)
        self._tail = b""
        self._size = 0
        self._crc = 0
        self._prefix = b""
        self._stalled = False  # input exhausted and the decompressor gave nothing more
        self.done = False
        self.error: CorruptArchive | None = None

    def readable(self) -> bool:
        return True

    def peek(self, size: int = 1 << 16) -> bytes:
        """At least ``size`` bytes from the start (fewer only at EOF), and up to
        the first newline if it comes later; not consumed."""
        while not self.done and (
            len(self._prefix) < size or (b"\n" not in self._prefix and len(self._prefix) < 1 << 24)
        ):
            self._prefix += self._inflate(max(size, 1 << 16))
        return self._prefix

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            pieces = [self.read(1 << 22)]
            while pieces[-1]:
                pieces.append(self.read(1 << 22))
            return b"".join(pieces)
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        return self._inflate(size) if size else b""

    def drain(self) -> None:
        """Inflate (and discard) the rest, so the CRC-32 and size get checked."""
        while not self.done:
            self._inflate(1 << 22)

    def _inflate(self, size: int) -> bytes:
        try:
            return self._inflate_unchecked(size)
        except CorruptArchive as exc:
            self.error = exc
            raise

    def _inflate_unchecked(self, size: int) -> bytes:
        pieces: list[bytes] = []
        got = 0
        feed = max(size // 2, 1 << 16)  # compressed bytes per step (archives inflate 3-10x)
        d = self._d
        while got < size and not self.done:
            if d.eof:
                self._finish()
                break
            if self._tail:
                src = self._tail
            elif self._pos < len(self._raw):
                src = self._raw[self._pos : self._pos + feed]
                self._pos += len(src)
            elif not self._stalled:
                src = b""  # all input in: collect output the decompressor still holds
            else:
                raise CorruptArchive(
                    f"{self._source}: corrupt zip archive (deflate stream of "
                    f"{self._info.filename!r} ends early)"
                )
            try:
                out = d.decompress(src, size - got)
            except _INFLATE_ERRORS as exc:
                raise CorruptArchive(f"{self._source}: corrupt zip archive ({exc})") from exc
            self._tail = d.unconsumed_tail
            self._stalled = not src and not out
            if out:
                self._size += len(out)
                if self._size > self._info.file_size:
                    raise CorruptArchive(
                        f"{self._source}: member {self._info.filename!r} inflates beyond the "
                        f"{self._info.file_size} bytes its directory entry says"
                    )
                self._crc = isal_zlib.crc32(out, self._crc)
                pieces.append(out)
                got += len(out)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _finish(self) -> None:
        self.done = True
        self._raw = memoryview(b"")
        _check_member(self._info, self._size, self._crc, self._source)


# =========================================================================== CSV parsing


class _Ctx:
    """What error messages need to point at a line of the CSV.

    ``csv`` is the whole file; when parsing streams from a zip it is only
    materialised (by ``load``) if an error message needs a line number.
    """

    def __init__(self, source: str, csv: bytes | None, header: bool,
                 load: Callable[[], bytes] | None = None):
        self.source, self.header = source, header
        self._csv, self._load = csv, load

    @property
    def csv(self) -> bytes:
        if self._csv is None:
            self._csv = self._load() if self._load is not None else b""
        return self._csv

    def line_of(self, row_index: int) -> int:
        """1-based line number in the file of data row ``row_index`` (0-based)."""
        base = 1 + int(self.header)
        if b"\n\n" not in self.csv and b"\n\r\n" not in self.csv:
            return row_index + base
        # blank lines are skipped by the parser: count non-empty lines (error path only)
        seen = -1
        for lineno, line in enumerate(self.csv.splitlines(), start=1):
            if lineno <= int(self.header) or not line.strip():
                continue
            seen += 1
            if seen == row_index:
                return lineno
        return row_index + base

    def error(self, problem: str, *, row: int | None = None, line: int | None = None,
              column: str | None = None, value: object = None) -> ParseError:
        if line is None and row is not None:
            line = self.line_of(row)
        return ParseError(self.source, problem, line=line, column=column, value=value)


def _detect_header(csv: bytes) -> bool:
    first = csv[:256].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return first.isalpha() or first == b'"'


def _header_columns(ds: Dataset, csv: bytes, ctx: _Ctx) -> tuple[list[str], bool]:
    """Map the header row to internal names. Returns (names, matched_by_name)."""
    end = csv.find(b"\n")
    line = csv[: end if end >= 0 else len(csv)].decode("utf-8", errors="replace")
    names = [n.strip().strip('"').strip().lower().lstrip("\ufeff") for n in line.split(",")]
    if len(names) != len(ds.columns):
        raise ctx.error(
            f"header has {len(names)} columns, expected {len(ds.columns)} {list(ds.columns)}",
            line=1, value=line.strip(),
        )
    mapped = [ds.header_aliases.get(n) for n in names]
    if None not in mapped and sorted(mapped) == sorted(ds.columns):  # type: ignore[arg-type]
        return mapped, True  # type: ignore[return-value]
    log.warning("%s: unrecognised header %r; reading columns by position", ctx.source, line)
    return list(ds.columns), False


_INT_RE = re.compile(rb"^\s*[-+]?\d+\s*$")
_TRUE = (b"true", b"True", b"TRUE", b"1")
_FALSE = (b"false", b"False", b"FALSE", b"0")


def _field_ok(raw: bytes, typ: pa.DataType) -> bool:
    if pa.types.is_integer(typ):
        return bool(_INT_RE.match(raw))
    if pa.types.is_floating(typ):
        try:
            float(raw)
        except ValueError:
            return False
        return True
    if pa.types.is_boolean(typ):
        return raw.strip() in _TRUE + _FALSE
    if pa.types.is_timestamp(typ):
        try:
            datetime.strptime(raw.decode().strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return False
        return True
    return True


def _diagnose(ctx: _Ctx, names: Sequence[str], types: Mapping[str, pa.DataType],
              exc: BaseException) -> ParseError:
    """Find the first offending line after pyarrow refused the file (error path only)."""
    csv = ctx.csv
    lines = csv.split(b"\n")
    ends_with_newline = csv.endswith(b"\n")
    if ends_with_newline:
        lines = lines[:-1]
    last = len(lines)
    expected = len(names)
    for lineno, raw in enumerate(lines, start=1):
        if lineno == 1 and ctx.header:
            continue
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        fields = raw.split(b",")
        truncated = lineno == last and not ends_with_newline
        hint = " (last line, no trailing newline: truncated CSV?)" if truncated else ""
        if len(fields) != expected:
            kind = "truncated CSV: " if truncated and len(fields) < expected else "wrong column count: "
            return ctx.error(
                f"{kind}{len(fields)} columns, expected {expected}{hint}",
                line=lineno, value=raw.decode("utf-8", "replace"),
            )
        for name, value in zip(names, fields):
            typ = types.get(name)
            if typ is not None and not _field_ok(value, typ):
                what = {"double": "a number", "int64": "an integer", "bool": "true/false"}.get(
                    str(typ), "a 'YYYY-MM-DD HH:MM:SS' timestamp"
                )
                return ctx.error(
                    f"value is not {what}{hint}", line=lineno, column=name,
                    value=value.decode("utf-8", "replace"),
                )
    return ctx.error(f"CSV could not be parsed: {exc}")


def _read_csv(ds: Dataset, ctx: _Ctx, head: bytes, stream=None, *, use_threads: bool,
              block_size: int | None) -> pa.Table:
    """Run pyarrow's CSV reader over ``stream`` (default: the whole ``ctx.csv``).

    ``head`` is the start of the file (through its first line), used for the
    header. Only the dataset's typed columns are converted; the rest are
    skipped by the tokenizer.
    """
    if ctx.header:
        names, _ = _header_columns(ds, head, ctx)
    else:
        names = list(ds.columns)
    include = [n for n in names if n in ds.types]
    read_options = pacsv.ReadOptions(
        column_names=names,
        skip_rows=1 if ctx.header else 0,
        use_threads=use_threads,
        block_size=block_size or DEFAULT_BLOCK_SIZE,
    )
    convert_options = pacsv.ConvertOptions(
        column_types=dict(ds.types),
        include_columns=include,
        null_values=[],  # an empty field is an error, never a silent null
        strings_can_be_null=False,
        true_values=["true", "True", "TRUE"],
        false_values=["false", "False", "FALSE"],
    )
    try:
        table = pacsv.read_csv(
            stream if stream is not None else pa.BufferReader(ctx.csv),
            read_options=read_options, parse_options=_UNQUOTED,
            convert_options=convert_options,
        )
    except Exception as exc:
        if isinstance(stream, _MemberReader) and stream.error is not None:
            raise stream.error from exc  # the zip is corrupt: nothing to say about lines
        if not isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError)):
            raise
        if ctx.csv.isspace():
            raise ctx.error("file has no data rows") from exc
        if b'"' not in ctx.csv:
            raise _diagnose(ctx, names, ds.types, exc) from exc
        try:  # rare: quoted fields. Parse again with CSV quoting (whole file in memory).
            table = pacsv.read_csv(pa.BufferReader(ctx.csv), read_options=read_options,
                                   convert_options=convert_options)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc2:
            raise _diagnose(ctx, names, ds.types, exc2) from exc2
    if isinstance(stream, _MemberReader):
        stream.drain()  # normally already at the end: checks the CRC-32 and size
    if table.num_rows == 0:
        raise ctx.error("file has no data rows")
    return table


def _np(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column.to_numpy(zero_copy_only=False)


def _unit_of(value: int) -> str | None:
    if _MS_LO <= value < _MS_HI:
        return "ms"
    if _US_LO <= value < _US_HI:
        return "us"
    return None


def epoch_to_utc_ns(values: np.ndarray, ctx: _Ctx, column: str) -> tuple[np.ndarray, str]:
    """Epoch integers in ms or µs (detected from magnitude) -> int64 ns since epoch, unit.

    Every value of one file must share the unit: a mix is an error naming the
    first line whose unit differs from the first row's.
    """
    lo, hi = int(values.min()), int(values.max())
    unit = _unit_of(lo)
    if unit is None or _unit_of(hi) != unit:
        first_unit = _unit_of(int(values[0]))
        if first_unit is None:
            raise ctx.error(
                "timestamp is neither 13-digit epoch milliseconds nor 16-digit epoch "
                "microseconds", row=0, column=column, value=int(values[0]),
            )
        lo_b, hi_b = (_MS_LO, _MS_HI) if first_unit == "ms" else (_US_LO, _US_HI)
        bad = int(np.flatnonzero((values < lo_b) | (values >= hi_b))[0])
        other = _unit_of(int(values[bad]))
        if other is None:
            raise ctx.error(
                "timestamp is neither 13-digit epoch milliseconds nor 16-digit epoch "
                "microseconds", row=bad, column=column, value=int(values[bad]),
            )
        raise ctx.error(
            f"file mixes timestamp units: line {ctx.line_of(0)} is in {first_unit} but this "
            f"line is in {other}", row=bad, column=column, value=int(values[bad]),
        )
    factor = 1_000_000 if unit == "ms" else 1_000
    return values * factor, unit


def _check_range(ns: np.ndarray, start_ns: int, end_ns: int, ctx: _Ctx, column: str,
                 raw: np.ndarray | None, what: str) -> None:
    if len(ns) == 0:
        return
    if int(ns.min()) >= start_ns and int(ns.max()) < end_ns:
        return
    bad = int(np.flatnonzero((ns < start_ns) | (ns >= end_ns))[0])
    stamp = datetime.fromtimestamp(int(ns[bad]) / 1e9, tz=timezone.utc).isoformat()
    value = int(raw[bad]) if raw is not None else stamp
    raise ctx.error(f"row is outside the requested {what} (timestamp {stamp})",
                    row=bad, column=column, value=value)


def _check_finite(table: pa.Table, ctx: _Ctx, columns: Iterable[str]) -> None:
    for name in columns:
        values = _np(table.column(name))
        finite = np.isfinite(values)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise ctx.error("value is not a finite number", row=bad, column=name,
                            value=float(values[bad]))


def _ts_array(ns: np.ndarray) -> pa.Array:
    return pa.array(ns, type=pa.int64()).view(TS)


def _dedupe_sort(
    table: pa.Table, ctx: _Ctx, keys: Sequence[np.ndarray], key_names: Sequence[str],
    sort_keys: Sequence[np.ndarray] | None = None,
) -> tuple[pa.Table, int]:
    """Drop exact duplicate rows (same key, same values), fail on conflicting ones,
    then sort by ``sort_keys`` (default ``keys``; first = most significant)."""
    n = table.num_rows
    order = np.lexsort(tuple(reversed(keys))) if len(keys) > 1 else np.argsort(keys[0], kind="stable")
    same = np.ones(max(n - 1, 0), dtype=bool)
    for key in keys:
        k = key[order]
        same &= k[1:] == k[:-1]
    dropped = 0
    if same.any():
        first_idx = order[:-1][same]
        dup_idx = order[1:][same]
        for name in table.column_names:
            col = _np(table.column(name))
            a, b = col[first_idx], col[dup_idx]
            eq = a == b
            if col.dtype.kind == "f":
                eq |= np.isnan(a) & np.isnan(b)
            if not eq.all():
                i = int(np.flatnonzero(~eq)[0])
                row_a, row_b = sorted((int(first_idx[i]), int(dup_idx[i])))
                key_text = ", ".join(
                    f"{kn}={_fmt(keys[j][row_a])}" for j, kn in enumerate(key_names)
                )
                raise ctx.error(
                    f"conflicting duplicate rows for {key_text}: line {ctx.line_of(row_a)} has "
                    f"{name}={_fmt(col[row_a])}, this line has {_fmt(col[row_b])}",
                    row=row_b, column=name, value=_fmt(col[row_b]),
                )
        keep = np.ones(n, dtype=bool)
        keep[dup_idx] = False
        dropped = int((~keep).sum())
        log.warning("%s: dropped %d exact duplicate row(s)", ctx.source, dropped)
        table = table.filter(pa.array(keep))
        keys = [k[keep] for k in keys]
        if sort_keys is not None:
            sort_keys = [k[keep] for k in sort_keys]
    skeys = list(sort_keys if sort_keys is not None else keys)
    if not _is_sorted(skeys):
        order = np.lexsort(tuple(reversed(skeys)))
        table = table.take(pa.array(order))
    return table, dropped


def _fmt(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_sorted(keys: Sequence[np.ndarray]) -> bool:
    """True if rows are in non-decreasing lexicographic order of ``keys``."""
    undecided = None
    for k in keys:
        a, b = k[:-1], k[1:]
        bad = a > b
        if undecided is not None:
            bad &= undecided
        if bad.any():
            return False
        eq = a == b
        undecided = eq if undecided is None else (undecided & eq)
        if not undecided.any():
            return True
    return True


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
        return {
            f"binance.{k}".encode(): str(v).encode()
            for k, v in self.__dict__.items()
            if v is not None
        }


def parse_info(table: pa.Table) -> dict[str, str]:
    """The ``binance.*`` schema metadata a parser attached (source, unit, duplicates...)."""
    meta = table.schema.metadata or {}
    return {
        k.decode()[len("binance."):]: v.decode()
        for k, v in meta.items()
        if k.startswith(b"binance.")
    }


def _window(ds: Dataset, day: date | None, month: tuple[int, int] | None):
    if ds.period == "daily" and day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return int(start.timestamp()) * 10**9, int(start.timestamp()) * 10**9 + _NS_PER_DAY, f"UTC day {day}"
    if ds.period == "monthly" and month is not None:
        y, m = month
        start = datetime(y, m, 1, tzinfo=timezone.utc)
        ndays = calendar.monthrange(y, m)[1]
        s = int(start.timestamp()) * 10**9
        return s, s + ndays * _NS_PER_DAY, f"UTC month {y:04d}-{m:02d}"
    return None


def parse_csv(
    csv: bytes,
    dataset: str | Dataset,
    *,
    source: str,
    day: date | str | None = None,
    month: tuple[int, int] | None = None,
    use_threads: bool = True,
    block_size: int | None = None,
) -> pa.Table:
    """Parse one archive CSV (with or without header) into the dataset's canonical schema.

    ``day`` (daily datasets) / ``month`` (monthly) bound the rows: a row outside is
    an error. Output is sorted by time; exact duplicate rows are dropped (counted
    in the ``binance.duplicates_dropped`` metadata), conflicting duplicates raise.
    """
    ds = get_dataset(dataset)
    if not csv or csv.isspace():
        raise ParseError(source, "file has no data rows")
    ctx = _Ctx(source, csv, _detect_header(csv))
    return _parse(ds, ctx, csv, None, day=day, month=month, use_threads=use_threads,
                  block_size=block_size)


def _parse(ds: Dataset, ctx: _Ctx, head: bytes, stream, *, day, month, use_threads: bool,
           block_size: int | None) -> pa.Table:
    day = _as_date(day) if day is not None else None
    table = _read_csv(ds, ctx, head, stream, use_threads=use_threads, block_size=block_size)
    window = _window(ds, day, month)
    builder = {"klines": _build_klines, "um_klines": _build_klines, "aggTrades": _build_trades,
               "bookDepth": _build_book, "fundingRate": _build_funding}[ds.name]
    out, unit, dropped = builder(table, ctx, window)
    info = ParseInfo(ctx.source, table.num_rows, out.num_rows, unit, ctx.header, dropped)
    return out.replace_schema_metadata(info.metadata())


# ---------------------------------------------------------------- per-dataset builders


def _epoch_column(table: pa.Table, ctx: _Ctx, name: str, window) -> tuple[np.ndarray, str]:
    raw = _np(table.column(name))
    ns, unit = epoch_to_utc_ns(raw, ctx, name)
    if window is not None:
        _check_range(ns, window[0], window[1], ctx, name, raw, window[2])
    return ns, unit


def _build_klines(table: pa.Table, ctx: _Ctx, window):
    ns, unit = _epoch_column(table, ctx, "open_time", window)
    floats = ["open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
              "taker_buy_quote_volume"]
    _check_finite(table, ctx, floats)
    arrays = [_ts_array(ns)] + [table.column(n) for n in KLINES.names[1:]]
    out = pa.Table.from_arrays(arrays, schema=KLINES)
    if bool((ns[1:] > ns[:-1]).all()):
        return out, unit, 0
    out, dropped = _dedupe_sort(out, ctx, [ns], ["open_time"])
    return out, unit, dropped


def _chunks_np(column: pa.ChunkedArray) -> list[np.ndarray]:
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
    unit = _unit_of(lo)
    if unit is None or _unit_of(hi) != unit:
        return None
    factor = 1_000_000 if unit == "ms" else 1_000
    if window is not None and not (lo * factor >= window[0] and hi * factor < window[1]):
        return None
    if hi * factor >= 2**63:
        return None
    for name in ("price", "qty"):  # NaN/inf propagate into the sum; finite sums can't overflow here
        total = pc.sum(table.column(name)).as_py()
        if total is None or not np.isfinite(total):
            return None
    ts_np = _chunks_np(ts)
    if not _increasing(_chunks_np(table.column("trade_id")), strict=True):
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


def _build_trades(table: pa.Table, ctx: _Ctx, window):
    fast = _fast_trades(table, window)
    if fast is not None:
        return fast[0], fast[1], 0
    ns, unit = _epoch_column(table, ctx, "ts", window)
    _check_finite(table, ctx, ["price", "qty"])
    ids = _np(table.column("trade_id"))
    out = pa.Table.from_arrays(
        [table.column("trade_id"), _ts_array(ns), table.column("price"), table.column("qty"),
         table.column("is_buyer_maker")],
        schema=TRADES,
    )
    # fast path: ids strictly increasing and time non-decreasing (the normal archive)
    if bool((ids[1:] > ids[:-1]).all()) and bool((ns[1:] >= ns[:-1]).all()):
        return out, unit, 0
    out, dropped = _dedupe_sort(out, ctx, [ids], ["trade_id"])
    ns2 = _np(out.column("ts").cast(pa.int64()))
    ids2 = _np(out.column("trade_id"))
    if not _is_sorted([ns2, ids2]):
        out = out.take(pa.array(np.lexsort((ids2, ns2))))
    return out, unit, dropped


def _build_book(table: pa.Table, ctx: _Ctx, window):
    ns = _np(table.column("timestamp").cast(pa.timestamp("ns")).cast(pa.int64()))
    if window is not None:
        _check_range(ns, window[0], window[1], ctx, "timestamp", None, window[2])
    _check_finite(table, ctx, ["percentage", "depth", "notional"])
    pct = _np(table.column("percentage"))
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
        [_ts_array(ns), side, pa.array(level, type=pa.int16()), pa.nulls(n, pa.float64()),
         table.column("depth"), pa.array(band, type=pa.float64()), table.column("notional")],
        schema=BOOK,
    )
    side_code = np.where(is_bid, 0, 1)  # bid rows first within a timestamp
    out, dropped = _dedupe_sort(out, ctx, [ns, side_code, band], ["ts", "side", "band_pct"])
    return out, "s", dropped


def _build_funding(table: pa.Table, ctx: _Ctx, window):
    ns, unit = _epoch_column(table, ctx, "calc_time", window)
    _check_finite(table, ctx, ["last_funding_rate"])
    hours = _np(table.column("funding_interval_hours"))
    bad = (hours <= 0) | (hours > 24 * 7)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ctx.error("funding interval must be 1..168 hours", row=i,
                        column="funding_interval_hours", value=int(hours[i]))
    out = pa.Table.from_arrays(
        [_ts_array(ns), table.column("last_funding_rate"),
         table.column("funding_interval_hours").cast(pa.int16())],
        schema=FUNDING,
    )
    if bool((ns[1:] > ns[:-1]).all()):
        return out, unit, 0
    out, dropped = _dedupe_sort(out, ctx, [ns], ["calc_time"])
    return out, unit, dropped


def parse_zip(
    data: bytes,
    dataset: str | Dataset,
    *,
    source: str,
    day: date | str | None = None,
    month: tuple[int, int] | None = None,
    use_threads: bool = True,
    block_size: int | None = None,
) -> pa.Table:
    """Zip bytes (already verified) -> canonical table. See :func:`parse_csv`.

    A deflated member is inflated block by block while pyarrow parses it (see
    :class:`_MemberReader`); the whole CSV is only materialised when an error
    message needs line numbers. A damaged archive is reported as
    :class:`CorruptArchive` even when the damage first shows up as bad CSV.
    """
    ds = get_dataset(dataset)
    info, stored, raw = _open_member(data, source)
    if raw is None:
        return parse_csv(stored, ds, source=source, day=day, month=month,  # type: ignore[arg-type]
                         use_threads=use_threads, block_size=block_size)
    stream = _MemberReader(raw, info, source)
    try:
        head = stream.peek()
        if not head or (stream.done and head.isspace()):
            raise ParseError(source, "file has no data rows")
        ctx = _Ctx(source, None, _detect_header(head), lambda: _inflate(raw, info, source))
        return _parse(ds, ctx, head, stream, day=day, month=month, use_threads=use_threads,
                      block_size=block_size)
    except ParseError:
        if not stream.done:
            _inflate(raw, info, source)  # corruption (CRC/size/deflate) takes precedence
        raise


def split_by_day(table: pa.Table, *, column: str | None = None) -> dict[date, pa.Table]:
    """Split a (time-sorted) canonical table into UTC-day partitions {date: table}.

    Only days that have rows appear. Schema metadata is kept on every piece.
    """
    if column is None:
        column = next(n for n in ("ts", "open_time") if n in table.column_names)
    if table.num_rows == 0:
        return {}
    ns = _np(table.column(column).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()))
    days = ns // _NS_PER_DAY
    order = np.argsort(days, kind="stable")
    if not (order == np.arange(len(order))).all():
        table = table.take(pa.array(order))
        days = days[order]
    cuts = np.flatnonzero(np.diff(days)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(days)]))
    epoch = date(1970, 1, 1)
    return {
        epoch + timedelta(days=int(days[s])): table.slice(int(s), int(e - s))
        for s, e in zip(starts, ends)
    }


# =========================================================================== client


class ArchiveClient(OwnedSession):
    """Async downloader for data.binance.vision with checksum verification.

    One ``aiohttp.ClientSession`` per run: pass ``session=`` or use the client as
    an async context manager (it then owns and closes its session). At most
    ``max_concurrency`` downloads are in flight. 5xx answers, timeouts and
    connection resets are retried per ``retry``; 404 raises :class:`NotAvailableYet`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_ARCHIVE_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        max_concurrency: int = 8,
        timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        parse_threads: bool = True,
    ):
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = False
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._timeout = timeout or aiohttp.ClientTimeout(total=None, connect=30, sock_read=60)
        self._session_timeout = self._timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.parse_threads = parse_threads

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ArchiveClient has no session: use 'async with ArchiveClient(...)'")
        return self._session

    async def get_bytes(self, url: str) -> bytes:
        """GET ``url`` -> body. 404 -> NotAvailableYet; 5xx/transport errors retried."""
        last: BaseException | None = None
        for attempt in range(self.retry.max_attempts):
            if attempt:
                await self._sleep(self.retry.backoff(attempt - 1))
            try:
                async with self._semaphore:
                    async with self.session.get(url, timeout=self._timeout) as resp:
                        if resp.status == 404:
                            raise NotAvailableYet(url)
                        if resp.status >= 500:
                            body = await resp.read()
                            last = RequestFailed(f"GET {url}: HTTP {resp.status}: {snippet(body)}")
                            continue
                        if resp.status != 200:
                            body = await resp.read()
                            raise RequestFailed(f"GET {url}: HTTP {resp.status}: {snippet(body)}")
                        return await resp.read()
            except RETRYABLE_EXCEPTIONS as exc:
                last = exc
        raise RequestFailed(
            f"GET {url} failed after {self.retry.max_attempts} attempt(s): "
            f"{describe_exception(last) if last else 'unknown error'}",
            last,
        )

    async def download_verified(self, url: str) -> tuple[bytes, str]:
        """Download a zip and its ``.CHECKSUM``; return (bytes, sha256) once they agree."""
        data_r, sum_r = await asyncio.gather(
            self.get_bytes(url), self.get_bytes(url + ".CHECKSUM"), return_exceptions=True
        )
        if isinstance(data_r, BaseException):
            raise data_r
        if isinstance(sum_r, NotAvailableYet):
            raise ChecksumMissing(url, url + ".CHECKSUM")
        if isinstance(sum_r, BaseException):
            raise sum_r
        digest = verify_checksum(data_r, sum_r, url=url)
        return data_r, digest

    async def fetch(self, dataset: str | Dataset, symbol: str, when) -> pa.Table:
        ds = get_dataset(dataset)
        url = archive_url(ds, symbol, when, self.base_url)
        data, digest = await self.download_verified(url)
        kwargs: dict = {}
        if ds.period == "daily":
            kwargs["day"] = _as_date(when)
        else:
            label = period_label(ds, when)
            kwargs["month"] = (int(label[:4]), int(label[5:]))
        table = await asyncio.to_thread(
            parse_zip, data, ds, source=url, use_threads=self.parse_threads, **kwargs
        )
        meta = dict(table.schema.metadata or {})
        meta[b"binance.sha256"] = digest.encode()
        return table.replace_schema_metadata(meta)

    async def fetch_day(self, dataset: str | Dataset, symbol: str, day: date | str) -> pa.Table:
        ds = get_dataset(dataset)
        if ds.period != "daily":
            raise ValueError(f"{ds.name} is published monthly: use fetch_funding_month/fetch_month")
        return await self.fetch(ds, symbol, _as_date(day))

    async def fetch_month(self, dataset: str | Dataset, symbol: str, year: int, month: int) -> pa.Table:
        ds = get_dataset(dataset)
        if ds.period != "monthly":
            raise ValueError(f"{ds.name} is published daily: use fetch_day")
        return await self.fetch(ds, symbol, (year, month))


class _borrowed:
    """Async context giving an ArchiveClient for a client, a session or nothing."""

    def __init__(self, client_or_session, base_url: str | None):
        self.src, self.base_url, self.owned = client_or_session, base_url, None

    async def __aenter__(self) -> ArchiveClient:
        if isinstance(self.src, ArchiveClient):
            if self.base_url and self.base_url.rstrip("/") != self.src.base_url:
                raise ValueError("base_url conflicts with the ArchiveClient's base_url")
            return self.src
        if isinstance(self.src, aiohttp.ClientSession):
            return ArchiveClient(self.base_url or DEFAULT_ARCHIVE_URL, session=self.src)
        if self.src is None:
            self.owned = ArchiveClient(self.base_url or DEFAULT_ARCHIVE_URL)
            return await self.owned.__aenter__()
        raise TypeError(f"expected ArchiveClient or aiohttp.ClientSession, got {type(self.src)!r}")

    async def __aexit__(self, *exc):
        if self.owned is not None:
            await self.owned.close()


async def fetch_day(
    client_or_session: ArchiveClient | aiohttp.ClientSession | None,
    dataset: str,
    symbol: str,
    day: date | str,
    *,
    base_url: str | None = None,
) -> pa.Table:
    """Download, verify and parse one daily archive file -> canonical table."""
    validate_symbol(symbol)
    async with _borrowed(client_or_session, base_url) as client:
        return await client.fetch_day(dataset, symbol, day)


async def fetch_funding_month(
    client_or_session: ArchiveClient | aiohttp.ClientSession | None,
    symbol: str,
    year: int,
    month: int,
    *,
    base_url: str | None = None,
) -> pa.Table:
    """USD-M monthly fundingRate file -> FUNDING table for the month (see split_by_day)."""
    validate_symbol(symbol)
    async with _borrowed(client_or_session, base_url) as client:
        return await client.fetch_month("fundingRate", symbol, year, month)


# =========================================================================== sync wrappers


def fetch_day_sync(
    dataset: str, symbol: str, day: date | str, *, base_url: str = DEFAULT_ARCHIVE_URL, **client_kwargs
) -> pa.Table:
    """Blocking :func:`fetch_day` for a Dagster step (runs its own event loop)."""

    async def run():
        async with ArchiveClient(base_url, **client_kwargs) as client:
            return await client.fetch_day(dataset, symbol, day)

    return asyncio.run(run())


def fetch_days_sync(
    dataset: str,
    symbol: str,
    days: Iterable[date | str],
    *,
    base_url: str = DEFAULT_ARCHIVE_URL,
    return_exceptions: bool = False,
    **client_kwargs,
) -> dict[date, pa.Table | BaseException]:
    """Several days concurrently over one session (bounded by ``max_concurrency``).

    With ``return_exceptions=True`` a failed day maps to its exception (e.g.
    NotAvailableYet) instead of failing the whole batch.
    """
    days = [_as_date(d) for d in days]

    async def run():
        async with ArchiveClient(base_url, **client_kwargs) as client:
            results = await asyncio.gather(
                *(client.fetch_day(dataset, symbol, d) for d in days),
                return_exceptions=return_exceptions,
            )
        return dict(zip(days, results))

    return asyncio.run(run())


def fetch_funding_month_sync(
    symbol: str, year: int, month: int, *, base_url: str = DEFAULT_ARCHIVE_URL, **client_kwargs
) -> pa.Table:
    async def run():
        async with ArchiveClient(base_url, **client_kwargs) as client:
            return await client.fetch_month("fundingRate", symbol, year, month)

    return asyncio.run(run())


def fetch_funding_day_sync(
    symbol: str, day: date | str, *, base_url: str = DEFAULT_ARCHIVE_URL, **client_kwargs
) -> pa.Table:
    """The funding events of one UTC day, cut from the month's file.

    Raises NotAvailableYet while the month's file is unpublished (early next month);
    a day without events returns an empty FUNDING table.
    """
    d = _as_date(day)
    month = fetch_funding_month_sync(symbol, d.year, d.month, base_url=base_url, **client_kwargs)
    piece = split_by_day(month).get(d)
    if piece is None:
        piece = FUNDING.empty_table().replace_schema_metadata(month.schema.metadata)
    return piece


__all__ = [
    "ArchiveClient", "DATASETS", "DEFAULT_ARCHIVE_URL", "Dataset", "ParseInfo", "archive_filename",
    "archive_url", "epoch_to_utc_ns", "fetch_day", "fetch_day_sync", "fetch_days_sync",
    "fetch_funding_day_sync", "fetch_funding_month", "fetch_funding_month_sync", "get_dataset",
    "parse_checksum", "parse_csv", "parse_info", "parse_zip", "period_label", "read_zip_member",
    "split_by_day", "verify_checksum", "BinanceError",
]  # fmt: skip
