"""Day arithmetic on ISO day strings (partition keys): shifts, spans and runs of consecutive days."""

from __future__ import annotations

import datetime as dt


def shift_day(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def day_span(first: str, last: str) -> list[str]:
    """Every ISO day from ``first`` to ``last`` inclusive."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def consecutive_runs(days: list[str], max_len: int) -> list[tuple[str, ...]]:
    """``days`` cut into runs of consecutive days of at most ``max_len`` (a gap starts a new run)."""
    runs: list[list[str]] = []
    for day in sorted(days):
        if runs and day == shift_day(runs[-1][-1], 1) and len(runs[-1]) < max_len:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [tuple(r) for r in runs]
