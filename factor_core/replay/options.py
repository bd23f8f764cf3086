"""Replay options, as tardis-machine's ``/replay-normalized`` takes them, parsed and checked.

``options`` is a URL-encoded JSON object (or an array of objects, merged into
one synchronized stream) with tardis-machine's fields:

* ``symbols``: exchange symbols (``["BTCUSDT", "ETHUSDT"]``; upper-cased);
* ``from`` / ``to``: ISO 8601 UTC (``2024-01-02``, ``2024-01-02T00:00:00.000Z``); the
  replay covers ``[from, to)``; a time without an offset is UTC;
* ``dataTypes``: ``trade``, ``book_snapshot_<levels>_<interval><ms|s|m>`` and
  ``quote`` / ``quote_<interval><ms|s|m>`` (a one-level book snapshot, as in tardis-machine);
* ``exchange`` (optional here): must be the exchange this server replays;
* beyond tardis-machine, ``speed``: 1 = real time, 10 = ten times faster;
  absent or null = as fast as the client reads.

tardis-machine options that do not apply to stored partitions
(``withDisconnectMessages``, ``waitWhenDataNotYetAvailable``, ...) are accepted
and ignored; any other key is refused, so a misspelt option is never silently
dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from factor_core.replay.errors import ReplayOptionsError
from factor_core.schemas import SYMBOL_PATTERN
from factor_core.timeutil import NS_PER_SECOND, NS_PER_US, SECONDS_PER_DAY, day_of_ns

TRADE = "trade"
BOOK_SNAPSHOT = "book_snapshot"
_BOOK_TYPE = re.compile(r"^book_snapshot_(\d+)_(\d+)(ms|s|m)$")
_QUOTE_TYPE = re.compile(r"^quote(?:_(\d+)(ms|s|m))?$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000}
MAX_BOOK_LEVELS = 1000
#: tardis-machine options that have no meaning for stored partitions.
IGNORED_KEYS = frozenset({"withDisconnectMessages", "waitWhenDataNotYetAvailable", "autoCleanup", "withErrorMessages"})
KNOWN_KEYS = frozenset({"exchange", "symbols", "from", "to", "dataTypes", "speed"}) | IGNORED_KEYS
SUPPORTED_TYPES = "trade, book_snapshot_<levels>_<interval><ms|s|m> (e.g. book_snapshot_10_0ms), quote, quote_<interval><ms|s|m>"


@dataclass(frozen=True, order=True)
class DataType:
    """One requested data type. Trades sort before book snapshots (the tie rule of the merge)."""

    rank: int  # 0 = trade, 1 = book snapshot
    name: str  # as requested: "trade", "book_snapshot_10_100ms", "quote"
    depth: int = 0  # levels per side of a book snapshot
    interval_ms: int = 0  # 0 = every stored snapshot

    @property
    def is_book(self) -> bool:
        return self.rank == 1

    @property
    def asset(self) -> str:
        return "raw_book" if self.is_book else "raw_trades"


def parse_data_type(name: object) -> DataType:
    if not isinstance(name, str):
        raise ReplayOptionsError(f"options.dataTypes: {name!r} is not a string; supported: {SUPPORTED_TYPES}")
    if name == TRADE:
        return DataType(0, name)
    book, quote = _BOOK_TYPE.fullmatch(name), _QUOTE_TYPE.fullmatch(name)
    if book:
        depth, interval = int(book.group(1)), int(book.group(2)) * _UNIT_MS[book.group(3)]
    elif quote:
        depth, interval = 1, int(quote.group(1) or 0) * _UNIT_MS[quote.group(2) or "ms"]
    else:
        raise ReplayOptionsError(f"options.dataTypes: unknown data type {name!r}; supported: {SUPPORTED_TYPES}")
    if not 1 <= depth <= MAX_BOOK_LEVELS:
        raise ReplayOptionsError(f"options.dataTypes: {name!r} asks for {depth} levels; use 1 to {MAX_BOOK_LEVELS}")
    return DataType(1, name, depth, interval)


def parse_time(value: object, field: str) -> int:
    """ISO 8601 (date, or date and time, optional offset; naive = UTC) -> nanoseconds since the epoch."""
    if not isinstance(value, str) or not value.strip():
        raise ReplayOptionsError(f"options.{field} is required: an ISO 8601 UTC time such as 2024-01-02T00:00:00Z")
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ReplayOptionsError(
            f"options.{field} {value!r} is not an ISO 8601 time; use e.g. 2024-01-02 or 2024-01-02T13:30:00.000Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    delta = parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * SECONDS_PER_DAY + delta.seconds) * NS_PER_SECOND + delta.microseconds * NS_PER_US


def format_time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // NS_PER_SECOND, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{(ns % NS_PER_SECOND) // NS_PER_US:06d}Z"
    )


@dataclass(frozen=True)
class ReplayRequest:
    """A checked replay: symbols (sorted, unique), ``[start_ns, end_ns)``, data types (sorted), pacing."""

    symbols: tuple[str, ...]
    start_ns: int
    end_ns: int
    data_types: tuple[DataType, ...]
    speed: float | None = None  # None = as fast as the client reads
    exchange: str | None = None

    @property
    def days(self) -> list[str]:
        """Every UTC day the range touches (the day of ``end_ns`` only if the range reaches into it)."""
        first = day_of_ns(self.start_ns)
        last = day_of_ns(self.end_ns - 1)
        return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    def describe(self) -> str:
        types = ",".join(t.name for t in self.data_types)
        pace = "max" if self.speed is None else f"{self.speed:g}x"
        return f"{','.join(self.symbols)} {types} {format_time(self.start_ns)}..{format_time(self.end_ns)} speed={pace}"


def _symbols(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ReplayOptionsError('options.symbols is required: a non-empty list such as ["BTCUSDT", "ETHUSDT"]')
    symbols = []
    for item in value:
        symbol = item.strip().upper() if isinstance(item, str) else item
        if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
            raise ReplayOptionsError(
                f"options.symbols: invalid symbol {item!r}; symbols match {SYMBOL_PATTERN.pattern} (e.g. BTCUSDT)"
            )
        symbols.append(symbol)
    return symbols


def _speed(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ReplayOptionsError(
            f"options.speed {value!r} is invalid: it must be a number > 0 (1 = real time, 10 = ten times faster); "
            "leave it out to replay as fast as the client reads"
        )
    return float(value)


def _one(options: Mapping) -> ReplayRequest:
    unknown = sorted(set(options) - KNOWN_KEYS)
    if unknown:
        raise ReplayOptionsError(f"options: unknown key(s) {unknown}; known: {sorted(KNOWN_KEYS - IGNORED_KEYS)}")
    exchange = options.get("exchange")
    if exchange is not None and not isinstance(exchange, str):
        raise ReplayOptionsError(f"options.exchange {exchange!r} is not a string")
    start, end = parse_time(options.get("from"), "from"), parse_time(options.get("to"), "to")
    if start >= end:
        raise ReplayOptionsError(
            f"options.from ({options['from']}) must be before options.to ({options['to']}); the replay covers [from, to)"
        )
    types = options.get("dataTypes")
    if not isinstance(types, list) or not types:
        raise ReplayOptionsError(f"options.dataTypes is required: a non-empty list; supported: {SUPPORTED_TYPES}")
    return ReplayRequest(
        symbols=tuple(sorted(set(_symbols(options.get("symbols"))))),
        start_ns=start,
        end_ns=end,
        data_types=tuple(sorted({parse_data_type(t) for t in types})),
        speed=_speed(options.get("speed")),
        exchange=exchange,
    )


def parse_options(raw: str | None) -> ReplayRequest:
    """The ``options`` query parameter (already URL-decoded) -> a checked :class:`ReplayRequest`."""
    if raw is None or not raw.strip():
        raise ReplayOptionsError(
            "missing options: pass ?options=<URL-encoded JSON>, e.g. "
            '{"symbols":["BTCUSDT"],"from":"2024-01-02","to":"2024-01-03","dataTypes":["trade"]}'
        )
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ReplayOptionsError(f"options is not valid JSON ({exc.msg} at character {exc.pos}): {raw[:200]!r}") from None
    items = decoded if isinstance(decoded, list) else [decoded]
    if not items or not all(isinstance(item, dict) for item in items):
        raise ReplayOptionsError("options must be a JSON object (or a non-empty array of objects)")
    requests = [_one(item) for item in items]
    first = requests[0]
    for other in requests[1:]:
        if (other.start_ns, other.end_ns, other.speed, other.exchange) != (first.start_ns, first.end_ns, first.speed, first.exchange):
            raise ReplayOptionsError("options array: every element must have the same exchange, from, to and speed")
    pairs = {(s, t) for r in requests for s in r.symbols for t in r.data_types}
    if len(requests) > 1 and len(pairs) != len({s for s, _ in pairs}) * len({t for _, t in pairs}):
        raise ReplayOptionsError("options array: each element must request the same data types for its symbols")
    return ReplayRequest(
        symbols=tuple(sorted({s for s, _ in pairs})),
        start_ns=first.start_ns,
        end_ns=first.end_ns,
        data_types=tuple(sorted({t for _, t in pairs})),
        speed=first.speed,
        exchange=first.exchange,
    )
