"""Sentiment layer (no Dagster): LLM scoring with structured output, the answer cache, costs,
offline scorers, and the as-of hourly aggregation the cross-section joins on."""

from factor_core.sentiment.aggregate import (
    HOURLY_COLUMNS,
    SENTIMENT_HOURLY_COLUMNS,
    SENTIMENT_HOURLY_SCHEMA,
    asof_decayed_mean,
    hourly_asof_sentiment,
    hourly_asof_sentiment_by_symbol,
    required_lookback_days,
    sentiment_hourly_table,
)
from factor_core.sentiment.cache import ScoreCache, cache_key, default_cache_path
from factor_core.sentiment.errors import (
    ApiKeyRefused,
    InvalidNewsInput,
    RateLimitTooLong,
    ScoringAborted,
    ScoringFailed,
    SentimentError,
)
from factor_core.sentiment.llm import OpenAIScorer
from factor_core.sentiment.offline import NEWSWIRE_MODEL, VADER_MODEL, NewswireScorer, OfflineScorer, VaderScorer
from factor_core.sentiment.pricing import (
    DEFAULT_PRICES,
    LLM_COST_SCHEMA,
    ModelPrice,
    PriceTable,
    cost_to_arrow,
    daily_cost_summary,
)
from factor_core.sentiment.prompt import PROMPT_VERSION, PromptSettings
from factor_core.sentiment.score import (
    SENTIMENT_COLUMNS,
    SENTIMENT_SCHEMA,
    SentimentPartition,
    ascore_symbol_day,
    ascore_symbol_days,
    score_symbol_day,
    score_symbol_days,
    select_scorer,
)

__all__ = [
    "DEFAULT_PRICES",
    "HOURLY_COLUMNS",
    "LLM_COST_SCHEMA",
    "NEWSWIRE_MODEL",
    "PROMPT_VERSION",
    "SENTIMENT_COLUMNS",
    "SENTIMENT_HOURLY_COLUMNS",
    "SENTIMENT_HOURLY_SCHEMA",
    "SENTIMENT_SCHEMA",
    "VADER_MODEL",
    "ApiKeyRefused",
    "InvalidNewsInput",
    "ModelPrice",
    "NewswireScorer",
    "OfflineScorer",
    "OpenAIScorer",
    "PriceTable",
    "PromptSettings",
    "RateLimitTooLong",
    "ScoreCache",
    "ScoringAborted",
    "ScoringFailed",
    "SentimentError",
    "SentimentPartition",
    "VaderScorer",
    "ascore_symbol_day",
    "ascore_symbol_days",
    "asof_decayed_mean",
    "cache_key",
    "cost_to_arrow",
    "daily_cost_summary",
    "default_cache_path",
    "hourly_asof_sentiment",
    "hourly_asof_sentiment_by_symbol",
    "required_lookback_days",
    "score_symbol_day",
    "score_symbol_days",
    "select_scorer",
    "sentiment_hourly_table",
]
