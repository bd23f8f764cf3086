"""pyarrow's CSV reader over one archive file, and line-exact diagnosis when it refuses the file.

Only the dataset's typed columns are converted (the others are skipped by the
tokenizer). Binance archives never quote fields, so the first pass runs with
quoting off (~8% faster); a file that does quote fails it and is re-read with
quoting. When pyarrow refuses a file, :func:`diagnose` re-reads the text (error
path only) to name the first offending line, column and value.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from .datasets import Dataset
from .errors import ParseError
from .zipmember import MemberReader

log = logging.getLogger(__name__)

#: pyarrow.csv block size, also the inflate step of a streamed zip member.
#: 4 MiB measured best for 170 MB aggTrades files streamed from the zip (fewer
#: I/O-thread hand-offs; 0.5-2 MiB cost 5-15% more CPU); no difference when
#: parsing bytes already in memory. See bench/bench_parse.py.
DEFAULT_BLOCK_SIZE = 4 << 20

UNQUOTED = pacsv.ParseOptions(quote_char=False)


class ParseContext:
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


def detect_header(csv: bytes) -> bool:
    first = csv[:256].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return first.isalpha() or first == b'"'


def header_columns(ds: Dataset, csv: bytes, ctx: ParseContext) -> tuple[list[str], bool]:
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


def diagnose(ctx: ParseContext, names: Sequence[str], types: Mapping[str, pa.DataType],
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


def read_csv(ds: Dataset, ctx: ParseContext, head: bytes, stream=None, *, use_threads: bool,
              block_size: int | None) -> pa.Table:
    """Run pyarrow's CSV reader over ``stream`` (default: the whole ``ctx.csv``).

    ``head`` is the start of the file (through its first line), used for the
    header. Only the dataset's typed columns are converted; the rest are
    skipped by the tokenizer.
    """
    if ctx.header:
        names, _ = header_columns(ds, head, ctx)
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
            read_options=read_options, parse_options=UNQUOTED,
            convert_options=convert_options,
        )
    except Exception as exc:
        if isinstance(stream, MemberReader) and stream.error is not None:
            raise stream.error from exc  # the zip is corrupt: nothing to say about lines
        if not isinstance(exc, (pa.ArrowInvalid, pa.ArrowTypeError)):
            raise
        if ctx.csv.isspace():
            raise ctx.error("file has no data rows") from exc
        if b'"' not in ctx.csv:
            raise diagnose(ctx, names, ds.types, exc) from exc
        try:  # rare: quoted fields. Parse again with CSV quoting (whole file in memory).
            table = pacsv.read_csv(pa.BufferReader(ctx.csv), read_options=read_options,
                                   convert_options=convert_options)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc2:
            raise diagnose(ctx, names, ds.types, exc2) from exc2
    if isinstance(stream, MemberReader):
        stream.drain()  # normally already at the end: checks the CRC-32 and size
    if table.num_rows == 0:
        raise ctx.error("file has no data rows")
    return table


