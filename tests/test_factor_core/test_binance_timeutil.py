"""factor_core.timeutil against pandas' own UTC arithmetic (an independent implementation)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest

from factor_core import timeutil as tu


@pytest.mark.parametrize("day", [date(1970, 1, 1), date(2024, 2, 29), date(2024, 12, 31), date(2025, 1, 1)])
def test_day_bounds_match_pandas_utc_midnights(day):
    start = pd.Timestamp(day, tz="UTC")
    assert tu.day_bounds_ns(day) == (start.value, (start + pd.Timedelta(days=1)).value)
    assert tu.day_bounds(day.isoformat()) == (start.to_pydatetime(), (start + pd.Timedelta(days=1)).to_pydatetime())
    assert tu.day_start_ms(day) == start.value // 10**6
    assert tu.day_of_ns(start.value + tu.NS_PER_DAY - 1) == day and tu.day_of_ns(start.value) == day


def test_month_bounds_and_days_follow_the_calendar():
    start, end = tu.month_bounds_ns(2024, 2)
    assert (start, end) == (pd.Timestamp("2024-02-01", tz="UTC").value, pd.Timestamp("2024-03-01", tz="UTC").value)
    assert len(tu.month_days(2024, 2)) == 29 and tu.month_days(2023, 12)[-1] == date(2023, 12, 31)
    with pytest.raises(ValueError, match="invalid month 13"):
        tu.month_bounds_ns(2024, 13)


def test_constants_conversions_and_iso_text():
    assert (tu.NS_PER_MINUTE, tu.NS_PER_HOUR, tu.NS_PER_DAY) == (
        pd.Timedelta(minutes=1).value, pd.Timedelta(hours=1).value, pd.Timedelta(days=1).value)
    assert tu.MS_PER_DAY * tu.NS_PER_MS == tu.NS_PER_DAY and tu.US_PER_MS * tu.NS_PER_US == tu.NS_PER_MS
    stamp = pd.Timestamp("2024-03-01T12:34:56.789012", tz="UTC")
    assert tu.iso(stamp.value) == stamp.isoformat()
    assert tu.iso(pd.Timestamp("2024-03-01", tz="UTC").value) == "2024-03-01T00:00:00+00:00"
    assert tu.to_ms(datetime(2024, 3, 1, 1, tzinfo=timezone.utc)) == pd.Timestamp("2024-03-01T01:00", tz="UTC").value // 10**6
    assert tu.to_ms(datetime(2024, 3, 1, 1)) == tu.to_ms("2024-03-01") + 3_600_000  # naive = UTC
    assert tu.as_date(datetime(2024, 3, 1, 23, 59)) == date(2024, 3, 1)
