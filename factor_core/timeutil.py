"""Time constants and UTC helpers: the one place the pipeline converts between units and days.

Every timestamp in the raw layer is nanoseconds since the Unix epoch, UTC
(``schemas.TS``); exchanges speak milliseconds (Binance before 2025 and all
futures files), microseconds (Binance spot from 2025-01-01, Tardis.dev) or
seconds. A UTC day ``D`` is the half-open interval ``[D 00:00, D+1 00:00)``.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR

US_PER_MS = 1_000
MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE
MS_PER_DAY = 24 * MS_PER_HOUR
SECONDS_PER_DAY = 86_400

#: Nanoseconds per unit, for the epoch units exchange files use.
NS_PER_UNIT = {"s": NS_PER_SECOND, "ms": NS_PER_MS, "us": NS_PER_US, "ns": 1}

_EPOCH_DAY = date(1970, 1, 1)


def as_date(value: date | datetime | str) -> date:
    """A ``date`` from a date, a datetime (its date) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def day_bounds(day: date | str) -> tuple[datetime, datetime]:
    """``(start, end)`` of the UTC day as aware datetimes; ``end`` is the next midnight (exclusive)."""
    start = datetime.combine(as_date(day), time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def day_start_ns(day: date | str) -> int:
    """UTC midnight starting ``day``, in ns since the epoch."""
    return (as_date(day) - _EPOCH_DAY).days * NS_PER_DAY


def day_bounds_ns(day: date | str) -> tuple[int, int]:
    """``[start, end)`` of the UTC day in ns since the epoch."""
    start = day_start_ns(day)
    return start, start + NS_PER_DAY


def day_start_ms(day: date | str) -> int:
    """UTC midnight starting ``day``, in ms since the epoch (what Binance's REST API takes)."""
    return day_start_ns(day) // NS_PER_MS


def month_bounds_ns(year: int, month: int) -> tuple[int, int]:
    """``[first midnight, next month's first midnight)`` of a UTC calendar month, in ns."""
    if not 1 <= month <= 12:
        raise ValueError(f"invalid month {month} (expected 1..12)")
    start = day_start_ns(date(year, month, 1))
    return start, start + calendar.monthrange(year, month)[1] * NS_PER_DAY


def month_days(year: int, month: int) -> tuple[date, ...]:
    """Every UTC day of a calendar month."""
    first = date(year, month, 1)
    return tuple(first + timedelta(days=i) for i in range(calendar.monthrange(year, month)[1]))


def day_of_ns(ns: int) -> date:
    """The UTC day containing the instant ``ns`` (ns since the epoch)."""
    return _EPOCH_DAY + timedelta(days=int(ns) // NS_PER_DAY)


def to_ms(value: date | str | datetime) -> int:
    """Epoch milliseconds of a datetime (naive = UTC) or of a day's UTC midnight."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(aware.timestamp() * MS_PER_SECOND)
    return day_start_ms(value)


def iso(ns: int) -> str:
    """ISO-8601 UTC text of an instant in ns (``2024-01-01T00:00:00+00:00``; fractions when present)."""
    seconds, rest = divmod(int(ns), NS_PER_SECOND)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    if rest:
        stamp = stamp.replace(microsecond=rest // NS_PER_US)
    return stamp.isoformat()


def iso_s(epoch_s: float) -> str:
    """ISO-8601 UTC text, to the second, of an instant in (float) epoch seconds."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="seconds")
