"""Resources of the sentiment layer: where news comes from (``news_sources``) and who scores it (``sentiment_scorer``).

Both hold configuration only and build the pure objects of ``factor_core.news``
and ``factor_core.sentiment``. ``definitions.py`` reads the environment and
builds them with :func:`news_sources_resource` / :func:`sentiment_scorer_resource`,
which validate every value and name the variable in their errors, so a typo
fails when the code location loads, not in the middle of a backfill.

The API key: ``definitions.py`` passes ``EnvVar("OPENAI_API_KEY")`` when it is
set, so Dagster resolves it in the step process and records only the
variable's name; the field is hidden from the resource's repr. It goes from
here into :class:`~factor_core.sentiment.OpenAIScorer` (a ``Secret`` holder)
and nowhere else. No key: the offline scorer, labelled as such in every row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from factor_core.news import DEFAULT_ALIASES, AliasTable, SyntheticNewswire, read_feeds, read_landing_news
from factor_core.news.feeds import FeedsRead
from factor_core.news.landing import NEWS_SUBDIR, LandingRead
from factor_core.sentiment import PriceTable, PromptSettings, select_scorer
from factor_core.sentiment.base import Scorer
from factor_core.simulator import SimulatorConfig

#: The step that calls the LLM runs in this concurrency pool (one shared rate limit and budget).
LLM_POOL = "llm_api"
NEWS_SOURCE_NAMES = ("synthetic", "landing", "feeds")
OFFLINE_SCORERS = ("auto", "lexicon:vader", "synthetic:newswire")
_POLICIES = ("error", "skip")


class NewsSourcesResource(ConfigurableResource):
    """The sources of ``news_items``: the synthetic newswire, the landing folder, RSS / Atom feeds."""

    sources: list[str] = ["synthetic", "landing"]
    feed_urls: list[str] = []
    landing_dir: str = "./data/landing"
    #: Extra aliases, configuration text (``SYMBOL=alias|alias;...`` or JSON), added to the built-in ones.
    aliases: str = ""
    on_bad_line: Literal["error", "skip"] = "error"
    on_feed_error: Literal["error", "skip"] = "error"
    feed_timeout_s: float = 20.0

    @property
    def news_dir(self) -> Path:
        return Path(self.landing_dir).expanduser() / NEWS_SUBDIR

    def uses(self, source: str) -> bool:
        return source in self.sources

    def alias_table(self, registered: Sequence[str]) -> AliasTable:
        """Aliases of every registered symbol plus every built-in and configured one.

        The table does not depend on which partitions a run covers: the
        anonymised prompt of an item (hence its cache key) is the same in every
        run, and "Bitcoin Cash" is BCH even when BCHUSDT is not registered.
        """
        extra = AliasTable.parse(self.aliases).as_config()
        symbols = sorted({*DEFAULT_ALIASES, *registered, *extra})
        return AliasTable.for_symbols(symbols, extra=extra)

    def newswire(self, symbols: Sequence[str], sim: SimulatorConfig) -> SyntheticNewswire | None:
        """The synthetic newswire over ``symbols`` (None when it is not a configured source)."""
        return SyntheticNewswire(symbols, sim) if self.uses("synthetic") else None

    def read_landing(self) -> LandingRead | None:
        """Every item of the landing folder's ``news/*.jsonl`` (all days), or None when not a source."""
        if not self.uses("landing"):
            return None
        return read_landing_news(Path(self.landing_dir).expanduser(), None, on_bad_line=self.on_bad_line)

    def read_feeds(self) -> FeedsRead | None:
        """Every entry of the configured feeds (all days), or None when not a source."""
        if not self.uses("feeds") or not self.feed_urls:
            return None
        return asyncio.run(read_feeds(list(self.feed_urls), None, timeout_s=self.feed_timeout_s,
                                      on_feed_error=self.on_feed_error))


def news_sources_resource(
    *,
    sources: str,
    market_source: str,
    feed_urls: str,
    landing_dir: str,
    aliases: str,
    on_bad_line: str,
    on_feed_error: str,
) -> NewsSourcesResource:
    """The validated ``news_sources`` resource from configuration text (see the README table)."""
    names = [s.strip() for s in sources.split(",") if s.strip()]
    if not names:  # the offline default follows the market source: the newswire narrates the simulator
        names = ["synthetic", "landing"] if market_source == "synthetic" else ["landing"]
    unknown = [n for n in names if n not in NEWS_SOURCE_NAMES]
    if unknown:
        raise ValueError(f"NEWS_SOURCES={sources!r}: unknown source(s) {unknown}; use any of {', '.join(NEWS_SOURCE_NAMES)}")
    urls = [u.strip() for u in feed_urls.split(",") if u.strip()]
    if "feeds" in names and not urls:
        raise ValueError("NEWS_SOURCES includes feeds but NEWS_FEED_URLS is empty: list the RSS / Atom URLs")
    bad_urls = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad_urls:
        raise ValueError(f"NEWS_FEED_URLS: {bad_urls[0]!r} is not an http(s) URL")
    try:
        AliasTable.parse(aliases)
    except ValueError as exc:
        raise ValueError(f"NEWS_ALIASES: {exc}") from None
    for name, value in (("NEWS_ON_BAD_LINE", on_bad_line), ("NEWS_ON_FEED_ERROR", on_feed_error)):
        if value not in _POLICIES:
            raise ValueError(f"{name}={value!r}: expected error or skip")
    return NewsSourcesResource(sources=names, feed_urls=urls, landing_dir=landing_dir, aliases=aliases,
                               on_bad_line=on_bad_line, on_feed_error=on_feed_error)


class SentimentScorerResource(ConfigurableResource):
    """Who scores the news: an OpenAI-compatible LLM when a key is configured, else the offline scorer."""

    #: ``EnvVar("OPENAI_API_KEY")`` (empty: offline). Hidden from repr; never logged or stored.
    api_key: str = Field(default="", repr=False, description="OpenAI-compatible API key (EnvVar only)")
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    #: Price table overrides (JSON, USD per 1M tokens) on top of the built-in list prices.
    prices: str = ""
    anonymise: bool = True
    offline: Literal["auto", "lexicon:vader", "synthetic:newswire"] = "auto"
    max_concurrency: int = 4
    timeout_s: float = 30.0
    max_wait_s: float = 120.0
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    items_per_request: int = 1

    @property
    def uses_llm(self) -> bool:
        return bool(self.api_key)

    def describe(self) -> str:
        """What scores, for logs (never the key)."""
        return f"{self.model} at {self.base_url}" if self.uses_llm else f"the offline scorer ({self.offline})"

    def scorer(self, aliases: AliasTable, newswire: SyntheticNewswire | None) -> Scorer:
        return select_scorer(
            api_key=self.api_key or None,
            model=self.model,
            base_url=self.base_url,
            aliases=aliases,
            offline=self.offline,
            newswire=newswire,
            **(dict(
                prompt=PromptSettings(anonymise=self.anonymise),
                prices=PriceTable.parse(self.prices),
                timeout_s=self.timeout_s,
                max_concurrency=self.max_concurrency,
                max_attempts=self.max_attempts,
                max_wait_s=self.max_wait_s,
                backoff_base_s=self.backoff_base_s,
                items_per_request=self.items_per_request,
            ) if self.uses_llm else {}),
        )


def sentiment_scorer_resource(
    *,
    api_key: str,
    base_url: str,
    model: str,
    prices: str,
    anonymise: bool,
    offline: str,
    max_concurrency: int,
    timeout_s: float,
    max_wait_s: float,
    items_per_request: int,
) -> SentimentScorerResource:
    """The validated ``sentiment_scorer`` resource. ``api_key`` is passed through unread (an ``EnvVar``)."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"OPENAI_BASE_URL={base_url!r} is not an http(s) URL (e.g. https://api.openai.com/v1)")
    if not model.strip():
        raise ValueError("SENTIMENT_MODEL is empty: name the model to call")
    try:
        PriceTable.parse(prices)
    except ValueError as exc:
        raise ValueError(f"SENTIMENT_PRICES: {exc}") from None
    if offline not in OFFLINE_SCORERS:
        raise ValueError(f"SENTIMENT_OFFLINE_SCORER={offline!r}: expected one of {', '.join(OFFLINE_SCORERS)}")
    for name, value in (("SENTIMENT_MAX_CONCURRENCY", max_concurrency), ("SENTIMENT_ITEMS_PER_REQUEST", items_per_request)):
        if value < 1:
            raise ValueError(f"{name}={value}: must be at least 1")
    for name, value in (("SENTIMENT_TIMEOUT_S", timeout_s), ("SENTIMENT_MAX_WAIT_S", max_wait_s)):
        if not value > 0:
            raise ValueError(f"{name}={value}: must be > 0")
    return SentimentScorerResource(
        api_key=api_key, base_url=base_url.rstrip("/"), model=model.strip(), prices=prices, anonymise=anonymise,
        offline=offline, max_concurrency=max_concurrency, timeout_s=timeout_s, max_wait_s=max_wait_s,
        items_per_request=items_per_request,
    )
