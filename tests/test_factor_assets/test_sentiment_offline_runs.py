"""The sentiment layer through Dagster without an API key: offline scores, the hourly as-of join, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from factor_assets.definitions import sentiment_resources
from factor_core.news import NEWSWIRE_SOURCE, SyntheticNewswire
from factor_core.simulator import SimulatorConfig
from partitions import register_symbols
from resources.market_data import SyntheticMarketData
from tests.conftest import partition_metadata
from tests.test_factor_assets.sentiment_runs import LANDED, land_news, run, stored

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
D0, D1, D2 = "2024-01-01", "2024-01-02", "2024-01-03"
MARKET = dict(seed=7, signal_ic=0.2, trades_per_minute=2)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        register_symbols(inst, SYMBOLS)
        yield inst


@pytest.fixture
def landing(tmp_path, monkeypatch, data_root):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = tmp_path / "landing"
    monkeypatch.setenv("FACTOR_LANDING_DIR", str(path))
    return path


@pytest.fixture
def resources(landing, pipeline_resources):
    return {**pipeline_resources(market_data=SyntheticMarketData(**MARKET)), **sentiment_resources("synthetic")}


def _score(instance, resources, days, assets=("llm_sentiment", "sentiment_hourly")):
    run(instance, resources, ["news_items"], days=days)
    return run(instance, resources, list(assets), days=days, symbols=SYMBOLS)


def test_without_a_key_newswire_items_carry_the_wires_tone_and_others_vader_each_labelled(
        instance, resources, landing, data_root):
    assert not resources["sentiment_scorer"].uses_llm
    land_news(landing, LANDED)
    result = _score(instance, resources, [D1], assets=("llm_sentiment",))
    news = stored(data_root, "news_items", D1).set_index("item_id")
    wire = SyntheticNewswire([], SimulatorConfig(**MARKET))
    vader = SentimentIntensityAnalyzer()
    for symbol in SYMBOLS:
        frame = stored(data_root, "llm_sentiment", D1, symbol).join(news[["source", "url", "title", "text"]], on="item_id")
        from_wire = frame["source"] == NEWSWIRE_SOURCE
        assert from_wire.sum() > 10 and (~from_wire).sum() == 2
        assert (frame.loc[from_wire, "model"] == "synthetic:newswire").all()
        assert frame.loc[from_wire, "score"].tolist() == [wire.tone(u) for u in frame.loc[from_wire, "url"]]
        landed = frame[~from_wire]
        assert (landed["model"] == "lexicon:vader").all() and landed["confidence"].isna().all()
        expected = [vader.polarity_scores(f"{t}. {x}" if x else t)["compound"] for t, x in zip(landed["title"], landed["text"])]
        assert landed["score"].tolist() == pytest.approx(expected, abs=1e-12)
        assert (frame["cost_usd"] == 0).all() and (frame["prompt_tokens"] == 0).all()
    metadata = partition_metadata(result, "llm_sentiment")[f"{D1}|BTCUSDT"]
    assert metadata["calls_made"] == 0 and metadata["model"] == "lexicon:vader, synthetic:newswire"
    assert not (data_root / "llm_cache").exists()  # free scores are not cached


def _expected_hourly(scores: pd.DataFrame, day: str, half_life_min: float = 120.0, lookback_h: float = 24.0):
    """The as-of decayed mean, written out hour by hour (the reference the stored rows must match)."""
    usable = scores[(scores["status"] == "scored") & scores["score"].notna()]
    published = pd.to_datetime(usable["published_at"], utc=True)
    rows = []
    for hour in range(24):
        t = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=hour + 1)
        age_min = (t - published).dt.total_seconds() / 60.0
        inside = (age_min > 0) & (age_min <= lookback_h * 60)
        weights = 0.5 ** (age_min[inside] / half_life_min)
        value = float((weights * usable.loc[inside, "score"]).sum() / weights.sum()) if inside.any() else np.nan
        rows.append((t, value, int(inside.sum())))
    return rows


def test_sentiment_hourly_is_the_decayed_mean_of_items_published_before_each_close_including_the_previous_day(
        instance, resources, data_root, monkeypatch):
    monkeypatch.setattr("factor_assets.sentiment.SCORE_DAYS_PER_BATCH", 1)  # the range is scored in two batches
    _score(instance, resources, [D0, D1])
    for symbol in SYMBOLS:
        scores = pd.concat([stored(data_root, "llm_sentiment", d, symbol) for d in (D0, D1)], ignore_index=True)
        hourly = stored(data_root, "sentiment_hourly", D1, symbol)
        assert list(hourly.columns) == ["ts", "close_time", "sentiment_score", "sentiment_items"]
        assert (hourly["close_time"] - hourly["ts"]).eq(pd.Timedelta(hours=1)).all()
        expected = _expected_hourly(scores, D1)
        assert hourly["close_time"].tolist() == [t for t, _, _ in expected]
        assert hourly["sentiment_items"].tolist() == [n for _, _, n in expected]
        np.testing.assert_allclose(hourly["sentiment_score"].to_numpy(float), [v for _, v, _ in expected], rtol=1e-12)
        # the first hours of D1 see the evening of D0: the look-back is a partition mapping, not a gap
        first_close = hourly["close_time"].iloc[0]
        day0 = stored(data_root, "llm_sentiment", D0, symbol)
        assert hourly["sentiment_items"].iloc[0] > ((day0["published_at"] < first_close) & (day0["status"] == "scored")
                                                   & (day0["published_at"] >= pd.Timestamp(D1, tz="UTC"))).sum()


def test_news_published_at_or_after_t_changes_nothing_stamped_at_or_before_t(instance, resources, landing, data_root):
    land_news(landing, [{"published_at": f"{D1}T03:00:00Z", "title": "Bitcoin steady", "url": "https://n.test/0"}])
    _score(instance, resources, [D1, D2])
    before = {(d, s): stored(data_root, "sentiment_hourly", d, s) for d in (D1, D2) for s in SYMBOLS}
    t = pd.Timestamp(f"{D1}T10:00:00Z")
    land_news(landing, [
        {"published_at": f"{D1}T03:00:00Z", "title": "Bitcoin steady", "url": "https://n.test/0"},
        {"published_at": t.isoformat(), "title": "Bitcoin soars on excellent, wonderful news", "url": "https://n.test/1"},
        {"published_at": f"{D2}T00:30:00Z", "title": "Bitcoin crashes in a terrible panic", "url": "https://n.test/2"},
    ])
    _score(instance, resources, [D1, D2])
    after = {(d, s): stored(data_root, "sentiment_hourly", d, s) for d in (D1, D2) for s in SYMBOLS}
    old, new = before[(D1, "BTCUSDT")], after[(D1, "BTCUSDT")]
    known = old["close_time"] <= t
    pd.testing.assert_frame_equal(new[known], old[known])  # stamped at or before t: identical
    assert (new.loc[~known, "sentiment_items"] == old.loc[~known, "sentiment_items"] + 1).all()
    assert new.loc[~known, "sentiment_score"].iloc[0] > old.loc[~known, "sentiment_score"].iloc[0]
    pd.testing.assert_frame_equal(after[(D1, "ETHUSDT")], before[(D1, "ETHUSDT")])  # not about ETH
    # D2 sees its own 00:30 item from the 01:00 close on, and t's item until it is 24 h old
    old2, new2 = before[(D2, "BTCUSDT")], after[(D2, "BTCUSDT")]
    delta = 1 + (new2["close_time"] <= t + pd.Timedelta(hours=24)).astype(int)
    assert (new2["sentiment_items"] - old2["sentiment_items"]).tolist() == delta.tolist()


def test_llm_cost_without_a_key_counts_each_offline_model_and_costs_nothing(instance, resources, landing, data_root):
    land_news(landing, LANDED)
    _score(instance, resources, [D1], assets=("llm_sentiment",))
    run(instance, resources, ["llm_cost"], days=[D1])
    cost = stored(data_root, "llm_cost", D1).set_index("model")
    rows = pd.concat([stored(data_root, "llm_sentiment", D1, s) for s in SYMBOLS], ignore_index=True)
    counts = rows["model"].value_counts()
    assert sorted(cost.index) == ["lexicon:vader", "synthetic:newswire"]
    for model in cost.index:
        assert cost.loc[model, "items"] == counts[model] and cost.loc[model, "cost_usd"] == 0.0
    assert cost.loc["lexicon:vader", "prompt_version"].startswith("vaderSentiment-")
