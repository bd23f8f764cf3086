"""Scorer selection and the offline scorers: no key means VADER, labelled so nobody takes it for an LLM."""

from __future__ import annotations

import pandas as pd
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from factor_core.news.aliases import AliasTable
from factor_core.sentiment import OpenAIScorer, VaderScorer, score_symbol_day, select_scorer
from tests.test_factor_core.news_helpers import DAY, news

ALIASES = AliasTable.for_symbols(["BTCUSDT"])


@pytest.mark.parametrize("api_key", [None, ""])
def test_without_a_key_items_are_scored_by_vader_and_labelled_lexicon(api_key):
    scorer = select_scorer(api_key=api_key, model="gpt-4o-mini", aliases=ALIASES)
    assert isinstance(scorer, VaderScorer)
    frame = news(("Bitcoin soars on excellent news", "https://x.test/1", ["BTCUSDT"]),
                 ("Bitcoin crashes, terrible losses", "https://x.test/2", ["BTCUSDT"]), text="Traders react.")
    out = score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=scorer)
    analyzer = SentimentIntensityAnalyzer()
    expected = [analyzer.polarity_scores(f"{t}. Traders react.")["compound"] for t in frame["title"]]
    assert out.frame["score"].tolist() == expected
    assert expected[0] > 0 > expected[1]
    assert set(out.frame["model"]) == {"lexicon:vader"}
    assert out.frame["confidence"].isna().all()  # VADER has no confidence: null, not invented
    assert out.metadata["calls_made"] == 0 and out.frame["cost_usd"].sum() == 0


def test_with_a_key_the_llm_scorer_is_chosen():
    scorer = select_scorer(api_key="sk-x", model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1", aliases=ALIASES)
    assert isinstance(scorer, OpenAIScorer) and scorer.model == "gpt-4o-mini"


def test_a_key_without_a_model_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="SENTIMENT_MODEL"):
        select_scorer(api_key="sk-x", model=None, aliases=ALIASES)


def test_the_newswire_scorer_needs_its_newswire():
    with pytest.raises(ValueError, match="SyntheticNewswire"):
        select_scorer(api_key=None, model=None, aliases=ALIASES, offline="synthetic:newswire")


def test_a_symbol_day_without_news_is_one_explicit_no_news_row():
    frame = news(("Ethereum only", "https://x.test/e", ["ETHUSDT"]))
    out = score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=VaderScorer())
    assert out.frame["status"].tolist() == ["no_news"]
    assert pd.isna(out.frame["score"].iloc[0]) and pd.isna(out.frame["published_at"].iloc[0])
    assert out.metadata["no_news"] is True and out.metadata["items"] == 0


def test_items_outside_the_partitions_day_are_refused_naming_the_partition():
    frame = news(("Bitcoin tomorrow", "https://x.test/t", ["BTCUSDT"]), day=DAY.replace(day=3))
    with pytest.raises(ValueError, match=r"llm_sentiment 2024-01-02\|BTCUSDT: news item .* outside the day"):
        score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=VaderScorer())


def test_the_auto_offline_scorer_gives_newswire_items_their_tone_and_other_items_vader_each_labelled():
    import datetime as dt

    from factor_core.news import SyntheticNewswire, items_frame
    from factor_core.sentiment import OfflineScorer
    from factor_core.simulator import SimulatorConfig

    wire = SyntheticNewswire(["BTCUSDT"], SimulatorConfig(seed=3, signal_ic=0.2))
    day = dt.date(2024, 1, 2)
    records = wire.records(day)[:3] + [
        {"published_at": pd.Timestamp("2024-01-02T12:00:00Z"), "source": "desk", "title": "Bitcoin soars, excellent",
         "text": "", "url": "https://x.test/1", "symbols": ["BTCUSDT"]}]
    scorer = select_scorer(api_key=None, model=None, aliases=ALIASES, offline="auto", newswire=wire)
    assert isinstance(scorer, OfflineScorer)
    frame = items_frame(records)
    out = score_symbol_day(frame, day=day, symbol="BTCUSDT", scorer=scorer).frame
    by_url = out.merge(frame[["item_id", "url"]], on="item_id", validate="one_to_one")
    from_wire = by_url["url"].str.startswith("synthetic://")
    assert by_url.loc[from_wire, "score"].tolist() == [wire.tone(u) for u in by_url.loc[from_wire, "url"]]
    assert set(by_url.loc[from_wire, "model"]) == {"synthetic:newswire"}
    assert set(by_url.loc[from_wire, "prompt_version"]) == {"newswire-tone-v1"}
    other = by_url[~from_wire]
    assert other["model"].tolist() == ["lexicon:vader"]
    assert other["score"].tolist() == [SentimentIntensityAnalyzer().polarity_scores("Bitcoin soars, excellent")["compound"]]
    empty = score_symbol_day(items_frame([]), day=day, symbol="BTCUSDT", scorer=scorer).frame
    assert empty["status"].tolist() == ["no_news"] and empty["model"].tolist() == ["lexicon:vader"]


def test_the_auto_offline_scorer_without_a_newswire_scores_everything_with_vader():
    from factor_core.sentiment import OfflineScorer

    scorer = OfflineScorer(None)
    frame = news(("synthetic looking", "synthetic://newswire/2024-01-02/BTCUSDT/outlook/03", ["BTCUSDT"]))
    out = score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=scorer).frame
    assert out["model"].tolist() == ["lexicon:vader"]
