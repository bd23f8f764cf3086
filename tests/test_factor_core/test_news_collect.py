"""Assembling a news_items day from sources read once for a whole range, and keeping feed items across re-builds."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa

from factor_core.news import AliasTable, assemble_news_items, build_news_items, carry_feed_items, items_frame
from factor_core.news.feeds import FeedsRead
from factor_core.news.items import NEWS_ITEMS_SCHEMA
from factor_core.news.landing import read_landing_news
from factor_core.schemas import STORED_COLUMNS
from factor_core.sentiment import LLM_COST_SCHEMA, SENTIMENT_HOURLY_SCHEMA, SENTIMENT_SCHEMA, cost_to_arrow
from factor_core.sentiment import daily_cost_summary, hourly_asof_sentiment, sentiment_hourly_table

ALIASES = AliasTable.for_symbols(["BTCUSDT", "ETHUSDT"])
DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]


def _landing(tmp_path):
    (tmp_path / "news").mkdir()
    lines = [
        {"published_at": "2024-01-02T09:00:00Z", "title": "Bitcoin rises", "url": "https://n.test/1"},
        {"published_at": "2024-01-02T23:59:59Z", "title": "Ether late note"},
        {"published_at": "2024-01-03T00:00:00Z", "title": "BTC at midnight", "url": "https://n.test/3"},
        {"published_at": "2024-01-03T05:00:00+02:00", "title": "Ethereum in another time zone"},
    ]
    (tmp_path / "news" / "a.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return tmp_path


def test_a_day_assembled_from_the_folder_read_once_equals_the_day_read_alone(tmp_path):
    landing = _landing(tmp_path)
    everything = read_landing_news(landing)  # all days, as a range run reads it
    for day in DAYS:
        alone = build_news_items(day, ALIASES, landing_dir=landing)
        assembled = assemble_news_items(day, ALIASES, landing=everything)
        pd.testing.assert_frame_equal(assembled.frame, alone.frame)
        assert assembled.metadata == alone.metadata
    assert assemble_news_items(DAYS[1], ALIASES, landing=everything).frame["title"].tolist() == [
        "BTC at midnight", "Ethereum in another time zone"]  # 05:00+02:00 is 03:00 UTC


def _feed_row(title, url, hour, source="https://f.test/rss"):
    return {"published_at": pd.Timestamp("2024-01-02", tz="UTC") + pd.Timedelta(hours=hour), "source": source,
            "title": title, "text": "", "url": url, "symbols": None}


def test_feed_items_no_longer_listed_are_carried_and_the_fresh_copy_of_an_item_wins():
    previous = assemble_news_items(DAYS[0], ALIASES, feeds=FeedsRead([
        _feed_row("Bitcoin opens", "https://f.test/1", 1), _feed_row("Ether old title", "https://f.test/2", 2),
    ])).frame
    previous = pd.concat([previous, items_frame([{**_feed_row("Landed item", None, 3, source="landing:a.jsonl"),
                                                  "symbols": ["BTCUSDT"]}])], ignore_index=True)
    fresh = assemble_news_items(DAYS[0], ALIASES, feeds=FeedsRead([_feed_row("Ether new title", "https://f.test/2", 2)]))
    merged = carry_feed_items(fresh, previous, ["https://f.test/rss"])
    assert merged.frame["title"].tolist() == ["Bitcoin opens", "Ether new title"]  # the landed item is not carried
    assert merged.metadata["feed_items_carried"] == 1 and merged.metadata["items"] == 2
    assert merged.metadata["items_per_symbol"] == {"BTCUSDT": 1, "ETHUSDT": 1}
    assert carry_feed_items(fresh, None, ["https://f.test/rss"]) is fresh


def test_stored_schemas_keep_their_types_on_an_empty_day_and_match_what_readers_expect():
    empty_hourly = sentiment_hourly_table(hourly_asof_sentiment(
        pd.DataFrame({"status": pd.Series(dtype=str), "score": pd.Series(dtype=float),
                      "published_at": pd.Series(dtype="datetime64[ns, UTC]")}), DAYS[0]))
    assert empty_hourly.schema.remove_metadata().equals(SENTIMENT_HOURLY_SCHEMA) and empty_hourly.num_rows == 24
    assert empty_hourly.column("sentiment_score").null_count == 24  # no news: null, not 0
    assert cost_to_arrow(daily_cost_summary(pd.DataFrame())).schema.remove_metadata().equals(LLM_COST_SCHEMA)
    for asset, schema in (("news_items", NEWS_ITEMS_SCHEMA), ("llm_sentiment", SENTIMENT_SCHEMA),
                          ("sentiment_hourly", SENTIMENT_HOURLY_SCHEMA)):
        for name, expected in STORED_COLUMNS[asset].items():
            assert schema.field(name).type.equals(expected), (asset, name)
    assert isinstance(NEWS_ITEMS_SCHEMA.field("symbols").type, pa.ListType)
