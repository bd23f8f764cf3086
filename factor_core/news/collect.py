"""One ``news_items`` partition: every configured source for a UTC day, matched and de-duplicated.

The asset reads the landing folder and the feeds once per run, then calls
:func:`assemble_news_items` for each day (and :func:`carry_feed_items` to keep
feed items the feeds no longer list); :func:`build_news_items` does all of it
for one day. Each gives the frame to store plus small metadata (counts per
source, duplicates dropped, items that name no symbol, bad landing lines
skipped, feed failures skipped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pandas as pd

from factor_core.news.aliases import AliasTable
from factor_core.news.feeds import FeedsRead, read_feeds
from factor_core.news.items import NEWS_ITEM_COLUMNS, day_bounds, deduplicate, items_frame, select_day
from factor_core.news.landing import LandingRead, read_landing_news
from factor_core.news.newswire import SyntheticNewswire

#: Bad lines / feed errors listed in the metadata (the counts are complete).
_LISTED = 20


@dataclass
class NewsItemsResult:
    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


def assemble_news_items(
    day: dt.date,
    aliases: AliasTable,
    *,
    newswire: SyntheticNewswire | None = None,
    landing: LandingRead | None = None,
    feeds: FeedsRead | None = None,
) -> NewsItemsResult:
    """The ``news_items`` partition of ``day`` from sources already read.

    ``landing`` / ``feeds`` may hold items of any day (a range run reads the
    folder and the feeds once, for all its days); only those published inside
    ``day`` are kept. Items without explicit symbols get them from ``aliases``
    (title + text).
    """
    start, end = day_bounds(day)

    def of_day(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(r) for r in records if start <= pd.Timestamp(r["published_at"]) < end]

    records: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    if newswire is not None:
        wire = newswire.records(day)
        records += wire
        metadata["newswire_items"] = len(wire)
    if landing is not None:
        landed = of_day(landing.records)
        records += landed
        metadata["landing_items"] = len(landed)
        metadata["landing_files"] = len(landing.files)
        metadata["landing_bad_lines"] = len(landing.bad_lines)
        if landing.bad_lines:
            metadata["landing_bad_lines_first"] = [str(b) for b in landing.bad_lines[:_LISTED]]
    if feeds is not None:
        fed = of_day(feeds.records)
        records += fed
        metadata["feed_items"] = len(fed)
        metadata["feed_undated_dropped"] = feeds.undated_dropped
        metadata["feed_errors"] = len(feeds.errors)
        if feeds.errors:
            metadata["feed_errors_first"] = [str(e) for e in feeds.errors[:_LISTED]]
    for record in records:
        if record.get("symbols") is None:
            record["symbols"] = aliases.match(f"{record['title']}\n{record.get('text') or ''}")
    frame = select_day(items_frame(records), day)
    frame, duplicates = deduplicate(frame)
    metadata.update(items=len(frame), duplicates_dropped=duplicates, **_mentions(frame))
    return NewsItemsResult(frame, metadata)


def _mentions(frame: pd.DataFrame) -> dict[str, Any]:
    mentions = Counter(s for symbols in frame["symbols"] for s in symbols)
    return {
        "items_without_symbol": int(sum(1 for s in frame["symbols"] if len(s) == 0)),
        "items_per_symbol": dict(sorted(mentions.items())),
    }


def carry_feed_items(result: NewsItemsResult, previous: pd.DataFrame | None, feed_sources: Collection[str]) -> NewsItemsResult:
    """``result`` plus the feed items of the ``previous`` version of the partition that the feeds no longer list.

    A feed lists only its latest entries: re-building a day after its entries
    scrolled off the feed must not lose them. Rows of ``previous`` whose
    ``source`` is one of ``feed_sources`` are kept unless the new partition has
    the same ``item_id`` (the fresh copy wins). Items of other sources are not
    carried: the newswire is regenerated and the landing folder is the user's
    record (an item removed from a file is meant to go).
    """
    if previous is None or previous.empty or not feed_sources:
        return result
    old = previous[previous["source"].isin(list(feed_sources))]
    old = old[~old["item_id"].isin(set(result.frame["item_id"]))]
    if old.empty:
        return result
    carried = items_frame(old[list(NEWS_ITEM_COLUMNS)].to_dict("records"))
    frame, _ = deduplicate(pd.concat([result.frame, carried], ignore_index=True))
    metadata = {**result.metadata, "items": len(frame), "feed_items_carried": len(carried), **_mentions(frame)}
    return NewsItemsResult(frame, metadata)


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
    landing = read_landing_news(landing_dir, day, on_bad_line=on_bad_line) if landing_dir is not None else None
    feeds = None
    if feed_urls:
        feeds = await read_feeds(
            list(feed_urls), day, session=session, timeout_s=feed_timeout_s, on_feed_error=on_feed_error
        )
    return assemble_news_items(day, aliases, newswire=newswire, landing=landing, feeds=feeds)


def build_news_items(day: dt.date, aliases: AliasTable, **kwargs: Any) -> NewsItemsResult:
    """Synchronous :func:`abuild_news_items` (for an asset body; not inside a running loop)."""
    return asyncio.run(abuild_news_items(day, aliases, **kwargs))
