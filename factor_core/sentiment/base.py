"""What every scorer takes and returns (the LLM scorer and the offline ones alike)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from factor_core.sentiment.schema import Verdict


@dataclass(frozen=True)
class ItemToScore:
    """One news item to score for one symbol (raw text: each scorer renders it its own way)."""

    item_id: str
    symbol: str
    title: str
    text: str
    url: str | None = None


@dataclass(frozen=True)
class ItemResult:
    """A scorer's verdict on one item, and its share of what the call cost."""

    verdict: Verdict
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    cost_usd: float | None = 0.0
    #: What produced this verdict when it is not the scorer's own label (a routing scorer's parts).
    model: str | None = None
    prompt_version: str | None = None


@dataclass
class ScoreStats:
    """What one scoring pass spent: HTTP calls (every attempt), requests, tokens, USD."""

    calls: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0
    usage_missing: int = 0
    notes: list[str] = field(default_factory=list)


#: Called with each finished batch as soon as it is answered (the cache writer):
#: a later failure must not lose answers that were already paid for.
BatchCallback = Callable[[Sequence[tuple[ItemToScore, ItemResult]]], None]


class Scorer(Protocol):
    model: str  # stored in every row: "gpt-4o-mini", "lexicon:vader", "synthetic:newswire"
    prompt_version: str
    anonymised: bool
    cacheable: bool  # False for free offline scorers

    def cache_key(self, item: ItemToScore) -> str: ...

    async def score(
        self, items: Sequence[ItemToScore], on_batch: BatchCallback, stats: ScoreStats
    ) -> list[ItemResult]: ...
