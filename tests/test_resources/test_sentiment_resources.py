"""Configuration of the sentiment layer: every value validated when the code location loads, errors naming the variable."""

from __future__ import annotations

import pytest
from dagster import EnvVar

from factor_assets.definitions import sentiment_resources


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, data_root):
    for name in ("OPENAI_API_KEY", "NEWS_SOURCES", "NEWS_FEED_URLS", "NEWS_ALIASES", "SENTIMENT_PRICES",
                 "OPENAI_BASE_URL", "SENTIMENT_OFFLINE_SCORER", "SENTIMENT_MAX_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWS_SOURCES", "landing,rss", r"NEWS_SOURCES='landing,rss': unknown source\(s\) \['rss'\]"),
        ("NEWS_SOURCES", "feeds", "NEWS_SOURCES includes feeds but NEWS_FEED_URLS is empty"),
        ("NEWS_ALIASES", "BTCUSDT", "NEWS_ALIASES: alias table entry 'BTCUSDT' lacks '='"),
        ("SENTIMENT_PRICES", "{oops", "SENTIMENT_PRICES: price table is not valid JSON"),
        ("OPENAI_BASE_URL", "api.example.com/v1", "OPENAI_BASE_URL='api.example.com/v1' is not an http"),
        ("SENTIMENT_OFFLINE_SCORER", "textblob", "SENTIMENT_OFFLINE_SCORER='textblob'"),
        ("SENTIMENT_MAX_CONCURRENCY", "0", "SENTIMENT_MAX_CONCURRENCY=0: must be at least 1"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        sentiment_resources("synthetic")


def test_without_a_key_the_offline_scorer_is_configured_and_with_one_the_key_is_an_envvar(monkeypatch):
    offline = sentiment_resources("synthetic")["sentiment_scorer"]
    assert not offline.uses_llm and offline.api_key == ""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-resource-test-1")
    llm = sentiment_resources("synthetic")["sentiment_scorer"]
    assert llm.uses_llm and isinstance(llm.api_key, EnvVar) and llm.api_key.env_var_name == "OPENAI_API_KEY"
    assert "sk-resource-test-1" not in repr(llm)


def test_the_default_news_sources_follow_the_market_source():
    assert sentiment_resources("synthetic")["news_sources"].sources == ["synthetic", "landing"]
    assert sentiment_resources("binance")["news_sources"].sources == ["landing"]  # no synthetic news about real prices


def test_the_alias_table_does_not_depend_on_the_partitions_of_a_run(monkeypatch):
    monkeypatch.setenv("NEWS_ALIASES", "PEPEUSDT=Pepe|Frog coin")
    news = sentiment_resources("synthetic")["news_sources"]
    table = news.alias_table(["PEPEUSDT", "BTCUSDT"])
    assert table.match("Frog coin and Bitcoin Cash rally") == ["BCHUSDT", "PEPEUSDT"]  # BCH known though unregistered
    assert table == news.alias_table(["BTCUSDT", "PEPEUSDT"])
