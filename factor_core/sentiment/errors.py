"""Exception types of the sentiment layer.

Messages name the partition, the base URL and the model, and say what to
do; they never contain the API key (``redact`` scrubs it from any text a
server sent back, and errors are raised outside the handler of the client's
exception so that exception, whose text is the server's, is not chained).
"""

from __future__ import annotations


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    if secret:
        text = text.replace(secret, "***")
    return text


class SentimentError(Exception):
    """Base class of every error raised by ``factor_core.sentiment``."""


class ApiKeyRefused(SentimentError):
    """HTTP 401 / 403: the endpoint refused the configured key. Never retried."""


class RateLimitTooLong(SentimentError):
    """HTTP 429 with a Retry-After longer than the configured budget (``max_wait_s``)."""


class ScoringFailed(SentimentError):
    """A request that failed for good: retries exhausted, a timeout, or a refused request."""


class ScoringAborted(ScoringFailed):
    """A request that was not sent because an earlier request of the same step failed for good."""


class InvalidNewsInput(SentimentError, ValueError):
    """A ``news_items`` frame that does not fit the partition being scored."""
