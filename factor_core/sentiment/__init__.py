"""Sentiment layer (no Dagster): LLM scoring with structured output, the answer cache, costs,
offline scorers, and the as-of hourly aggregation the cross-section joins on."""

from factor_core.sentiment.aggregate import (
    HOURLY_COLUMNS,
    asof_decayed_mean,
    hourly_asof_sentiment,
    hourly_asof_sentiment_by_symbol,
    required_lookback_days,
)
from factor_core.sentiment.cache import ScoreCache, cache_key, default_cache_path
from factor_core.sentiment.errors import (
    ApiKeyRefused,
    InvalidNewsInput,
    RateLimitTooLong,
    ScoringFailed,
    SentimentError,
)
from factor_core.sentiment.llm import OpenAIScorer
from factor_core.sentiment.offline import NEWSWIRE_MODEL, VADER_MODEL, NewswireScorer, VaderScorer
from factor_core.sentiment.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, daily_cost_summary
from factor_core.sentiment.prompt import PROMPT_VERSION, PromptSettings
from factor_core.sentiment.score import (
    SENTIMENT_COLUMNS,
    SENTIMENT_SCHEMA,
    SentimentPartition,
    ascore_symbol_day,
    score_symbol_day,
    select_scorer,
)

__all__ = [
    "DEFAULT_PRICES",
    "HOURLY_COLUMNS",
    "NEWSWIRE_MODEL",
    "PROMPT_VERSION",
    "SENTIMENT_COLUMNS",
    "SENTIMENT_SCHEMA",
    "VADER_MODEL",
    "ApiKeyRefused",
    "InvalidNewsInput",
    "ModelPrice",
    "NewswireScorer",
    "OpenAIScorer",
    "PriceTable",
    "PromptSettings",
    "RateLimitTooLong",
    "ScoreCache",
    "ScoringFailed",
    "SentimentError",
    "SentimentPartition",
    "VaderScorer",
    "ascore_symbol_day",
    "asof_decayed_mean",
    "cache_key",
    "daily_cost_summary",
    "default_cache_path",
    "hourly_asof_sentiment",
    "hourly_asof_sentiment_by_symbol",
    "required_lookback_days",
    "score_symbol_day",
    "select_scorer",
]
