"""Landing-folder news: ``<landing>/news/*.jsonl``, one JSON object per line.

Each line::

    {"published_at": "2024-01-02T13:45:00Z", "source": "my-desk", "title": "...",
     "text": "...", "url": "https://...", "symbols": ["BTCUSDT"]}

``published_at`` (ISO 8601 *with* a UTC offset or ``Z``: a naive time is
ambiguous) and a non-empty ``title`` are required; ``text``, ``url``,
``source`` (default ``landing:<file name>``) and ``symbols`` are optional.
When ``symbols`` is given it is taken as is (each must be a valid symbol);
when absent the alias table finds them. Other keys are ignored; blank lines
are skipped.

Bad lines: by default (``on_bad_line="error"``) a file with any bad line is
refused as a whole, with every bad line's number and problem in the error,
and nothing is returned for that day. A half-read file would give a
partition that silently differs from the user's data (and sentiment, IC and
backtests built on it); refusing it makes the user fix the line and
re-materialize. ``on_bad_line="skip"`` keeps the good lines and reports the
bad ones (file + line + problem) in :attr:`LandingRead.bad_lines`, for the
asset's metadata.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from factor_core.news.errors import BadLine, LandingNewsError, shorten
from factor_core.news.items import day_bounds
from factor_core.schemas import InvalidSymbolError, validate_symbol

NEWS_SUBDIR = "news"
#: A line longer than this is refused unread (a runaway file must not exhaust memory).
DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
_STRING_FIELDS = ("source", "text", "url")


@dataclass
class LandingRead:
    """Items of the landing folder (dicts for :func:`factor_core.news.items.items_frame`)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)


def _parse_time(value: object) -> pd.Timestamp:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field 'published_at' must be an ISO 8601 string, got {shorten(value)}")
    try:
        ts = pd.Timestamp(value.strip())
    except (ValueError, TypeError):
        raise ValueError(f"field 'published_at' value {shorten(value)} is not an ISO 8601 time") from None
    if ts is pd.NaT:
        raise ValueError(f"field 'published_at' value {shorten(value)} is not an ISO 8601 time")
    if ts.tzinfo is None:
        raise ValueError(
            f"field 'published_at' value {shorten(value)} has no UTC offset; write it as e.g. 2024-01-02T13:45:00Z"
        )
    return ts.tz_convert("UTC")


def parse_line(raw: bytes, default_source: str) -> dict[str, Any]:
    """One landing line as a record; ``ValueError`` naming the field and value otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno}): {shorten(text.strip(), 80)}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a line must be a JSON object, got {type(obj).__name__}")
    record: dict[str, Any] = {"published_at": _parse_time(obj.get("published_at"))}
    title = obj.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"field 'title' must be a non-empty string, got {shorten(title)}")
    record["title"] = title.strip()
    for name in _STRING_FIELDS:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"field {name!r} must be a string, got {shorten(value)}")
        record[name] = value
    record["source"] = record["source"] or default_source
    symbols = obj.get("symbols")
    if symbols is not None:
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ValueError(f"field 'symbols' must be a list of strings, got {shorten(symbols)}")
        for symbol in symbols:
            try:
                validate_symbol(symbol)
            except InvalidSymbolError:
                raise ValueError(f"field 'symbols' has invalid symbol {shorten(symbol)} (e.g. BTCUSDT)") from None
    record["symbols"] = symbols
    return record


def read_file(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> tuple[list[dict], list[BadLine]]:
    """Every line of one file: good records and bad lines (nothing raised for bad lines)."""
    records, bad = [], []
    default_source = f"landing:{path.name}"
    with open(path, "rb") as handle:
        for number, raw in enumerate(_lines(handle, max_line_bytes), start=1):
            if raw is None:
                bad.append(BadLine(str(path), number, f"line longer than {max_line_bytes} bytes"))
                continue
            if not raw.strip():
                continue
            try:
                records.append(parse_line(raw, default_source))
            except ValueError as exc:
                bad.append(BadLine(str(path), number, str(exc)))
    return records, bad


def _lines(handle, max_line_bytes: int):
    """Lines as bytes; None for a line over the limit (skipped without holding it in memory)."""
    while True:
        raw = handle.readline(max_line_bytes + 1)
        if not raw:
            return
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield raw


def read_landing_news(
    landing_dir: str | Path,
    day: dt.date | None = None,
    *,
    on_bad_line: Literal["error", "skip"] = "error",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> LandingRead:
    """Items of ``<landing_dir>/news/*.jsonl`` (files in name order), published inside ``day`` if given.

    A missing ``news`` folder is no news, not an error. See the module docstring
    for the bad-line policy.
    """
    if on_bad_line not in ("error", "skip"):
        raise ValueError(f"on_bad_line must be 'error' or 'skip', got {on_bad_line!r}")
    folder = Path(landing_dir) / NEWS_SUBDIR
    result = LandingRead()
    if not folder.is_dir():
        return result
    bounds = day_bounds(day) if day is not None else None
    for path in sorted(folder.glob("*.jsonl")):
        records, bad = read_file(path, max_line_bytes=max_line_bytes)
        if bad and on_bad_line == "error":
            raise LandingNewsError(str(path), bad)
        result.bad_lines.extend(bad)
        result.files.append(str(path))
        if bounds is not None:
            records = [r for r in records if bounds[0] <= r["published_at"] < bounds[1]]
        result.records.extend(records)
    return result
