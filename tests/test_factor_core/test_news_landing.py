"""Landing-folder news: good lines, a bad line refuses its file (with the line number), or is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factor_core.news import AliasTable, LandingNewsError, build_news_items, read_landing_news
from factor_core.news.items import NEWS_ITEM_COLUMNS, to_arrow
from tests.test_factor_core.news_helpers import DAY

ALIASES = AliasTable.for_symbols(["BTCUSDT", "ETHUSDT"])


def line(**fields) -> str:
    base = {"published_at": "2024-01-02T10:00:00Z", "source": "desk", "title": "Bitcoin climbs", "text": "", "url": None}
    return json.dumps({**base, **fields})


def write(landing: Path, name: str, lines: list[str]) -> Path:
    (landing / "news").mkdir(parents=True, exist_ok=True)
    path = landing / "news" / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_items_are_read_matched_and_kept_to_the_day(tmp_path):
    write(tmp_path, "a.jsonl", [
        line(title="Ethereum fees fall", url="https://n.test/1"),
        line(published_at="2024-01-02T23:59:59+00:00", title="Late Bitcoin note"),
        line(published_at="2024-01-03T00:00:00Z", title="Next day Bitcoin"),  # next partition
        line(published_at="2024-01-02T08:00:00-05:00", title="Offset time, ETH"),  # 13:00 UTC
        line(title="Explicit", symbols=["SOLUSDT"]),
        "",  # blank lines are skipped
    ])
    result = build_news_items(DAY, ALIASES, landing_dir=tmp_path)
    frame = result.frame
    assert list(frame.columns) == list(NEWS_ITEM_COLUMNS)
    assert sorted(frame["title"]) == ["Ethereum fees fall", "Explicit", "Late Bitcoin note", "Offset time, ETH"]
    by_title = frame.set_index("title")
    assert by_title.loc["Offset time, ETH", "published_at"].hour == 13
    assert by_title.loc["Explicit", "symbols"] == ["SOLUSDT"]  # given symbols are taken as they are
    assert by_title.loc["Ethereum fees fall", "symbols"] == ["ETHUSDT"]
    assert by_title.loc["Late Bitcoin note", "source"] == "desk"
    assert result.metadata["landing_files"] == 1 and result.metadata["items"] == 4
    assert to_arrow(frame).num_rows == 4


def test_a_line_that_is_not_json_refuses_the_file_naming_file_and_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", [line(), "{not json", line(), line(title="")])
    with pytest.raises(LandingNewsError) as info:
        read_landing_news(tmp_path, DAY)
    message = str(info.value)
    assert str(path) in message and "line 2: not JSON" in message and "line 4: field 'title'" in message
    assert "file refused" in message and "on_bad_line='skip'" in message
    assert [b.line for b in info.value.bad_lines] == [2, 4]


def test_skip_mode_keeps_the_good_lines_and_reports_the_bad_ones(tmp_path):
    write(tmp_path, "bad.jsonl", [line(title="one"), "[1, 2]", line(title="two")])
    result = build_news_items(DAY, ALIASES, landing_dir=tmp_path, on_bad_line="skip")
    assert sorted(result.frame["title"]) == ["one", "two"]
    assert result.metadata["landing_bad_lines"] == 1
    assert "line 2: a line must be a JSON object" in result.metadata["landing_bad_lines_first"][0]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"published_at": "2024-01-02T10:00:00"}, "has no UTC offset"),
        ({"published_at": "yesterday"}, "not an ISO 8601 time"),
        ({"published_at": 1704189600}, "must be an ISO 8601 string"),
        ({"title": 5}, "field 'title'"),
        ({"text": ["a"]}, "field 'text' must be a string"),
        ({"symbols": "BTCUSDT"}, "field 'symbols' must be a list"),
        ({"symbols": ["btc"]}, "invalid symbol 'btc'"),
    ],
)
def test_each_bad_field_is_named_with_its_value(tmp_path, fields, problem):
    write(tmp_path, "f.jsonl", [line(**fields)])
    with pytest.raises(LandingNewsError, match=problem):
        read_landing_news(tmp_path, DAY)


def test_an_item_of_one_megabyte_is_kept_whole(tmp_path):
    big = "x" * (1024 * 1024)
    write(tmp_path, "big.jsonl", [line(title="Bitcoin long read", text=big)])
    frame = build_news_items(DAY, ALIASES, landing_dir=tmp_path).frame
    assert frame["text"].iloc[0] == big


def test_a_line_over_the_size_limit_is_refused_unread(tmp_path):
    write(tmp_path, "huge.jsonl", [line(title="ok"), line(text="y" * 5000)])
    with pytest.raises(LandingNewsError, match="line 2: line longer than 1000 bytes"):
        read_landing_news(tmp_path, DAY, max_line_bytes=1000)


def test_no_news_folder_is_no_news(tmp_path):
    assert read_landing_news(tmp_path, DAY).records == []
    assert build_news_items(DAY, ALIASES, landing_dir=tmp_path).frame.empty


def test_the_same_url_or_the_same_urlless_text_is_one_item_the_earliest(tmp_path):
    write(tmp_path, "a.jsonl", [
        line(published_at="2024-01-02T12:00:00Z", title="Bitcoin story", url="https://n.test/s"),
        line(published_at="2024-01-02T09:00:00Z", title="Bitcoin story (updated)", url="https://n.test/s"),
        line(published_at="2024-01-02T11:00:00Z", title="Plain  text", url=None),
        line(published_at="2024-01-02T10:00:00Z", title="plain text", url=None),
        line(published_at="2024-01-02T10:00:00Z", title="Bitcoin story", url="https://other.test/copy"),
    ])
    result = build_news_items(DAY, ALIASES, landing_dir=tmp_path)
    frame = result.frame
    assert result.metadata["duplicates_dropped"] == 2
    assert frame.set_index("url").loc["https://n.test/s", "published_at"].hour == 9
    urlless = frame[frame["url"].isna()]
    assert len(urlless) == 1 and urlless["published_at"].iloc[0].hour == 10
    assert "https://other.test/copy" in set(frame["url"])  # another URL is another item
