"""One ``llm_sentiment`` partition (UTC day x symbol): score the day's items that mention the symbol.

Flow: pick the ``news_items`` rows of the day that list the symbol; look each
up in the cache; send only the misses to the scorer; every answered batch is
written to the cache the moment it arrives (a later failure keeps what was
paid for); assemble one row per item, or one explicit ``no_news`` row when
the symbol-day has no item (never an invented zero score).

A failure raises the scorer's error with the partition named in front; the
partition's previous file is untouched because nothing is returned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from factor_core.news.aliases import AliasTable
from factor_core.news.items import day_bounds
from factor_core.news.newswire import SyntheticNewswire
from factor_core.sentiment.base import ItemResult, ItemToScore, Scorer, ScoreStats
from factor_core.sentiment.cache import CachedAnswer, ScoreCache
from factor_core.sentiment.errors import InvalidNewsInput, SentimentError
from factor_core.sentiment.llm import OpenAIScorer
from factor_core.sentiment.offline import NewswireScorer, OfflineScorer, VaderScorer

TS = pa.timestamp("ns", tz="UTC")

#: Stored schema of an ``llm_sentiment`` partition (``date`` / ``symbol`` live in the path).
SENTIMENT_SCHEMA = pa.schema(
    [
        ("status", pa.string()),  # "scored", "rejected" or "no_news"
        ("published_at", TS),  # null on the no_news row
        ("item_id", pa.string()),
        ("score", pa.float64()),  # [-1, 1]; null unless scored
        ("confidence", pa.float64()),  # [0, 1]; null when the scorer has none (VADER) or not scored
        ("topics", pa.string()),  # JSON array of <= 5 strings
        ("rationale", pa.string()),
        ("rejected_reason", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("anonymised", pa.bool_()),
        ("prompt_tokens", pa.int64()),  # this item's share of the call that scored it
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),  # null when the model has no price
        ("cache_hit", pa.bool_()),
    ]
)
SENTIMENT_COLUMNS: tuple[str, ...] = tuple(SENTIMENT_SCHEMA.names)
_NEWS_COLUMNS = ("item_id", "published_at", "title", "text", "url", "symbols")


@dataclass
class SentimentPartition:
    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


def select_scorer(
    *,
    api_key: str | None,
    model: str | None,
    base_url: str | None = None,
    aliases: AliasTable,
    offline: Literal["auto", "lexicon:vader", "synthetic:newswire"] = "lexicon:vader",
    newswire: SyntheticNewswire | None = None,
    **llm_options: Any,
) -> Scorer:
    """The LLM scorer when an API key is configured, else the offline scorer named by ``offline``
    (``"auto"``: the newswire's tone for its items, VADER for the others, see ``OfflineScorer``)."""
    if api_key:
        return OpenAIScorer(api_key=api_key, model=model or "", base_url=base_url, aliases=aliases, **llm_options)
    if offline == "auto":
        return OfflineScorer(newswire)
    if offline == "synthetic:newswire":
        if newswire is None:
            raise ValueError("the synthetic:newswire scorer needs the SyntheticNewswire that made the items")
        return NewswireScorer(newswire)
    if offline == "lexicon:vader":
        return VaderScorer()
    raise ValueError(f"unknown offline scorer {offline!r}: use 'auto', 'lexicon:vader' or 'synthetic:newswire'")


def _items_for(
    news_items: pd.DataFrame, symbol: str, day: dt.date, partition: str
) -> tuple[list[ItemToScore], list[pd.Timestamp]]:
    missing = [c for c in _NEWS_COLUMNS if c not in news_items.columns]
    if missing:
        raise InvalidNewsInput(f"llm_sentiment {partition}: news_items lacks column(s) {missing}")
    mentions = news_items["symbols"].map(lambda s: s is not None and symbol in list(s))
    rows = news_items[mentions.to_numpy(dtype=bool)]
    start, end = day_bounds(day)
    published = pd.to_datetime(rows["published_at"], utc=True)
    outside = rows[(published < start) | (published >= end) | published.isna()]
    if len(outside):
        first = outside.iloc[0]
        raise InvalidNewsInput(
            f"llm_sentiment {partition}: news item {first['item_id']} has published_at "
            f"{first['published_at']} outside the day {day}; the news_items input must be that day's partition"
        )
    rows = rows.assign(published_at=published).sort_values(["published_at", "item_id"], kind="stable")
    rows = rows.drop_duplicates("item_id")
    return [
        ItemToScore(str(r.item_id), symbol, str(r.title), "" if pd.isna(r.text) else str(r.text),
                    None if pd.isna(r.url) else str(r.url))
        for r in rows.itertuples(index=False)
    ], list(rows["published_at"])


def _row(item_id, published_at, scorer: Scorer, result: ItemResult | None, cache_hit: bool, model=None,
         version=None) -> dict[str, Any]:
    if result is None:
        return {"status": "no_news", "published_at": None, "item_id": None, "score": None, "confidence": None,
                "topics": "[]", "rationale": None, "rejected_reason": None, "model": scorer.model,
                "prompt_version": scorer.prompt_version, "anonymised": scorer.anonymised, "prompt_tokens": 0,
                "completion_tokens": 0, "cost_usd": 0.0, "cache_hit": False}
    v = result.verdict
    return {
        "status": "rejected" if v.rejected else "scored",
        "published_at": published_at,
        "item_id": item_id,
        "score": v.score,
        "confidence": v.confidence,
        "topics": json.dumps(list(v.topics), ensure_ascii=False),
        "rationale": v.rationale,
        "rejected_reason": v.rejected_reason,
        "model": model or result.model or scorer.model,
        "prompt_version": version or result.prompt_version or scorer.prompt_version,
        "anonymised": scorer.anonymised,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "cache_hit": cache_hit,
    }


def sentiment_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with the dtypes of ``SENTIMENT_SCHEMA`` (stable even for one no_news row)."""
    table = pa.Table.from_pylist(list(rows), schema=SENTIMENT_SCHEMA)
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
                                          pa.string(): pd.StringDtype()}.get)
    frame["published_at"] = frame["published_at"].astype("datetime64[ns, UTC]")
    return frame


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame[list(SENTIMENT_COLUMNS)], schema=SENTIMENT_SCHEMA, preserve_index=False)


async def ascore_symbol_day(
    news_items: pd.DataFrame,
    *,
    day: dt.date,
    symbol: str,
    scorer: Scorer,
    cache: ScoreCache | None = None,
) -> SentimentPartition:
    """Score one symbol-day. ``news_items`` is the ``news_items`` partition of ``day``."""
    partition = f"{day.isoformat()}|{symbol}"
    items, published = _items_for(news_items, symbol, day, partition)
    stats = ScoreStats()
    if not items:
        frame = sentiment_frame([_row(None, None, scorer, None, False)])
        return SentimentPartition(frame, _metadata(partition, scorer, frame, stats, cache_hits=0))

    use_cache = cache is not None and scorer.cacheable
    keys = [scorer.cache_key(i) for i in items] if use_cache else []
    cached = cache.get_many(keys) if use_cache else {}
    misses = [n for n, key in enumerate(keys) if key not in cached] if use_cache else list(range(len(items)))

    def store(batch: Sequence[tuple[ItemToScore, ItemResult]]) -> None:
        if not use_cache:
            return
        cache.put_many(
            (scorer.cache_key(item), CachedAnswer(r.verdict, scorer.model, scorer.prompt_version,
                                                  r.prompt_tokens, r.completion_tokens, r.cost_usd))
            for item, r in batch
        )

    try:
        fresh = await scorer.score([items[n] for n in misses], store, stats) if misses else []
    except SentimentError as exc:
        failure = exc
    else:
        failure = None
    if failure is not None:  # raised outside the handler: no chained exception carrying server text
        raise type(failure)(f"llm_sentiment {partition}: {failure}")

    by_index = dict(zip(misses, fresh))
    rows = []
    for n, item in enumerate(items):
        if n in by_index:
            rows.append(_row(item.item_id, published[n], scorer, by_index[n], False))
        else:
            hit = cached[keys[n]]
            result = ItemResult(hit.verdict, hit.prompt_tokens, hit.completion_tokens, hit.cost_usd)
            rows.append(_row(item.item_id, published[n], scorer, result, True, hit.model, hit.prompt_version))
    frame = sentiment_frame(rows)
    return SentimentPartition(frame, _metadata(partition, scorer, frame, stats, cache_hits=len(items) - len(misses)))


def score_symbol_day(news_items: pd.DataFrame, **kwargs: Any) -> SentimentPartition:
    """Synchronous :func:`ascore_symbol_day` (for an asset body; not inside a running loop)."""
    return asyncio.run(ascore_symbol_day(news_items, **kwargs))


PartitionOutcome = SentimentPartition | SentimentError


async def ascore_symbol_days(
    news_by_day: Mapping[dt.date, pd.DataFrame],
    partitions: Sequence[tuple[dt.date, str]],
    *,
    scorer: Scorer,
    cache: ScoreCache | None = None,
) -> dict[tuple[dt.date, str], PartitionOutcome]:
    """Several symbol-days at once through one scorer: ``{(day, symbol): partition or its error}``.

    ``news_by_day[day]`` is the ``news_items`` partition of ``day``. The
    partitions run concurrently; the scorer's own limits bound the requests in
    flight across all of them (see ``factor_core.sentiment.llm``). A failed
    partition is returned as its :class:`SentimentError` (the others still
    finish, and everything answered is in the cache); any other exception
    propagates.
    """
    outcomes = await asyncio.gather(
        *(ascore_symbol_day(news_by_day[day], day=day, symbol=symbol, scorer=scorer, cache=cache)
          for day, symbol in partitions),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, SentimentError):
            raise outcome
    return dict(zip(partitions, outcomes))  # type: ignore[arg-type]


def score_symbol_days(news_by_day: Mapping[dt.date, pd.DataFrame], partitions: Sequence[tuple[dt.date, str]],
                      **kwargs: Any) -> dict[tuple[dt.date, str], PartitionOutcome]:
    """Synchronous :func:`ascore_symbol_days`."""
    return asyncio.run(ascore_symbol_days(news_by_day, partitions, **kwargs))


def _metadata(partition: str, scorer: Scorer, frame: pd.DataFrame, stats: ScoreStats, *, cache_hits: int) -> dict:
    items = frame[frame["status"] != "no_news"]
    reasons = Counter(r for r in items["rejected_reason"].dropna())
    attributed = items["cost_usd"].dropna()
    metadata: dict[str, Any] = {
        "partition": partition,
        # what produced the rows (an offline partition may hold newswire tones and VADER scores)
        "model": ", ".join(sorted(set(frame["model"].astype(str)))),
        "prompt_version": ", ".join(sorted(set(frame["prompt_version"].astype(str)))),
        "anonymised": bool(scorer.anonymised),
        "no_news": bool(items.empty),
        "items": len(items),
        "scored": int((items["status"] == "scored").sum()),
        "rejected": int((items["status"] == "rejected").sum()),
        "cache_hits": cache_hits,
        "calls_made": stats.calls,
        "requests": stats.requests,
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "cost_usd": round(stats.cost_usd, 8),
        "cost_usd_attributed": round(float(attributed.sum()), 8),
        "unpriced_items": int(items["cost_usd"].isna().sum()),
    }
    if reasons:
        metadata["rejected_reasons"] = dict(reasons.most_common(5))
    if stats.usage_missing:
        metadata["usage_missing_requests"] = stats.usage_missing
    return metadata
