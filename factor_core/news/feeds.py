"""RSS / Atom news feeds: fetched with aiohttp, parsed with feedparser.

A feed lists only its latest entries, so it can fill today's (and maybe
yesterday's) partition, not a backfill of old days; history comes from the
landing folder. Entries without a publication time cannot be placed in time
and are dropped (counted): stamping them with the fetch time would date old
news as new.

A URL that answers an HTTP error, a body that is not an RSS / Atom document,
or a body over ``max_bytes`` is a :class:`FeedError` naming the URL; by
default (``on_feed_error="error"``) it fails the read. ``"skip"`` keeps the
other feeds and reports the failures. An empty but valid feed is zero items.
5xx answers, timeouts and connection errors are retried with exponential
backoff (tenacity), then reported.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

import aiohttp
import feedparser
import pandas as pd
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from factor_core.news.errors import FeedError
from factor_core.news.items import day_bounds

DEFAULT_MAX_FEED_BYTES = 10 * 1024 * 1024


class _Retryable(Exception):
    """A transient fetch failure (5xx, timeout, connection); retried, then turned into FeedError."""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(fragment: str) -> str:
    """Plain text of an HTML fragment (feed summaries are HTML), whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return " ".join(html.unescape("".join(parser.parts)).split())


def _entry_time(entry: Any) -> pd.Timestamp | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:  # feedparser normalises to a UTC struct_time
            return pd.Timestamp(calendar.timegm(parsed), unit="s", tz="UTC")
    return None


@dataclass
class FeedsRead:
    """Records of every feed (dicts for ``items_frame``), with per-feed counts and failures."""

    records: list[dict[str, Any]] = field(default_factory=list)
    entries_per_feed: dict[str, int] = field(default_factory=dict)
    undated_dropped: int = 0
    errors: list[FeedError] = field(default_factory=list)


def parse_feed(body: bytes, url: str) -> tuple[list[dict[str, Any]], int]:
    """Entries of one feed document as records, and the number of undated entries dropped.

    Raises :class:`FeedError` when ``body`` is not an RSS / Atom document.
    """
    parsed = feedparser.parse(body)
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        start = body[:60].decode("utf-8", errors="replace").strip()
        raise FeedError(
            url,
            f"not an RSS or Atom document ({type(problem).__name__ if problem else 'no feed element'}; "
            f"body starts {start!r}); check the configured feed URL",
        )
    records, undated = [], 0
    for entry in parsed.entries:
        title = strip_html(entry.get("title", ""))
        if not title:
            continue
        published = _entry_time(entry)
        if published is None:
            undated += 1
            continue
        body_html = entry.get("summary") or (entry.get("content") or [{}])[0].get("value", "")
        records.append(
            {
                "published_at": published,
                "source": url,
                "title": title,
                "text": strip_html(body_html) if body_html else "",
                "url": entry.get("link") or None,
                "symbols": None,
            }
        )
    return records, undated


async def fetch_feed(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout_s: float = 20.0,
    max_bytes: int = DEFAULT_MAX_FEED_BYTES,
    attempts: int = 3,
    backoff_s: float = 0.5,
) -> bytes:
    """The body of one feed; FeedError naming the URL on an HTTP error or retries exhausted."""

    async def once() -> bytes:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                if response.status >= 500:
                    raise _Retryable(f"HTTP {response.status}")
                if response.status != 200:
                    raise FeedError(url, f"HTTP {response.status}; check the configured feed URL")
                body = await response.content.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise FeedError(url, f"body larger than {max_bytes} bytes; refusing it")
                return body
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=backoff_s, max=30.0),
            reraise=True,
        ):
            with attempt:
                return await once()
    except _Retryable as exc:
        raise FeedError(url, f"{exc} after {attempts} attempt(s)") from None
    raise AssertionError("unreachable")  # pragma: no cover


async def read_feeds(
    urls: Sequence[str],
    day: dt.date | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout_s: float = 20.0,
    max_bytes: int = DEFAULT_MAX_FEED_BYTES,
    attempts: int = 3,
    backoff_s: float = 0.5,
    on_feed_error: Literal["error", "skip"] = "error",
) -> FeedsRead:
    """Fetch every feed concurrently; records published inside ``day`` if given."""
    if on_feed_error not in ("error", "skip"):
        raise ValueError(f"on_feed_error must be 'error' or 'skip', got {on_feed_error!r}")
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        bodies = await asyncio.gather(
            *(fetch_feed(session, u, timeout_s=timeout_s, max_bytes=max_bytes, attempts=attempts,
                         backoff_s=backoff_s) for u in urls),
            return_exceptions=True,
        )
    finally:
        if own:
            await session.close()
    result = FeedsRead()
    bounds = day_bounds(day) if day is not None else None
    for url, body in zip(urls, bodies):
        try:
            if isinstance(body, BaseException):
                raise body
            records, undated = parse_feed(body, url)
        except FeedError as exc:
            if on_feed_error == "error":
                raise
            result.errors.append(exc)
            continue
        result.entries_per_feed[url] = len(records)
        result.undated_dropped += undated
        if bounds is not None:
            records = [r for r in records if bounds[0] <= r["published_at"] < bounds[1]]
        result.records.extend(records)
    return result
