"""Canonical Parquet files ``<dataset>/<SYMBOL>/<YYYY-MM-DD>.parquet`` in the raw schemas.

The file must carry every column of the dataset's schema (``factor_core.schemas``)
with the same type, or one that widens to it without loss (int8/16/32 -> int64,
float32 -> float64, a UTC timestamp of another unit -> ns). Integer or naive
timestamps are refused: their unit and zone would be a guess. Extra columns are
ignored (named in provenance). Every row must lie inside the file's UTC day.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from factor_core.schemas import FUNDING, BOOK, KLINES, QUOTES, TRADES, conform
from factor_core.timeutil import day_bounds_ns, iso

from .names import LandingFileError
from .scan import LandedFile

SCHEMAS = {"klines": KLINES, "trades": TRADES, "book": BOOK, "funding": FUNDING, "quotes": QUOTES}
_FIX = "rewrite it in the raw schema (see docs/landing.md) or remove it"


def _widens(found: pa.DataType, expected: pa.DataType) -> bool:
    if found.equals(expected):
        return True
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(found) and found.tz in ("UTC", "utc", "+00:00", "Etc/UTC")
    if pa.types.is_integer(expected):
        return pa.types.is_integer(found) and found.bit_width <= expected.bit_width
    if pa.types.is_floating(expected):
        return pa.types.is_floating(found) and found.bit_width <= expected.bit_width
    if pa.types.is_string(expected):
        return pa.types.is_string(found) or pa.types.is_large_string(found) or pa.types.is_dictionary(found)
    return False


def read_parquet_file(file: LandedFile, day: date) -> tuple[pa.Table, dict[str, str]]:
    source = file.relative_path
    try:
        table = pq.read_table(file.path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LandingFileError(source, f"not a readable Parquet file ({exc}); {_FIX}") from exc
    schema = SCHEMAS[file.dataset]
    for expected in schema:
        if expected.name not in table.column_names:
            raise LandingFileError(source, f"column {expected.name!r} is missing (raw {file.dataset} schema: "
                                           f"{schema.names}; found {table.column_names}); {_FIX}")
        found = table.schema.field(expected.name).type
        if not _widens(found, expected.type):
            raise LandingFileError(source, f"column {expected.name!r}: expected {expected.type}, found {found}; "
                                           f"{_FIX}")
    extra = [c for c in table.column_names if c not in schema.names]
    out = conform(table, schema, what=source)
    time_column = schema.names[0]  # ts / open_time
    ns = out.column(time_column).cast(pa.int64()).to_numpy(zero_copy_only=False)
    start, end = day_bounds_ns(day)
    outside = np.flatnonzero((ns < start) | (ns >= end))
    if len(outside):
        row = int(outside[0])
        raise LandingFileError(source, f"row {row} has {time_column} {iso(int(ns[row]))}, outside the file's "
                                       f"UTC day {day}; move it to the right day's file")
    if len(ns) > 1 and not bool((ns[1:] >= ns[:-1]).all()):
        out = out.take(pa.array(np.argsort(ns, kind="stable")))
    provenance = {"format": "parquet", "checksum_verified": "n/a", "time_unit": "ns"}
    if extra:
        provenance["ignored_columns"] = ",".join(extra)
    return out, provenance
