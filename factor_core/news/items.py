"""The ``news_items`` data contract: columns, stable ids, de-duplication, the day window.

One row per news item. ``published_at`` is the moment the item became public
(UTC); it is the only time the sentiment layer ever joins on, so a source must
never stamp an item earlier than it was available. ``item_id`` is a stable
hash: of the URL when the item has one (the same article fetched twice is one
item), else of its normalised content (the same text posted twice is one
item). De-duplication keeps one row per ``item_id``: the earliest
publication, which is when the information became available.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

TS = pa.timestamp("ns", tz="UTC")

#: Stored schema of a ``news_items`` partition (the partition column ``date`` lives in the path).
NEWS_ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),  # 32 hex chars, see make_item_id
        ("published_at", TS),
        ("source", pa.string()),  # feed URL, "landing:<file>" or "synthetic:newswire"
        ("title", pa.string()),
        ("text", pa.string()),  # plain text (HTML stripped), may be empty
        ("url", pa.string()),  # null when the item has none
        ("symbols", pa.list_(pa.string())),  # symbols the item mentions (alias table), sorted
    ]
)
NEWS_ITEM_COLUMNS: tuple[str, ...] = tuple(NEWS_ITEMS_SCHEMA.names)

_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed text: what makes two copies "the same content"."""
    return _SPACES.sub(" ", text).strip().casefold()


def content_hash(title: str, text: str) -> str:
    """Hash of the normalised title and body (the identity of an item without URL)."""
    payload = normalise_text(title) + "\n" + normalise_text(text)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


def make_item_id(url: str | None, title: str, text: str) -> str:
    """Stable id: a hash of the URL when there is one, else of the normalised content."""
    if url:
        return hashlib.blake2b(("url:" + url.strip()).encode("utf-8"), digest_size=16).hexdigest()
    return hashlib.blake2b(("content:" + content_hash(title, text)).encode(), digest_size=16).hexdigest()


def day_bounds(day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[00:00, next 00:00)`` of a UTC day."""
    start = pd.Timestamp(day.isoformat(), tz="UTC")
    return start, start + pd.Timedelta(days=1)


def empty_news_items() -> pd.DataFrame:
    return items_frame([])


def items_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A ``news_items`` frame from dicts with the fields of ``NEWS_ITEMS_SCHEMA``.

    ``item_id`` is computed when absent; ``symbols`` defaults to no symbol.
    """
    rows = []
    for record in records:
        title = str(record["title"])
        text = str(record.get("text") or "")
        url = record.get("url") or None
        rows.append(
            {
                "item_id": record.get("item_id") or make_item_id(url, title, text),
                "published_at": record["published_at"],
                "source": str(record["source"]),
                "title": title,
                "text": text,
                "url": url,
                "symbols": sorted(set(record.get("symbols") or ())),
            }
        )
    frame = pd.DataFrame(rows, columns=list(NEWS_ITEM_COLUMNS))
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True).astype("datetime64[ns, UTC]")
    for column in ("item_id", "source", "title", "text", "url"):
        frame[column] = frame[column].astype("string")
    frame["symbols"] = frame["symbols"].astype(object)
    return frame


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep one row per ``item_id`` (same URL, or same content for items without URL): the earliest.

    Two items with different URLs are different items even when their words
    match: a wire repeats "BTC trades flat" on many hours. Returns the frame
    sorted by ``(published_at, item_id)`` and the number of rows dropped.
    """
    ordered = frame.sort_values(["published_at", "item_id"], kind="stable")
    kept = ordered[~ordered["item_id"].duplicated()].reset_index(drop=True)
    return kept, int(len(frame) - len(kept))


def select_day(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Rows published inside the UTC day ``day``."""
    start, end = day_bounds(day)
    inside = (frame["published_at"] >= start) & (frame["published_at"] < end)
    return frame[inside].reset_index(drop=True)


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as a table of exactly ``NEWS_ITEMS_SCHEMA`` (stable types even for empty days)."""
    return pa.Table.from_pandas(frame[list(NEWS_ITEM_COLUMNS)], schema=NEWS_ITEMS_SCHEMA, preserve_index=False)
