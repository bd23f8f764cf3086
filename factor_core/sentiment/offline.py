"""Offline scorers: what runs with no API key. Each is labelled so nobody mistakes it for an LLM.

* :class:`VaderScorer` -- ``model = "lexicon:vader"``: the VADER compound
  score (Hutto & Gilbert 2014, ``vaderSentiment``, lexicon shipped with the
  package) of the title and the text, in [-1, 1]. VADER has no confidence:
  ``confidence`` is null.
* :class:`NewswireScorer` -- ``model = "synthetic:newswire"``: the synthetic
  newswire's own tone for its items (the exact tone it generated the
  headline from), so the demo can show sentiment recovering the planted
  information coefficient. Items from any other source are rejected.
* :class:`OfflineScorer` -- what runs by default without a key: the
  newswire's own tone for the newswire's items, VADER for every other item;
  each row is labelled with the scorer that produced it.

All are free (tokens 0, cost 0) and deterministic, hence not cached.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import replace

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from factor_core.news.newswire import NEWSWIRE_SOURCE, SyntheticNewswire
from factor_core.sentiment.base import BatchCallback, ItemResult, ItemToScore, ScoreStats
from factor_core.sentiment.schema import Verdict, rejection

VADER_MODEL = "lexicon:vader"
NEWSWIRE_MODEL = NEWSWIRE_SOURCE
#: VADER's cost grows with the text; the first characters carry the headline's tone.
VADER_MAX_CHARS = 2000


class VaderScorer:
    model = VADER_MODEL
    anonymised = False
    cacheable = False

    def __init__(self, max_chars: int = VADER_MAX_CHARS):
        self.max_chars = max_chars
        self.prompt_version = f"vaderSentiment-{importlib.metadata.version('vaderSentiment')}"
        self._analyzer = SentimentIntensityAnalyzer()

    def cache_key(self, item: ItemToScore) -> str:  # pragma: no cover - not cacheable
        raise NotImplementedError("VADER scores are not cached")

    def score_text(self, title: str, text: str) -> float:
        body = f"{title}. {text}" if text else title
        return float(self._analyzer.polarity_scores(body[: self.max_chars])["compound"])

    async def score(self, items: Sequence[ItemToScore], on_batch: BatchCallback, stats: ScoreStats) -> list[ItemResult]:
        results = [ItemResult(Verdict(score=self.score_text(i.title, i.text))) for i in items]
        on_batch(list(zip(items, results)))
        return results


class NewswireScorer:
    model = NEWSWIRE_MODEL
    anonymised = False
    cacheable = False

    def __init__(self, newswire: SyntheticNewswire):
        self.newswire = newswire
        self.prompt_version = "newswire-tone-v1"

    def cache_key(self, item: ItemToScore) -> str:  # pragma: no cover - not cacheable
        raise NotImplementedError("newswire tones are not cached")

    async def score(self, items: Sequence[ItemToScore], on_batch: BatchCallback, stats: ScoreStats) -> list[ItemResult]:
        results = []
        for item in items:
            tone = self.newswire.tone(item.url or "")
            verdict = (
                Verdict(score=tone, confidence=1.0)
                if tone is not None
                else rejection("not an item of the synthetic newswire: the synthetic:newswire scorer knows only its own items")
            )
            results.append(ItemResult(verdict))
        on_batch(list(zip(items, results)))
        return results


class OfflineScorer:
    """The newswire's tone for its own items, VADER for the rest; every row names its scorer.

    Without a newswire every item goes to VADER. The labels of a ``no_news``
    row (``model``, ``prompt_version``) are VADER's, the scorer that would
    have read any other item.
    """

    anonymised = False
    cacheable = False

    def __init__(self, newswire: SyntheticNewswire | None = None, vader: VaderScorer | None = None):
        self.vader = vader or VaderScorer()
        self.wire = NewswireScorer(newswire) if newswire is not None else None
        self.model = self.vader.model
        self.prompt_version = self.vader.prompt_version

    def cache_key(self, item: ItemToScore) -> str:  # pragma: no cover - not cacheable
        raise NotImplementedError("offline scores are not cached")

    def _is_wire_item(self, item: ItemToScore) -> bool:
        return self.wire is not None and self.wire.newswire.tone(item.url or "") is not None

    async def score(self, items: Sequence[ItemToScore], on_batch: BatchCallback, stats: ScoreStats) -> list[ItemResult]:
        wire = [n for n, item in enumerate(items) if self._is_wire_item(item)]
        wire_set = set(wire)
        rest = [n for n in range(len(items)) if n not in wire_set]
        results: list[ItemResult | None] = [None] * len(items)
        for indices, scorer in ((wire, self.wire), (rest, self.vader)):
            if not indices:
                continue
            scored = await scorer.score([items[n] for n in indices], lambda batch: None, stats)
            for n, result in zip(indices, scored):
                results[n] = replace(result, model=scorer.model, prompt_version=scorer.prompt_version)
        on_batch(list(zip(items, results)))  # type: ignore[arg-type]
        return results  # type: ignore[return-value]
