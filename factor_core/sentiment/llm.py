"""The LLM scorer: the official ``openai`` async client against any OpenAI-compatible endpoint.

Configuration follows the client's conventions (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``) plus ``SENTIMENT_MODEL``; this module takes them as
arguments and never reads the environment. The key lives only inside the
client; it is absent from ``repr``, messages, rows and the cache.

Requests: chat completions with structured output (``response_format``
JSON schema, see :mod:`factor_core.sentiment.schema`), temperature 0, no
tools, ``items_per_request`` items each (1 by default: the literature scores
headlines one by one, and the flat answer is the simplest to follow).

Retries are tenacity's, not the client's (``max_retries=0`` on the client):
the client honours Retry-After only up to its own fixed limit and retries
silently; here every attempt is counted and a Retry-After longer than
``max_wait_s`` fails at once with a message saying so.

* 429: wait what ``Retry-After`` (or ``retry-after-ms``) says, else back off;
* 5xx, 408, 409, timeouts (``timeout_s`` per call) and connection errors:
  exponential backoff with full jitter, ``backoff_base_s * 2**n`` capped at
  ``backoff_cap_s``;
* at most ``max_attempts`` calls per request, then :class:`ScoringFailed`;
* 401 / 403: :class:`ApiKeyRefused` at once ("the key was refused at <base
  URL>"), and requests not yet sent are not sent;
* other 4xx (e.g. an endpoint without structured output): ScoringFailed at once.

At most ``max_concurrency`` requests are in flight per scorer and event loop,
however many partitions are scored at once (``ascore_symbol_days`` runs a
step's partitions concurrently through one scorer; the Dagster ``llm_api``
pool bounds the number of steps doing this). Until one request has been
answered, requests go one at a time, so a refused key or a wrong URL costs one
call, not a volley. Once a request has failed for good (a refused key,
retries exhausted, a Retry-After over the budget), requests not yet sent are
not sent (:class:`ScoringAborted`); those in flight finish and their answers
are kept.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from factor_core.news.aliases import AliasTable
from factor_core.sentiment.base import BatchCallback, ItemResult, ItemToScore, ScoreStats
from factor_core.sentiment.cache import cache_key
from factor_core.sentiment.errors import ApiKeyRefused, RateLimitTooLong, ScoringAborted, ScoringFailed, redact
from factor_core.sentiment.pricing import PriceTable, allocate
from factor_core.sentiment.prompt import PromptSettings, messages, prompt_fingerprint, render_item
from factor_core.sentiment.schema import Verdict, rejection, response_format, validate_batch, validate_single

Sleep = Callable[[float], Awaitable[None]]
_RETRY_STATUSES = (408, 409)


class Secret:
    """A string that prints as ``<hidden>`` (repr, str, vars() dumps, tracebacks' locals)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a run's events or another process
        raise TypeError("a Secret cannot be pickled")


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds a 429's ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date) asks for."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            parsed = email.utils.parsedate_tz(value) if name == "retry-after" else None
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


class _SharedLimits:
    """What every ``score`` call of one scorer in one event loop shares (see the module docstring)."""

    def __init__(self, max_concurrency: int):
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.first = asyncio.Lock()  # held by the lone request sent before any was answered
        self.answered = False
        self.failure: SentimentFailure | None = None  # the first request that failed for good

    def check(self) -> None:
        """Raise instead of sending when an earlier request failed for good."""
        if self.failure is None:
            return
        if isinstance(self.failure, ApiKeyRefused):
            raise ApiKeyRefused(str(self.failure))
        raise ScoringAborted(f"not sent: an earlier request failed ({self.failure})")


SentimentFailure = ApiKeyRefused | RateLimitTooLong | ScoringFailed


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.RateLimitError | openai.InternalServerError | openai.APIConnectionError):
        return True  # APIConnectionError includes APITimeoutError
    return isinstance(exc, openai.APIStatusError) and exc.status_code in _RETRY_STATUSES


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class OpenAIScorer:
    """Scores items through ``chat.completions`` of an OpenAI-compatible endpoint."""

    cacheable = True

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        aliases: AliasTable,
        prompt: PromptSettings = PromptSettings(),
        prices: PriceTable | None = None,
        timeout_s: float = 30.0,
        max_concurrency: int = 4,
        max_attempts: int = 4,
        max_wait_s: float = 120.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        items_per_request: int = 1,
        temperature: float | None = 0.0,
        max_completion_tokens_per_item: int | None = 300,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        if not api_key:
            raise ValueError("OpenAIScorer needs an API key; without one use the offline scorer (lexicon:vader)")
        if not model or not model.strip():
            raise ValueError("SENTIMENT_MODEL is empty: name the model to call")
        if max_concurrency < 1 or max_attempts < 1 or items_per_request < 1 or timeout_s <= 0:
            raise ValueError("max_concurrency, max_attempts, items_per_request must be >= 1 and timeout_s > 0")
        self._api_key = Secret(api_key)
        self.model = model.strip()
        self.base_url = base_url.rstrip("/") if base_url else "https://api.openai.com/v1"
        self.aliases = aliases
        self.prompt = prompt
        self.prompt_version = prompt.prompt_version
        self.anonymised = prompt.anonymise
        self.prices = prices or PriceTable()
        self.timeout_s, self.max_concurrency, self.max_attempts = timeout_s, max_concurrency, max_attempts
        self.max_wait_s, self.backoff_base_s, self.backoff_cap_s = max_wait_s, backoff_base_s, backoff_cap_s
        self.items_per_request = items_per_request
        self.temperature = temperature
        self.max_completion_tokens_per_item = max_completion_tokens_per_item
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._fingerprint = prompt_fingerprint()
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedLimits] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"OpenAIScorer(model={self.model!r}, base_url={self.base_url!r}, api_key=<hidden>)"

    # ------------------------------------------------------------------ rendering and keys
    def _render(self, item: ItemToScore) -> tuple[str, str]:
        return render_item(item.title, item.text, item.symbol, self.aliases, self.prompt)

    def cache_key(self, item: ItemToScore) -> str:
        title, text = self._render(item)
        return cache_key(
            model=self.model, prompt_version=self.prompt_version, prompt_fingerprint=self._fingerprint,
            anonymise=self.prompt.anonymise, neutral_token=self.prompt.neutral_token,
            symbol=item.symbol, title=title, text=text,
        )

    # ------------------------------------------------------------------ scoring
    def _shared_limits(self) -> _SharedLimits:
        loop = asyncio.get_running_loop()
        limits = self._limits.get(loop)
        if limits is None:
            limits = self._limits[loop] = _SharedLimits(self.max_concurrency)
        return limits

    async def score(self, items: Sequence[ItemToScore], on_batch: BatchCallback, stats: ScoreStats) -> list[ItemResult]:
        """Results in the order of ``items``; raises on the first request that fails for good
        (after the other in-flight requests finished and reported their batches)."""
        batches = self._batches(items)
        results: list[ItemResult | None] = [None] * len(items)
        limits = self._shared_limits()
        client = openai.AsyncOpenAI(api_key=self._api_key.reveal(), base_url=self.base_url, timeout=self.timeout_s,
                                    max_retries=0)
        try:
            async def send(batch: list[int]) -> None:
                limits.check()
                try:
                    batch_results = await self._score_batch(client, [items[i] for i in batch], stats)
                except (ApiKeyRefused, RateLimitTooLong, ScoringFailed) as exc:
                    if limits.failure is None:
                        limits.failure = exc
                    raise
                limits.answered = True
                for i, result in zip(batch, batch_results):
                    results[i] = result
                on_batch([(items[i], results[i]) for i in batch])  # type: ignore[misc]

            async def run(batch: list[int]) -> None:
                async with limits.semaphore:
                    if not limits.answered:
                        # Nothing answered yet: one request at a time, so a refused key or a wrong URL
                        # costs one call, not a volley (across every partition scored concurrently).
                        async with limits.first:
                            if not limits.answered:
                                return await send(batch)
                    await send(batch)

            outcomes = await asyncio.gather(*(run(b) for b in batches), return_exceptions=True)
        finally:
            await client.close()
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            # The cause, not the requests that were merely not sent because of it.
            first = next((f for f in failures if isinstance(f, ApiKeyRefused)), None) \
                or next((f for f in failures if not isinstance(f, ScoringAborted)), failures[0])
            raise first
        return results  # type: ignore[return-value]

    def _batches(self, items: Sequence[ItemToScore]) -> list[list[int]]:
        """Consecutive groups of ``items_per_request`` items of the same symbol (one target per prompt)."""
        batches: list[list[int]] = []
        for i, item in enumerate(items):
            if batches and len(batches[-1]) < self.items_per_request and items[batches[-1][0]].symbol == item.symbol:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _wait_s(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        waited = retry_after_s(exc) if isinstance(exc, openai.RateLimitError) else None
        if waited is None:
            ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (state.attempt_number - 1))
            waited = self._rng.uniform(0.0, ceiling)
        return waited

    def _should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, openai.RateLimitError):
            wait = retry_after_s(exc)
            if wait is not None and wait > self.max_wait_s:
                return False
        return _transient(exc)

    async def _call(self, client: openai.AsyncOpenAI, request: dict, stats: ScoreStats):
        """One request with retries; the client's exceptions are turned into ours (key redacted)."""
        failure: tuple[type[Exception], str] | None = None

        def before_sleep(state: RetryCallState) -> None:
            stats.retries += 1
            stats.waited_s += float(state.next_action.sleep) if state.next_action else 0.0

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(self._should_retry),
                stop=stop_after_attempt(self.max_attempts),
                wait=self._wait_s,
                sleep=self._sleep,
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    stats.calls += 1
                    try:
                        return await client.chat.completions.create(**request)
                    except openai.RateLimitError:
                        stats.rate_limited += 1
                        raise
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            failure = (ApiKeyRefused, (
                f"the API key was refused (HTTP {exc.status_code}) at {self.base_url} for model {self.model!r}; "
                "set OPENAI_API_KEY to a key that this endpoint accepts (and OPENAI_BASE_URL to the right endpoint)"
            ))
        except openai.RateLimitError as exc:
            wait = retry_after_s(exc)
            if wait is not None and wait > self.max_wait_s:
                failure = (RateLimitTooLong, (
                    f"{self.base_url} rate-limited model {self.model!r} (HTTP 429) with Retry-After {wait:.0f} s, "
                    f"longer than max_wait_s={self.max_wait_s:.0f} s; retry later or raise the budget"
                ))
            else:
                failure = (ScoringFailed, f"{self.base_url} kept answering HTTP 429 after {self.max_attempts} attempt(s)")
        except openai.APIError as exc:
            if _transient(exc):
                what = f"timed out after {self.timeout_s:g} s" if isinstance(exc, openai.APITimeoutError) else _describe(exc)
                failure = (ScoringFailed, (
                    f"request to {self.base_url} (model {self.model!r}) {what}, "
                    f"{self.max_attempts} attempt(s) made"
                ))
            elif isinstance(exc, openai.NotFoundError):
                failure = (ScoringFailed, (
                    f"{self.base_url} answered HTTP 404 for model {self.model!r}: {_describe(exc)}; "
                    "check SENTIMENT_MODEL and OPENAI_BASE_URL (it usually ends in /v1)"
                ))
            else:
                failure = (ScoringFailed, f"{self.base_url} refused the request for model {self.model!r}: {_describe(exc)}")
        # Raised here, outside the handlers: the client's exception (server text) is not chained.
        if failure is None:  # pragma: no cover - the retry loop either returns or raises
            raise ScoringFailed(f"request to {self.base_url} ended without an answer")
        error_type, message = failure
        raise error_type(redact(message, self._api_key.reveal()))

    async def _score_batch(self, client: openai.AsyncOpenAI, batch: Sequence[ItemToScore], stats: ScoreStats) -> list[ItemResult]:
        rendered = [self._render(item) for item in batch]
        request: dict = {
            "model": self.model,
            "messages": messages(rendered, batch[0].symbol, self.aliases, self.prompt),
            "response_format": response_format(len(batch)),
        }
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_completion_tokens_per_item is not None:
            request["max_completion_tokens"] = self.max_completion_tokens_per_item * len(batch)
        response = await self._call(client, request, stats)
        stats.requests += 1
        verdicts = self._verdicts(response, len(batch))
        return self._costed(response, verdicts, rendered, stats)

    @staticmethod
    def _verdicts(response, n: int) -> list[Verdict]:
        choices = getattr(response, "choices", None) or []
        if not choices:
            return [rejection("the answer has no choices")] * n
        message = choices[0].message
        if getattr(message, "tool_calls", None):
            return [rejection("the answer asked for tool calls; none are offered and nothing was executed")] * n
        if getattr(message, "refusal", None):
            return [rejection(f"the model refused: {message.refusal}")] * n
        content = message.content
        if choices[0].finish_reason == "length":
            return [rejection("the answer was cut at the completion token limit")] * n
        if n == 1:
            return [validate_single(content)]
        by_id = validate_batch(content, list(range(1, n + 1)))
        return [by_id[i] for i in range(1, n + 1)]

    def _costed(self, response, verdicts: list[Verdict], rendered, stats: ScoreStats) -> list[ItemResult]:
        usage = getattr(response, "usage", None)
        prompt_total = getattr(usage, "prompt_tokens", None) if usage else None
        completion_total = getattr(usage, "completion_tokens", None) if usage else None
        if not isinstance(prompt_total, int) or not isinstance(completion_total, int):
            stats.usage_missing += 1
            return [ItemResult(v, None, None, None) for v in verdicts]
        stats.prompt_tokens += prompt_total
        stats.completion_tokens += completion_total
        price = self.prices.price(self.model)
        if price is None:
            stats.unpriced_requests += 1
        else:
            stats.cost_usd += price.cost_usd(prompt_total, completion_total)
        prompt_parts = allocate(prompt_total, [len(t) + len(x) + 1 for t, x in rendered])
        completion_parts = allocate(completion_total, [1.0] * len(verdicts))
        return [
            ItemResult(v, p, c, price.cost_usd(p, c) if price is not None else None)
            for v, p, c in zip(verdicts, prompt_parts, completion_parts)
        ]
