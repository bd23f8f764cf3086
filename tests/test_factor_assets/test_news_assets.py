"""news_items through Dagster (newswire, landing folder, feeds) and the news landing sensor."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context

from factor_assets.definitions import sentiment_resources
from factor_assets.news import news_landing_tick
from factor_core.news import NEWS_ITEMS_SCHEMA, NEWSWIRE_SOURCE
from partitions import register_symbols
from resources.market_data import SyntheticMarketData
from resources.sentiment import NewsSourcesResource
from tests.conftest import partition_metadata
from tests.fake_openai import FakeOpenAI
from tests.test_factor_assets.sentiment_runs import DAY, LANDED, SYMBOLS, failure_text, land_news, partition_file, run, stored

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Desk</title><link>https://n.test</link><description>d</description>
{items}</channel></rss>"""
RSS_ITEM = "<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate></item>"


def rss(*entries: tuple[str, str, str]) -> bytes:
    return RSS.format(items="".join(RSS_ITEM.format(title=t, link=u, date=d) for t, u, d in entries)).encode()


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        register_symbols(inst, SYMBOLS)
        yield inst


@pytest.fixture
def landing(tmp_path, monkeypatch, data_root):
    path = tmp_path / "landing"
    monkeypatch.setenv("FACTOR_LANDING_DIR", str(path))
    return path


def _resources(pipeline_resources, **market):
    market_data = SyntheticMarketData(trades_per_minute=2, **market)
    return {**pipeline_resources(market_data=market_data), **sentiment_resources("synthetic")}


def test_the_newswire_and_landing_items_of_the_day_are_stored_with_their_symbols(
        instance, landing, data_root, pipeline_resources):
    land_news(landing, [*LANDED, {"published_at": "2024-01-03T01:00:00Z", "title": "Next day's Bitcoin item"}])
    result = run(instance, _resources(pipeline_resources), ["news_items"])  # default sources: newswire + landing
    frame = stored(data_root, "news_items")
    assert pq.read_schema(partition_file(data_root, "news_items")).remove_metadata().equals(NEWS_ITEMS_SCHEMA)
    landed = frame[frame["source"] != NEWSWIRE_SOURCE].set_index("title")
    assert sorted(landed.index) == sorted(x["title"] for x in LANDED)  # the next day's item is not in this day
    assert list(landed.loc["BTC and ETH slide together", "symbols"]) == ["BTCUSDT", "ETHUSDT"]
    assert landed.loc["Ethereum upgrade delayed", "source"] == "desk"
    assert landed.loc["BTC and ETH slide together", "source"] == "landing:desk.jsonl"
    wire = frame[frame["source"] == NEWSWIRE_SOURCE]
    assert sorted({s for symbols in wire["symbols"] for s in symbols}) == SYMBOLS  # every registered symbol
    assert frame["published_at"].dt.strftime("%Y-%m-%d").eq(DAY).all()
    metadata = partition_metadata(result, "news_items")[DAY]
    assert metadata["rows"] == len(frame) and metadata["landing_items"] == 3
    assert metadata["newswire_items"] == len(wire)


def test_a_day_without_news_is_stored_empty_with_its_column_types(instance, landing, data_root, pipeline_resources,
                                                                  monkeypatch):
    monkeypatch.setenv("NEWS_SOURCES", "landing")
    resources = _resources(pipeline_resources)
    run(instance, resources, ["news_items"])
    run(instance, resources, ["llm_sentiment", "sentiment_hourly"])
    run(instance, resources, ["llm_cost"])
    assert pq.read_table(partition_file(data_root, "news_items")).num_rows == 0
    assert pq.read_schema(partition_file(data_root, "news_items")).remove_metadata().equals(NEWS_ITEMS_SCHEMA)
    for symbol in SYMBOLS:
        scores = stored(data_root, "llm_sentiment", symbol=symbol)
        assert scores["status"].tolist() == ["no_news"] and scores["score"].isna().all()
        hourly = stored(data_root, "sentiment_hourly", symbol=symbol)
        assert len(hourly) == 24 and hourly["sentiment_score"].isna().all() and hourly["sentiment_items"].eq(0).all()
    cost = stored(data_root, "llm_cost")
    assert cost["no_news_rows"].tolist() == [3] and cost["items"].tolist() == [0] and cost["cost_usd"].tolist() == [0.0]


def test_a_jsonl_line_that_is_not_json_refuses_the_file_naming_its_line_and_keeps_the_stored_day(
        instance, landing, data_root, pipeline_resources, monkeypatch):
    monkeypatch.setenv("NEWS_SOURCES", "landing")
    resources = _resources(pipeline_resources)
    path = land_news(landing, LANDED)
    run(instance, resources, ["news_items"])
    before = partition_file(data_root, "news_items").read_bytes()
    land_news(landing, [LANDED[0], '{"published_at": "2024-01-02T12:00:00Z", "title": ', LANDED[1]])
    result = run(instance, resources, ["news_items"], raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"landing news file {path}: 1 bad line(s), file refused: line 2: not JSON" in text
    assert partition_file(data_root, "news_items").read_bytes() == before

    monkeypatch.setenv("NEWS_ON_BAD_LINE", "skip")  # keep the good lines, list the bad one
    result = run(instance, {**resources, **sentiment_resources("synthetic")}, ["news_items"])
    assert sorted(stored(data_root, "news_items")["title"]) == sorted(x["title"] for x in LANDED[:2])
    metadata = partition_metadata(result, "news_items")[DAY]
    assert metadata["landing_bad_lines"] == 1 and "line 2: not JSON" in metadata["landing_bad_lines_first"][0]


@pytest.fixture
def feeds(monkeypatch):
    with FakeOpenAI() as server:
        monkeypatch.setenv("NEWS_SOURCES", "feeds")
        yield server


def _set_feed(monkeypatch, server, path, body, content_type="application/rss+xml"):
    url = server.put_file(path, body, content_type)
    monkeypatch.setenv("NEWS_FEED_URLS", url)
    return url


def test_an_empty_feed_gives_a_typed_empty_day_and_a_feed_that_is_not_xml_fails_naming_its_url(
        instance, landing, data_root, pipeline_resources, feeds, monkeypatch):
    _set_feed(monkeypatch, feeds, "/empty.xml", rss())
    result = run(instance, _resources(pipeline_resources), ["news_items"])
    assert pq.read_table(partition_file(data_root, "news_items")).num_rows == 0
    assert partition_metadata(result, "news_items")[DAY]["feed_items"] == 0
    before = partition_file(data_root, "news_items").read_bytes()
    url = _set_feed(monkeypatch, feeds, "/page", b"<html><body>Not a feed {oops</body></html>", "text/html")
    result = run(instance, _resources(pipeline_resources), ["news_items"], raise_on_error=False)
    assert not result.success and f"news feed {url}: not an RSS or Atom document" in failure_text(result)
    assert partition_file(data_root, "news_items").read_bytes() == before


def test_feed_items_the_feed_no_longer_lists_are_kept_when_the_day_is_rebuilt(
        instance, landing, data_root, pipeline_resources, feeds, monkeypatch):
    early = ("Bitcoin opens higher", "https://f.test/1", "Tue, 02 Jan 2024 08:00:00 GMT")
    late = ("Ether closes lower", "https://f.test/2", "Tue, 02 Jan 2024 22:00:00 GMT")
    _set_feed(monkeypatch, feeds, "/desk.xml", rss(early, late))
    run(instance, _resources(pipeline_resources), ["news_items"])
    newer = ("Solana next day", "https://f.test/3", "Wed, 03 Jan 2024 01:00:00 GMT")
    _set_feed(monkeypatch, feeds, "/desk.xml", rss(late, newer))  # the early entry scrolled off the feed
    result = run(instance, _resources(pipeline_resources), ["news_items"])
    frame = stored(data_root, "news_items")
    assert frame["title"].tolist() == ["Bitcoin opens higher", "Ether closes lower"]
    assert partition_metadata(result, "news_items")[DAY]["feed_items_carried"] == 1


# --------------------------------------------------------------------------- the landing sensor


def _tick(instance, landing, cursor=None, on_bad_line="error"):
    resource = NewsSourcesResource(sources=["landing"], landing_dir=str(landing), on_bad_line=on_bad_line)
    with build_sensor_context(instance=instance, cursor=cursor) as context:
        result = news_landing_tick(context, resource)
        return result, (result.cursor if isinstance(result, SensorResult) and result.cursor else context.cursor)


def _days_requested(result) -> list[tuple[str, str]]:
    if not isinstance(result, SensorResult):
        return []
    return [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in result.run_requests]


def _line(day: str, title: str) -> dict:
    return {"published_at": f"{day}T12:00:00Z", "title": title}


def _touch_later(path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_new_news_file_requests_exactly_its_days_once(instance, landing):
    land_news(landing, [_line("2024-03-01", "a"), _line("2024-03-02", "b"), _line("2024-03-05", "c")])
    result, cursor = _tick(instance, landing)
    assert _days_requested(result) == [("2024-03-01", "2024-03-02"), ("2024-03-05", "2024-03-05")]
    assert all(r.asset_selection[0].path == ["news_items"] for r in result.run_requests)
    again, cursor = _tick(instance, landing, cursor)
    assert _days_requested(again) == []  # handled


def test_a_replaced_file_requests_the_days_of_both_versions_and_a_removed_one_its_days(instance, landing):
    path = land_news(landing, [_line("2024-03-01", "a"), _line("2024-03-02", "b")])
    _, cursor = _tick(instance, landing)
    land_news(landing, [_line("2024-03-02", "b2"), _line("2024-03-07", "c")])
    _touch_later(path)
    result, cursor = _tick(instance, landing, cursor)
    # 03-01 lost its item, 03-02 changed, 03-07 is new
    assert _days_requested(result) == [("2024-03-01", "2024-03-02"), ("2024-03-07", "2024-03-07")]
    path.unlink()
    result, cursor = _tick(instance, landing, cursor)
    assert _days_requested(result) == [("2024-03-02", "2024-03-02"), ("2024-03-07", "2024-03-07")]


def test_a_refused_file_is_reported_once_blocks_requests_and_its_fix_requests_the_days(instance, landing):
    path = land_news(landing, [_line("2024-03-01", "a"), "not json at all", _line("2024-03-03", "c")])
    result, cursor = _tick(instance, landing)
    assert _days_requested(result) == []
    message = result.skip_reason.skip_message
    assert str(path) in message and "line 2: not JSON" in message and "file refused" in message
    again, cursor = _tick(instance, landing, cursor)
    assert _days_requested(again) == [] and "line 2" not in again.skip_reason.skip_message  # reported once
    assert "refused file(s)" in again.skip_reason.skip_message
    land_news(landing, [_line("2024-03-01", "a"), _line("2024-03-03", "c")])
    _touch_later(path)
    fixed, cursor = _tick(instance, landing, cursor)
    assert _days_requested(fixed) == [("2024-03-01", "2024-03-01"), ("2024-03-03", "2024-03-03")]


def test_with_skip_the_good_lines_days_are_requested_and_the_bad_line_reported(instance, landing):
    land_news(landing, [_line("2024-03-01", "a"), "{broken", _line("2010-01-01", "too early")])
    result, cursor = _tick(instance, landing, on_bad_line="skip")
    assert _days_requested(result) == [("2024-03-01", "2024-03-01")]  # 2010 is before the first partition


def test_the_sensor_runs_by_default_when_the_landing_folder_is_a_news_source():
    from factor_assets.definitions import defs
    from factor_assets.news import build_news_landing_sensor

    names = [s.name for s in defs.sensors]
    assert "news_landing_sensor" in names
    sensor = next(s for s in defs.sensors if s.name == "news_landing_sensor")
    assert sensor.default_status.value == "RUNNING"  # synthetic market source: newswire + landing by default
    assert build_news_landing_sensor(False).default_status.value == "STOPPED"


def test_a_range_run_in_worker_processes_stores_what_single_day_runs_store(
        instance, landing, data_root, pipeline_resources, feeds, monkeypatch):
    url = feeds.put_file("/desk.xml", rss(("Bitcoin on the feed", "https://f.test/1", "Wed, 17 Jan 2024 08:00:00 GMT")))
    monkeypatch.setenv("NEWS_SOURCES", "synthetic,landing,feeds")
    monkeypatch.setenv("NEWS_FEED_URLS", f"{url},http://127.0.0.1:{feeds.port}/gone.xml")
    monkeypatch.setenv("NEWS_ON_FEED_ERROR", "skip")
    land_news(landing, [_line("2024-01-01", "Bitcoin first"), _line("2024-01-09", "Ethereum ninth")])
    days = [f"2024-01-{d:02d}" for d in range(1, 18)]  # 17 days: two chunks, run by the worker pool
    result = run(instance, _resources(pipeline_resources), ["news_items"], days=days)
    assert partition_metadata(result, "news_items")["2024-01-17"]["feed_errors"] == 1
    ranged = {d: pq.read_table(partition_file(data_root, "news_items", d)) for d in days}
    for day in ("2024-01-01", "2024-01-09", "2024-01-17"):
        run(instance, _resources(pipeline_resources), ["news_items"], days=[day])
        assert pq.read_table(partition_file(data_root, "news_items", day)).equals(ranged[day])
    assert "Bitcoin on the feed" in ranged["2024-01-17"].column("title").to_pylist()
    assert "Ethereum ninth" in ranged["2024-01-09"].column("title").to_pylist()
