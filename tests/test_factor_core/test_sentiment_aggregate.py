"""As-of hourly sentiment: only items published strictly before t, decayed; no news is NaN, not 0."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from factor_core.sentiment import hourly_asof_sentiment, hourly_asof_sentiment_by_symbol, required_lookback_days
from factor_core.sentiment.score import sentiment_frame

DAY = dt.date(2024, 1, 2)
START = pd.Timestamp("2024-01-02", tz="UTC")


def scored_rows(published, scores, confidences=None, status=None) -> pd.DataFrame:
    n = len(published)
    confidences = confidences if confidences is not None else [None] * n
    status = status or ["scored"] * n
    return sentiment_frame([
        {"status": st, "published_at": p, "item_id": f"i{k}", "score": s, "confidence": c, "topics": "[]",
         "model": "m", "prompt_version": "v", "anonymised": True, "prompt_tokens": 0, "completion_tokens": 0,
         "cost_usd": 0.0, "cache_hit": False}
        for k, (p, s, c, st) in enumerate(zip(published, scores, confidences, status))
    ])


def reference(published, scores, weights, t, half_life_min, lookback_h):
    """Plain-Python decayed mean over items with t - lookback <= p < t."""
    num = den = 0.0
    count = 0
    for p, s, w in zip(published, scores, weights):
        age = (t - p).total_seconds() / 60.0
        if 0 < age <= lookback_h * 60:
            weight = w * 0.5 ** (age / half_life_min)
            num += weight * s
            den += weight
            count += 1
    return (num / den if count else math.nan), den, count


def random_items(rng, n, start, end):
    seconds = np.sort(rng.uniform(0, (end - start).total_seconds(), n))
    return [(start + pd.Timedelta(seconds=float(x))).floor("s") for x in seconds], rng.uniform(-1, 1, n).round(3).tolist()


@pytest.mark.parametrize("confidence_weighted", [False, True])
def test_matches_a_plain_python_decayed_mean(confidence_weighted):
    rng = np.random.default_rng(5)
    published, scores = random_items(rng, 80, START - pd.Timedelta(days=1), START + pd.Timedelta(days=1))
    confidences = rng.uniform(0, 1, 80).round(3).tolist()
    hourly = hourly_asof_sentiment(scored_rows(published, scores, confidences), DAY, half_life_minutes=90,
                                   lookback_hours=12, confidence_weighted=confidence_weighted)
    weights = confidences if confidence_weighted else [1.0] * 80
    for row in hourly.itertuples():
        mean, den, count = reference(published, scores, weights, row.close_time, 90, 12)
        assert row.sentiment_items == count
        assert row.sentiment_weight == pytest.approx(den, rel=1e-12, abs=1e-15)
        if count:
            assert row.sentiment == pytest.approx(mean, rel=1e-10, abs=1e-12)
        else:
            assert math.isnan(row.sentiment)


def test_rows_follow_the_factor_calendar_stamped_at_bar_close():
    hourly = hourly_asof_sentiment(scored_rows([], []), DAY)
    assert list(hourly["ts"]) == list(pd.date_range(START, periods=24, freq="1h"))
    assert (hourly["close_time"] - hourly["ts"] == pd.Timedelta(hours=1)).all()


def test_adding_items_after_t_changes_nothing_stamped_at_or_before_t():
    rng = np.random.default_rng(11)
    published, scores = random_items(rng, 60, START - pd.Timedelta(hours=20), START + pd.Timedelta(days=1))
    base = hourly_asof_sentiment(scored_rows(published, scores), DAY)
    for cut_hour in (3, 11, 17):
        t = START + pd.Timedelta(hours=cut_hour)
        # items at t itself and later, some extreme, some far in the future
        extra_p = [t, t + pd.Timedelta(seconds=1), t + pd.Timedelta(minutes=30), t + pd.Timedelta(hours=6)]
        perturbed = hourly_asof_sentiment(
            scored_rows(published + extra_p, scores + [1.0, -1.0, 1.0, 1.0]), DAY)
        known = base["close_time"] <= t
        pd.testing.assert_frame_equal(base[known], perturbed[known])
        assert not base[~known].equals(perturbed[~known])  # the perturbation is real


def test_an_item_published_exactly_at_t_is_not_known_at_t():
    t = START + pd.Timedelta(hours=5)
    hourly = hourly_asof_sentiment(scored_rows([t], [0.8]), DAY).set_index("close_time")
    assert hourly.loc[t, "sentiment_items"] == 0 and math.isnan(hourly.loc[t, "sentiment"])
    assert hourly.loc[t + pd.Timedelta(hours=1), "sentiment"] == pytest.approx(0.8)


def test_no_news_is_nan_with_zero_items_not_an_invented_zero():
    no_news = sentiment_frame([{"status": "no_news", "model": "m", "prompt_version": "v", "anonymised": True,
                                "topics": "[]", "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
                                "cache_hit": False}])
    hourly = hourly_asof_sentiment(no_news, DAY)
    assert hourly["sentiment"].isna().all() and (hourly["sentiment_items"] == 0).all()
    assert hourly["last_news_at"].isna().all()


def test_rejected_answers_contribute_nothing():
    p = [START + pd.Timedelta(minutes=10), START + pd.Timedelta(minutes=20)]
    rows = scored_rows(p, [0.4, None], status=["scored", "rejected"])
    hourly = hourly_asof_sentiment(rows, DAY)
    assert hourly["sentiment"].iloc[0] == pytest.approx(0.4) and hourly["sentiment_items"].iloc[0] == 1


def test_items_older_than_the_lookback_drop_out():
    p = START - pd.Timedelta(hours=1)
    hourly = hourly_asof_sentiment(scored_rows([p], [0.5]), DAY, lookback_hours=6)
    assert hourly.set_index("close_time")["sentiment_items"].loc[START + pd.Timedelta(hours=5)] == 1
    assert hourly.set_index("close_time")["sentiment_items"].loc[START + pd.Timedelta(hours=6)] == 0


@pytest.mark.parametrize(("lookback_hours", "days"), [(1, 0), (24, 1), (25, 1), (26, 2), (72, 3)])
def test_required_lookback_days_covers_the_first_rows_window(lookback_hours, days):
    assert required_lookback_days(lookback_hours) == days
    first_window_start = START + pd.Timedelta(hours=1) - pd.Timedelta(hours=lookback_hours)
    assert (START - first_window_start) <= pd.Timedelta(days=days)


def test_by_symbol_keeps_symbols_apart():
    a = scored_rows([START + pd.Timedelta(minutes=5)], [0.9]).assign(symbol="BTCUSDT")
    b = scored_rows([START + pd.Timedelta(minutes=5)], [-0.9]).assign(symbol="ETHUSDT")
    out = hourly_asof_sentiment_by_symbol(pd.concat([a, b]), DAY)
    first = out[out["close_time"] == START + pd.Timedelta(hours=1)].set_index("symbol")["sentiment"]
    assert first["BTCUSDT"] == pytest.approx(0.9) and first["ETHUSDT"] == pytest.approx(-0.9)
