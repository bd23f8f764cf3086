"""News sources for the sentiment layer (no Dagster): RSS / Atom feeds, a landing folder,
a synthetic newswire; alias matching, stable ids and de-duplication."""

from factor_core.news.aliases import DEFAULT_ALIASES, AliasTable
from factor_core.news.collect import (
    NewsItemsResult,
    abuild_news_items,
    assemble_news_items,
    build_news_items,
    carry_feed_items,
)
from factor_core.news.errors import BadLine, FeedError, LandingNewsError, NewsSourceError
from factor_core.news.feeds import parse_feed, read_feeds
from factor_core.news.items import NEWS_ITEM_COLUMNS, NEWS_ITEMS_SCHEMA, deduplicate, items_frame, make_item_id
from factor_core.news.landing import read_landing_news
from factor_core.news.newswire import NEWSWIRE_SOURCE, NewswireConfig, SyntheticNewswire

__all__ = [
    "DEFAULT_ALIASES",
    "NEWSWIRE_SOURCE",
    "NEWS_ITEMS_SCHEMA",
    "NEWS_ITEM_COLUMNS",
    "AliasTable",
    "BadLine",
    "FeedError",
    "LandingNewsError",
    "NewsItemsResult",
    "NewsSourceError",
    "NewswireConfig",
    "SyntheticNewswire",
    "abuild_news_items",
    "assemble_news_items",
    "build_news_items",
    "carry_feed_items",
    "deduplicate",
    "items_frame",
    "make_item_id",
    "parse_feed",
    "read_feeds",
    "read_landing_news",
]
