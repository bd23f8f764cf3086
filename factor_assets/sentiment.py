"""Sentiment layer: per-item scores (``llm_sentiment``), the hourly as-of value (``sentiment_hourly``), the day's cost (``llm_cost``).

* ``llm_sentiment`` (day x symbol) scores every ``news_items`` item of the day
  that mentions the symbol (``factor_core.sentiment.ascore_symbol_days``):
  an OpenAI-compatible LLM when ``OPENAI_API_KEY`` is set, else the offline
  scorer, and every row says which (``model``). A symbol-day without news
  gets one explicit ``no_news`` row. Answers are cached under the data root
  (``llm_cache/sentiment.sqlite``), so re-materializing an unchanged
  partition makes no call. The step runs in the ``llm_api`` pool; all the
  partitions of a run share one bound on requests in flight. If any partition
  fails, none of the run's partitions is stored (the previous versions stay),
  while every answer already received is in the cache: the re-run pays only
  for the rest.
* ``sentiment_hourly`` (day x symbol): 24 rows ``ts``, ``close_time``,
  ``sentiment_score``, ``sentiment_items``; the value on the row of bar ``ts``
  uses only items published strictly before ``close_time`` (decayed mean,
  ``SENTIMENT_HALF_LIFE_MIN``, over ``SENTIMENT_LOOKBACK_H``), read from the
  symbol's ``llm_sentiment`` of the day and of the look-back days before it
  (a partition mapping, never the next day). What the cross-section joins on
  ``(ts, symbol)``.
* ``llm_cost`` (day): tokens and USD per (model, prompt version), summed over
  every symbol's ``llm_sentiment`` of the day: what the day's scores cost,
  stable across re-runs (each ``llm_sentiment`` partition's metadata says
  what *its run* spent).
"""


import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MetadataValue,
    asset,
)

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, default_workers, run_chunks
from factor_assets.day_ranges import consecutive_runs, day_span, shift_day
from factor_assets.news import SENTIMENT_GROUP, newswire_simulator
from factor_assets.partition_keys import run_days, run_partitions
from factor_core.atomic_files import discard_files
from factor_core.partition_store import PartitionedInput, PartitionFileError, PartitionStore, rematerialize_hint
from factor_core.sentiment import (
    ScoreCache,
    ScoringAborted,
    SentimentError,
    cost_to_arrow,
    daily_cost_summary,
    default_cache_path,
    hourly_asof_sentiment,
    required_lookback_days,
    score_symbol_days,
    sentiment_hourly_table,
)
from factor_core.sentiment.score import to_arrow as sentiment_table
from partitions import DAILY, DAY_SYMBOL, SYMBOLS_PARTITION_NAME, previous_days_of_same_symbol
from resources.market_data import MarketDataResource
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions
from resources.sentiment import LLM_POOL, NewsSourcesResource, SentimentScorerResource

#: Days of news scored per batch of concurrent partitions (all symbols of those days at once).
SCORE_DAYS_PER_BATCH = 8
DAYS_PER_CHUNK = 32
#: sentiment_hourly and llm_cost take milliseconds per partition: a worker pool (seconds to start) pays
#: only from this many partitions on; below, the chunks run in the step's own process.
PARALLEL_MIN_PARTITIONS = 64
_HISTORY = {"allow_missing_partitions": True}


def _metadata_value(value: Any) -> MetadataValue:
    if isinstance(value, bool):
        return MetadataValue.bool(value)
    if isinstance(value, int | np.integer):
        return MetadataValue.int(int(value))
    if isinstance(value, float | np.floating):
        return MetadataValue.float(float(value))
    if isinstance(value, dict | list):
        return MetadataValue.json(value)
    return MetadataValue.text(str(value))


def _workers(n_partitions: int) -> int:
    return default_workers() if n_partitions >= PARALLEL_MIN_PARTITIONS else 1


def _failure(failures: dict[str, SentimentError], n_partitions: int) -> Failure:
    """One error for the step: the cause first (not the requests merely not sent because of it)."""
    ordered = sorted(failures.items(), key=lambda kv: (isinstance(kv[1], ScoringAborted), kv[0]))
    cause = str(ordered[0][1]).rstrip(". ") + "."
    shown = ", ".join(key for key, _ in ordered[:8]) + (f" and {len(ordered) - 8} more" if len(ordered) > 8 else "")
    return Failure(
        description=(
            f"llm_sentiment: {len(failures)} of {n_partitions} partition(s) failed ({shown}). {cause} "
            "None of this run's partitions were stored (previous versions unchanged); every answer received "
            "is in the cache, so a re-run pays only for the items not answered."
        ),
        metadata={"failed_partitions": MetadataValue.json([key for key, _ in ordered[:100]]),
                  "error": MetadataValue.text(type(ordered[0][1]).__name__)},
    )


def _llm_sentiment_asset() -> AssetsDefinition:
    @asset(
        name="llm_sentiment",
        group_name=SENTIMENT_GROUP,
        partitions_def=DAY_SYMBOL,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        kinds={"parquet", "openai"},
        # One LLM-calling step at a time across runs (rate limit and budget); raise with
        # `dagster instance concurrency set llm_api N`.
        pool=LLM_POOL,
        automation_condition=keep_fresh(same_day=["news_items"]),
        ins={"news_items": AssetIn()},  # the day's items (every symbol reads its day)
        description=(
            "One row per news item of the day mentioning the symbol: score in [-1, 1], confidence, topics, "
            "rationale, model, prompt_version, tokens, cost_usd (or status=rejected with the reason); one "
            "status=no_news row when there is none. LLM with OPENAI_API_KEY (cached: never paid twice), else the "
            "offline scorer (model lexicon:vader / synthetic:newswire). Schema: docs/sentiment.md."
        ),
    )
    def llm_sentiment(
        context: AssetExecutionContext,
        partition_store: PartitionStoreResource,
        sentiment_scorer: SentimentScorerResource,
        news_sources: NewsSourcesResource,
        market_data: MarketDataResource,
        news_items: PartitionedInput,
    ) -> StagedPartitions:
        store = partition_store.store
        pairs = [(dt.date.fromisoformat(d), s) for d, s in run_partitions(context)]
        registered = list(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
        aliases = news_sources.alias_table(registered)
        newswire = news_sources.newswire([], newswire_simulator(market_data))  # its tone, for the offline scorer
        scorer = sentiment_scorer.scorer(aliases, newswire)
        cache = ScoreCache(default_cache_path(store.root)) if scorer.cacheable else None
        by_day: dict[dt.date, list[str]] = defaultdict(list)
        for day, symbol in pairs:
            by_day[day].append(symbol)
        staged, totals = [], defaultdict(float)
        try:
            days = sorted(by_day)
            for start in range(0, len(days), SCORE_DAYS_PER_BATCH):
                batch = days[start:start + SCORE_DAYS_PER_BATCH]
                news_by_day = {day: news_items.table({"date": day.isoformat()}).to_pandas() for day in batch}
                outcomes = score_symbol_days(news_by_day, [(d, s) for d in batch for s in by_day[d]],
                                             scorer=scorer, cache=cache)
                failures = {f"{d.isoformat()}|{s}": o for (d, s), o in outcomes.items() if isinstance(o, SentimentError)}
                if failures:
                    raise _failure(failures, len(pairs))
                for (day, symbol), part in outcomes.items():
                    dims = {"date": day.isoformat(), "symbol": symbol}
                    staged.append(store.stage("llm_sentiment", dims, sentiment_table(part.frame)))
                    metadata = {k: _metadata_value(v) for k, v in part.metadata.items() if k != "partition"}
                    context.add_asset_metadata(metadata, partition_key=f"{dims['date']}|{symbol}")
                    for key in ("calls_made", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd"):
                        totals[key] += part.metadata[key]
        except BaseException:
            discard_files(staged)
            raise
        context.log.info(
            f"llm_sentiment: {len(pairs)} partition(s) scored by {sentiment_scorer.describe()}: "
            f"{int(totals['calls_made'])} call(s), {int(totals['cache_hits'])} cache hit(s), "
            f"{int(totals['prompt_tokens'])} + {int(totals['completion_tokens'])} tokens, {totals['cost_usd']:.6f} USD"
        )
        return StagedPartitions(staged)

    return llm_sentiment


# --------------------------------------------------------------------------- sentiment_hourly


@dataclass(frozen=True)
class HourlyChunk:
    store: PartitionStore
    llm_sentiment: PartitionedInput
    symbol: str
    days: tuple[str, ...]  # consecutive
    lookback_days: int
    half_life_minutes: float
    lookback_hours: float

    @property
    def partitions(self) -> list[str]:
        return [f"{day}|{self.symbol}" for day in self.days]


def hourly_chunk(chunk: HourlyChunk) -> ChunkResult:
    """The hourly as-of sentiment of a chunk's days, from one read of their scores plus the look-back."""
    first, last, symbol = chunk.days[0], chunk.days[-1], chunk.symbol
    scores = chunk.llm_sentiment.symbol_frame(symbol, day_span(shift_day(first, -chunk.lookback_days), last))
    have = set(scores["date"]) if not scores.empty else set()
    missing = [d for d in chunk.days if d not in have]
    if missing:
        raise PartitionFileError(
            f"llm_sentiment of {symbol} has no partition for {missing[:5]}; materialize it with: "
            f"{rematerialize_hint('llm_sentiment', {'date': missing[0], 'symbol': symbol})}"
        )
    result = ChunkResult(staged={"sentiment_hourly": []}, metadata={"sentiment_hourly": {}})
    for day in chunk.days:
        window = day_span(shift_day(day, -chunk.lookback_days), day)
        rows = scores[scores["date"].isin(window)]
        hourly = hourly_asof_sentiment(rows, dt.date.fromisoformat(day), half_life_minutes=chunk.half_life_minutes,
                                       lookback_hours=chunk.lookback_hours)
        dims = {"date": day, "symbol": symbol}
        result.staged["sentiment_hourly"].append(chunk.store.stage("sentiment_hourly", dims, sentiment_hourly_table(hourly)))
        today = rows[rows["date"] == day]
        metadata = {
            "rows": MetadataValue.int(len(hourly)),
            "hours_with_sentiment": MetadataValue.int(int(hourly["sentiment"].notna().sum())),
            "scored_items_of_day": MetadataValue.int(int((today["status"] == "scored").sum())),
        }
        absent = [d for d in window[:-1] if d not in have and chunk.llm_sentiment.covers({"date": d, "symbol": symbol})]
        if absent:
            metadata["lookback_days_missing"] = MetadataValue.json(absent)
            metadata["note"] = MetadataValue.text("the first hours see no news of the missing look-back day(s)")
        result.metadata["sentiment_hourly"][f"{day}|{symbol}"] = metadata
    return result


def _sentiment_hourly_asset(lookback_hours: float, half_life_minutes: float) -> AssetsDefinition:
    lookback_days = required_lookback_days(lookback_hours)

    @asset(
        name="sentiment_hourly",
        group_name=SENTIMENT_GROUP,
        partitions_def=DAY_SYMBOL,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        kinds={"parquet"},
        automation_condition=keep_fresh(same_partition=["llm_sentiment"]),
        ins={
            # The day itself (required) and the look-back days before it; never the next day.
            "llm_sentiment": AssetIn(
                partition_mapping=previous_days_of_same_symbol(lookback_days, include_current=True), metadata=_HISTORY
            ),
        },
        description=(
            "Hourly as-of sentiment, 24 rows per day x symbol: ts (bar open), close_time = ts + 1h, "
            "sentiment_score (decayed mean, half-life "
            f"{half_life_minutes:g} min, of the items scored in the {lookback_hours:g} h before close_time, "
            "published strictly before it; null without any) and sentiment_items. The cross-section joins it on "
            "(ts, symbol) like any factor."
        ),
    )
    def sentiment_hourly(
        context: AssetExecutionContext, partition_store: PartitionStoreResource, llm_sentiment: PartitionedInput
    ) -> StagedPartitions:
        by_symbol: dict[str, list[str]] = defaultdict(list)
        partitions = run_partitions(context)
        for day, symbol in partitions:
            by_symbol[symbol].append(day)
        chunks = [
            HourlyChunk(partition_store.store, llm_sentiment, symbol, run, lookback_days, half_life_minutes, lookback_hours)
            for symbol, days in by_symbol.items()
            for run in consecutive_runs(days, DAYS_PER_CHUNK)
        ]
        return run_chunks(context, "sentiment_hourly", hourly_chunk, chunks,
                          workers=_workers(len(partitions))).output("sentiment_hourly")

    return sentiment_hourly


# --------------------------------------------------------------------------- llm_cost


@dataclass(frozen=True)
class CostChunk:
    store: PartitionStore
    llm_sentiment: PartitionedInput
    days: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)


def cost_chunk(chunk: CostChunk) -> ChunkResult:
    result = ChunkResult(staged={"llm_cost": []}, metadata={"llm_cost": {}})
    for day in chunk.days:
        keys = [d for d in chunk.llm_sentiment.dims if d["date"] == day]
        frame = chunk.llm_sentiment.frame(keys)
        summary = daily_cost_summary(frame)
        result.staged["llm_cost"].append(chunk.store.stage("llm_cost", {"date": day}, cost_to_arrow(summary)))
        present = set(frame["symbol"]) if not frame.empty else set()
        result.metadata["llm_cost"][day] = {
            "cost_usd": MetadataValue.float(float(summary["cost_usd"].sum())),
            "prompt_tokens": MetadataValue.int(int(summary["prompt_tokens"].sum())),
            "completion_tokens": MetadataValue.int(int(summary["completion_tokens"].sum())),
            "items": MetadataValue.int(int(summary["items"].sum())),
            "cache_hits": MetadataValue.int(int(summary["cache_hits"].sum())),
            "unpriced_items": MetadataValue.int(int(summary["unpriced_items"].sum())),
            "models": MetadataValue.json(sorted(summary["model"].astype(str).unique().tolist())),
            "symbols": MetadataValue.int(len(present)),
            "symbols_without_llm_sentiment": MetadataValue.int(len({d["symbol"] for d in keys} - present)),
        }
    return result


def _llm_cost_asset() -> AssetsDefinition:
    @asset(
        name="llm_cost",
        group_name=SENTIMENT_GROUP,
        partitions_def=DAILY,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        kinds={"parquet"},
        automation_condition=keep_fresh(listed_symbols=["llm_sentiment"], per_symbol=False),
        ins={"llm_sentiment": AssetIn(metadata=_HISTORY)},  # every symbol's partition of the day that exists
        description=(
            "LLM cost of the day per (model, prompt_version): symbols, items, scored, rejected, no-news rows, cache "
            "hits, prompt and completion tokens, cost_usd (priced items) and unpriced_items, summed over every "
            "symbol's llm_sentiment of the day."
        ),
    )
    def llm_cost(
        context: AssetExecutionContext, partition_store: PartitionStoreResource, llm_sentiment: PartitionedInput
    ) -> StagedPartitions:
        days = run_days(context)
        chunks = [CostChunk(partition_store.store, llm_sentiment, run) for run in consecutive_runs(days, DAYS_PER_CHUNK)]
        return run_chunks(context, "llm_cost", cost_chunk, chunks,
                          workers=_workers(len(llm_sentiment.keys))).output("llm_cost")

    return llm_cost


def build_sentiment_assets(lookback_hours: float = 24.0, half_life_minutes: float = 120.0) -> list[AssetsDefinition]:
    """``llm_sentiment``, ``sentiment_hourly`` (its look-back mapping follows ``lookback_hours``) and ``llm_cost``."""
    if not half_life_minutes > 0:
        raise ValueError(f"SENTIMENT_HALF_LIFE_MIN={half_life_minutes!r}: must be > 0")
    if not lookback_hours > 0:
        raise ValueError(f"SENTIMENT_LOOKBACK_H={lookback_hours!r}: must be > 0")
    return [_llm_sentiment_asset(), _sentiment_hourly_asset(lookback_hours, half_life_minutes), _llm_cost_asset()]
