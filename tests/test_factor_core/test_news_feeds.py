"""RSS / Atom feeds over HTTP (a local server), parsed with feedparser."""

from __future__ import annotations

import asyncio

import pytest

from factor_core.news import AliasTable, FeedError, build_news_items, parse_feed, read_feeds
from tests.fake_openai import FakeOpenAI
from tests.test_factor_core.news_helpers import DAY

ALIASES = AliasTable.for_symbols(["BTCUSDT", "ETHUSDT"])

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Desk</title><link>https://n.test</link><description>d</description>
<item><title>Bitcoin &amp; Ether rally</title><link>https://n.test/a</link>
  <description>&lt;p&gt;Strong &lt;b&gt;flows&lt;/b&gt; into BTC.&lt;/p&gt;</description>
  <pubDate>Tue, 02 Jan 2024 10:15:00 GMT</pubDate></item>
<item><title>Undated ETH note</title><link>https://n.test/b</link></item>
<item><title>Old Bitcoin story</title><link>https://n.test/c</link><pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
<item><title>Offset time</title><link>https://n.test/d</link><pubDate>Tue, 02 Jan 2024 08:00:00 -0500</pubDate></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom desk</title><id>urn:x</id><updated>2024-01-02T12:00:00Z</updated>
<entry><title>XBT breaks out</title><link href="https://a.test/1"/><id>urn:1</id>
  <updated>2024-01-02T12:00:00Z</updated><summary>Momentum builds.</summary></entry>
</feed>"""

EMPTY = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title><link>https://q.test</link>
<description>nothing</description></channel></rss>"""


@pytest.fixture
def server():
    with FakeOpenAI() as srv:
        yield srv


def test_rss_and_atom_items_of_the_day_are_read_with_times_links_and_plain_text(server):
    urls = [server.put_file("/rss.xml", RSS), server.put_file("/atom.xml", ATOM, "application/atom+xml")]
    result = build_news_items(DAY, ALIASES, feed_urls=urls)
    by_title = result.frame.set_index("title")
    assert sorted(by_title.index) == ["Bitcoin & Ether rally", "Offset time", "XBT breaks out"]
    rally = by_title.loc["Bitcoin & Ether rally"]
    assert str(rally["published_at"]) == "2024-01-02 10:15:00+00:00"
    assert rally["text"] == "Strong flows into BTC." and rally["url"] == "https://n.test/a"
    assert rally["symbols"] == ["BTCUSDT", "ETHUSDT"] and rally["source"] == urls[0]
    assert by_title.loc["Offset time", "published_at"].hour == 13
    assert by_title.loc["XBT breaks out", "symbols"] == ["BTCUSDT"]
    assert result.metadata["feed_undated_dropped"] == 1  # undated entries cannot be placed in time


def test_an_empty_feed_is_zero_items_not_an_error(server):
    result = build_news_items(DAY, ALIASES, feed_urls=[server.put_file("/empty.xml", EMPTY)])
    assert result.frame.empty and result.metadata["feed_items"] == 0


def test_a_feed_that_is_not_xml_fails_naming_the_url(server):
    url = server.put_file("/page", b"<html><body>Not a feed {oops</body></html>", "text/html")
    with pytest.raises(FeedError, match=r"news feed http://127.0.0.1:\d+/page: not an RSS or Atom document"):
        build_news_items(DAY, ALIASES, feed_urls=[url])
    with pytest.raises(FeedError, match="not an RSS or Atom document"):
        parse_feed(b"\x00\x01 binary garbage", "file://x")


def test_skip_mode_keeps_the_good_feeds_and_reports_the_bad(server):
    good = server.put_file("/rss.xml", RSS)
    missing = f"http://127.0.0.1:{server.port}/missing.xml"
    result = build_news_items(DAY, ALIASES, feed_urls=[good, missing], on_feed_error="skip")
    assert len(result.frame) == 2 and result.metadata["feed_errors"] == 1
    assert "missing.xml: HTTP 404" in result.metadata["feed_errors_first"][0]


def test_a_server_error_is_retried_then_reported(server):
    url = server.put_file("/down.xml", b"oops", "text/plain", status=503)
    with pytest.raises(FeedError, match=r"HTTP 503 after 2 attempt\(s\)"):
        asyncio.run(read_feeds([url], DAY, attempts=2, backoff_s=0.01))


def test_a_body_over_the_limit_is_refused(server):
    url = server.put_file("/big.xml", RSS)
    with pytest.raises(FeedError, match="larger than 100 bytes"):
        asyncio.run(read_feeds([url], DAY, max_bytes=100))
