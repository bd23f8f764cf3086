"""One ``news_items`` partition: every configured source for a UTC day, matched and de-duplicated.

The asset calls :func:`build_news_items` with its day and gets the frame to
store plus small metadata (counts per source, duplicates dropped, items that
name no symbol, bad landing lines skipped, feed failures skipped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pandas as pd

from factor_core.news.aliases import AliasTable
from factor_core.news.feeds import read_feeds
from factor_core.news.items import deduplicate, items_frame, select_day
from factor_core.news.landing import read_landing_news
from factor_core.news.newswire import SyntheticNewswire

#: Bad lines / feed errors listed in the metadata (the counts are complete).
_LISTED = 20


@dataclass
class NewsItemsResult:
    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


async def abuild_news_items(
    day: dt.date,
    aliases: AliasTable,
    *,
    newswire: SyntheticNewswire | None = None,
    landing_dir: str | Path | None = None,
    feed_urls: Sequence[str] = (),
    on_bad_line: Literal["error", "skip"] = "error",
    on_feed_error: Literal["error", "skip"] = "error",
    feed_timeout_s: float = 20.0,
    session: aiohttp.ClientSession | None = None,
) -> NewsItemsResult:
    """Items published inside ``day`` from the newswire, the landing folder and the feeds given.

    Items without explicit symbols get them from ``aliases`` (title + text).
    Errors of the sources propagate (see their modules); nothing is returned
    half-built.
    """
    records: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    if newswire is not None:
        wire = newswire.records(day)
        records += wire
        metadata["newswire_items"] = len(wire)
    if landing_dir is not None:
        landing = read_landing_news(landing_dir, day, on_bad_line=on_bad_line)
        records += landing.records
        metadata["landing_items"] = len(landing.records)
        metadata["landing_files"] = len(landing.files)
        metadata["landing_bad_lines"] = len(landing.bad_lines)
        if landing.bad_lines:
            metadata["landing_bad_lines_first"] = [str(b) for b in landing.bad_lines[:_LISTED]]
    if feed_urls:
        feeds = await read_feeds(
            list(feed_urls), day, session=session, timeout_s=feed_timeout_s, on_feed_error=on_feed_error
        )
        records += feeds.records
        metadata["feed_items"] = len(feeds.records)
        metadata["feed_undated_dropped"] = feeds.undated_dropped
        metadata["feed_errors"] = len(feeds.errors)
        if feeds.errors:
            metadata["feed_errors_first"] = [str(e) for e in feeds.errors[:_LISTED]]
    for record in records:
        if record.get("symbols") is None:
            record["symbols"] = aliases.match(f"{record['title']}\n{record.get('text') or ''}")
    frame = select_day(items_frame(records), day)
    frame, duplicates = deduplicate(frame)
    mentions = Counter(s for symbols in frame["symbols"] for s in symbols)
    metadata.update(
        items=len(frame),
        duplicates_dropped=duplicates,
        items_without_symbol=int(sum(1 for s in frame["symbols"] if not s)),
        items_per_symbol=dict(sorted(mentions.items())),
    )
    return NewsItemsResult(frame, metadata)


def build_news_items(day: dt.date, aliases: AliasTable, **kwargs: Any) -> NewsItemsResult:
    """Synchronous :func:`abuild_news_items` (for an asset body; not inside a running loop)."""
    return asyncio.run(abuild_news_items(day, aliases, **kwargs))
