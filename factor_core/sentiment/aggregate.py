"""As-of hourly sentiment: at each hour t, a value built only from items published strictly before t.

The hourly calendar is the factor layer's: a bar is labelled by its open
``ts`` and its values become known at ``close_time = ts + 1h``
(:mod:`factor_core.factors`). The sentiment on the row of bar ``ts`` is
stamped at ``t = close_time`` and uses the scored items with

    t - lookback_hours <= published_at < t

as an exponentially decayed mean (half-life ``half_life_minutes``, measured
from publication; optionally weighted by the answer's confidence):

    sentiment(t) = sum_i w_i s_i / sum_i w_i,   w_i = c_i * 0.5 ** ((t - p_i) / half_life)

with ``c_i`` = confidence (1 when not weighting or when the scorer has none).
``sentiment_weight`` = ``sum_i w_i`` says how fresh and plentiful the news
behind the value is (a lone 20-hour-old item gives a value with a tiny
weight). With no scored item in the window the value is NaN, with
``sentiment_items = 0``: "no news", never an invented 0. Rejected answers
and ``no_news`` rows contribute nothing.

Partitions needed: the 24 rows of day D (close times D 01:00 .. D+1 00:00)
read items published from ``D 01:00 - lookback_hours`` to the end of D, i.e.
the ``llm_sentiment`` partitions of days ``D - required_lookback_days(..)``
.. D of the symbol; never D + 1.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa

from factor_core.timeutil import NS_PER_MINUTE

HOURLY_COLUMNS = ("ts", "close_time", "sentiment", "sentiment_weight", "sentiment_items", "last_news_at")

#: Stored schema of a ``sentiment_hourly`` partition (day x symbol; ``date`` / ``symbol`` live in the path):
#: what the cross-section joins on ``(ts, symbol)``. ``sentiment_score`` is null where no item was in the window.
SENTIMENT_HOURLY_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ns", tz="UTC")),  # bar open
        ("close_time", pa.timestamp("ns", tz="UTC")),  # ts + 1h: the value is known here
        ("sentiment_score", pa.float64()),
        ("sentiment_items", pa.int64()),
    ]
)
SENTIMENT_HOURLY_COLUMNS: tuple[str, ...] = tuple(SENTIMENT_HOURLY_SCHEMA.names)


def required_lookback_days(lookback_hours: float) -> int:
    """Previous days of ``llm_sentiment`` the hourly rows of a day need (besides the day itself)."""
    if not lookback_hours > 0:
        raise ValueError(f"lookback_hours must be > 0, got {lookback_hours!r}")
    # The first row of day D is stamped D 01:00; its window starts at D 01:00 - lookback.
    return max(0, math.ceil((lookback_hours - 1.0) / 24.0))


def asof_decayed_mean(
    published_ns: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    at_ns: np.ndarray,
    *,
    half_life_minutes: float,
    lookback_minutes: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At each time in ``at_ns``: decayed mean, weight sum, item count, last publication (ns, or -1).

    Uses only items with ``at - lookback <= published < at`` (strict: an item
    published at ``at`` is not yet known at ``at``).
    """
    if not half_life_minutes > 0:
        raise ValueError(f"half_life_minutes must be > 0, got {half_life_minutes!r}")
    p = np.asarray(published_ns, dtype=np.int64)[None, :]
    t = np.asarray(at_ns, dtype=np.int64)[:, None]
    age_min = (t - p) / NS_PER_MINUTE
    inside = (age_min > 0) & (age_min <= lookback_minutes)
    decay = np.where(inside, np.exp2(-np.where(inside, age_min, 0.0) / half_life_minutes), 0.0)
    w = decay * np.asarray(weights, dtype=np.float64)[None, :]
    w_sum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * np.asarray(scores, dtype=np.float64)[None, :]).sum(axis=1) / w_sum
    count = inside.sum(axis=1)
    mean = np.where(count > 0, mean, np.nan)
    last = np.where(inside, p, -1).max(axis=1, initial=-1)
    return mean, w_sum, count, last


def hourly_asof_sentiment(
    scored: pd.DataFrame,
    day: dt.date,
    *,
    half_life_minutes: float = 120.0,
    lookback_hours: float = 24.0,
    confidence_weighted: bool = False,
) -> pd.DataFrame:
    """The 24 hourly rows of ``day`` for one symbol, from its ``llm_sentiment`` rows of days
    ``day - required_lookback_days(lookback_hours)`` .. ``day`` (more rows are fine: anything
    published at or after a row's ``close_time`` is ignored by construction)."""
    usable = scored[(scored["status"] == "scored") & scored["score"].notna() & scored["published_at"].notna()]
    published = pd.to_datetime(usable["published_at"], utc=True).astype("datetime64[ns, UTC]")
    weights = np.ones(len(usable))
    if confidence_weighted:
        weights = usable["confidence"].astype("float64").fillna(1.0).to_numpy()
    start = pd.Timestamp(day.isoformat(), tz="UTC")
    ts = pd.date_range(start, periods=24, freq="1h").as_unit("ns")
    close_time = ts + pd.Timedelta(hours=1)
    mean, w_sum, count, last = asof_decayed_mean(
        published.to_numpy(dtype="datetime64[ns]").view(np.int64),
        usable["score"].astype("float64").to_numpy(),
        weights,
        close_time.asi8,
        half_life_minutes=half_life_minutes,
        lookback_minutes=lookback_hours * 60.0,
    )
    # int64 min is NaT's sentinel: hours with no item in the window have no last publication.
    last_at = pd.DatetimeIndex(np.where(last >= 0, last, np.iinfo(np.int64).min).view("datetime64[ns]")).tz_localize("UTC")
    return pd.DataFrame(
        {
            "ts": ts,
            "close_time": close_time,
            "sentiment": mean,
            "sentiment_weight": w_sum,
            "sentiment_items": count.astype(np.int64),
            "last_news_at": last_at,
        }
    )


def sentiment_hourly_table(hourly: pd.DataFrame) -> pa.Table:
    """:func:`hourly_asof_sentiment` rows as a table of ``SENTIMENT_HOURLY_SCHEMA`` (``sentiment`` ->
    ``sentiment_score``, NaN -> null), the stored form of a ``sentiment_hourly`` partition."""
    frame = hourly.rename(columns={"sentiment": "sentiment_score"})[list(SENTIMENT_HOURLY_COLUMNS)]
    return pa.Table.from_pandas(frame, schema=SENTIMENT_HOURLY_SCHEMA, preserve_index=False)


def hourly_asof_sentiment_by_symbol(scored: pd.DataFrame, day: dt.date, **options) -> pd.DataFrame:
    """:func:`hourly_asof_sentiment` for every ``symbol`` of a multi-symbol frame (a ``symbol`` column)."""
    frames = [
        hourly_asof_sentiment(group, day, **options).assign(symbol=symbol)
        for symbol, group in scored.groupby("symbol", sort=True)
    ]
    if not frames:
        return pd.DataFrame(columns=[*HOURLY_COLUMNS, "symbol"])
    return pd.concat(frames, ignore_index=True)
