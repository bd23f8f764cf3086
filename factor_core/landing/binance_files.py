"""Landed files in Binance's own archive format, read with the archive parser.

Zipped or not, with or without header row, ms or µs timestamps, exactly as
``factor_core.binance.parse`` reads downloads. A zip with a sibling
``<name>.zip.CHECKSUM`` is verified against it first. Monthly files (klines,
fundingRate) are parsed once per (file, size, mtime) and cut into days.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

import pyarrow as pa

from factor_core.binance.checksum import verify_checksum
from factor_core.binance.errors import BinanceError
from factor_core.binance.parse import parse_csv, parse_info, parse_zip, split_by_day
from factor_core.binance.zipmember import MemberReader, open_member
from factor_core.schemas import FUNDING

from .names import LandingFileError
from .scan import LandedFile

#: Landed dataset -> archive dataset of factor_core.binance (trades: spot 8 / futures 7 columns).
_ARCHIVE = {"klines": "klines", "book": "bookDepth", "quotes": "bookTicker", "funding": "fundingRate"}
_FIX = "fix or replace the file; stored partitions stay as they are until it reads cleanly"


def _trades_dataset(first_line: bytes) -> str:
    """Spot aggTrades have 8 columns, USD-M futures aggTrades 7 (no is_best_match)."""
    return "um_aggTrades" if first_line.count(b",") + 1 == 7 else "aggTrades"


def _first_line(file: LandedFile) -> bytes:
    if file.format == "binance-csv":
        with open(file.path, "rb") as handle:
            return handle.read(4096).split(b"\n", 1)[0]
    info, stored, raw = open_member(file.path.read_bytes(), file.relative_path)
    if stored is not None:
        return stored.split(b"\n", 1)[0]
    return MemberReader(raw, info, file.relative_path).peek(4096).split(b"\n", 1)[0]


@functools.lru_cache(maxsize=4)
def _parse_cached(path: str, size: int, mtime_ns: int, fmt: str, dataset: str, relative: str,
                  period_key: tuple) -> pa.Table:
    """Parse once per file version: a monthly file serves every day of its month."""
    data = Path(path).read_bytes()
    bounds = {"day": period_key[1]} if period_key[0] == "day" else {"month": period_key[1]}
    parse = parse_zip if fmt == "binance-zip" else parse_csv
    return parse(data, dataset, source=relative, use_threads=False, **bounds)


def _checksum(file: LandedFile) -> dict[str, str]:
    """Verify a zip against a sibling ``.CHECKSUM`` when there is one (every read, before parsing)."""
    companion = file.path.with_name(file.path.name + ".CHECKSUM")
    if file.format != "binance-zip" or not companion.is_file():
        return {"checksum_verified": "false"}
    digest = verify_checksum(file.path.read_bytes(), companion.read_bytes(), url=str(file.path))
    return {"checksum_verified": "true", "sha256": digest}


def read_binance_file(file: LandedFile, day: date) -> tuple[pa.Table, dict[str, str]]:
    """The canonical table of ``day`` from one Binance-format landed file, and its provenance."""
    try:
        if file.dataset == "trades":
            dataset = _trades_dataset(_first_line(file))
        else:
            dataset = _ARCHIVE[file.dataset]
        checks = _checksum(file)
        period_key = ("month", (day.year, day.month)) if file.period == "monthly" else ("day", day)
        table = _parse_cached(str(file.path), file.size, file.mtime_ns, file.format, dataset,
                                      file.relative_path, period_key)
    except (BinanceError, OSError) as exc:
        raise LandingFileError(file.relative_path, f"{exc}; {_FIX}") from exc
    info = parse_info(table)
    if file.period == "monthly":
        piece = split_by_day(table).get(day)
        if piece is None:
            if file.dataset != "funding":
                raise LandingFileError(file.relative_path, f"the monthly file has no rows for {day}; "
                                                           "land a daily file for that day or a complete month")
            piece = FUNDING.empty_table()
        table = piece
    provenance = {
        "format": file.format,
        "archive_dataset": dataset,
        "time_unit": info.get("time_unit", ""),
        "header": info.get("header", ""),
        "duplicates_dropped": info.get("duplicates_dropped", "0"),
        **checks,
    }
    return table.replace_schema_metadata(None), provenance
