"""The pipeline's one retry policy, built on tenacity.

Retry while a failure matches a predicate, sleeping between attempts with
jittered exponential backoff ("full jitter": the wait before retry *n* is
drawn from ``uniform(0, min(cap, base * 2**n))``, so a fleet of workers does
not retry in lock-step), until an attempt bound or a sleep budget is reached.
A failure may also carry its own wait (an HTTP ``Retry-After``, the rest of a
rate-limit window): ``wait_hint`` returns it, it replaces the backoff and it
does not count as an attempt, but it does count against the budget, and a
hinted wait that would overrun the budget stops at once, without sleeping.

Two callers use it today: the Binance archive and REST clients (async), and
any blocking caller, e.g. waiting for DuckDB's single-writer lock::

    from factor_core.retry import retrying

    def is_lock_conflict(exc: BaseException) -> bool:
        return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()

    connection = retrying(is_lock_conflict, deadline_s=30)(duckdb.connect, path)
    # or, around a block:
    for attempt in retrying(is_lock_conflict, deadline_s=30):
        with attempt:
            connection = duckdb.connect(path)

When the policy gives up, the last exception is re-raised unchanged (tenacity's
``reraise=True``), so callers keep their own error types and messages.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import tenacity

Predicate = Callable[[BaseException], bool]
WaitHint = Callable[[BaseException], "float | None"]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and backoff of the retry loop; ``max_attempts`` counts every un-hinted attempt
    (1 = no retry, None = unbounded); ``deadline_s`` bounds the total time slept (None = unbounded)."""

    max_attempts: int | None = 5
    deadline_s: float | None = None
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1 or None, got {self.max_attempts}")
        if self.max_attempts is None and self.deadline_s is None:
            raise ValueError("a retry policy needs max_attempts or deadline_s, or it may never stop")


class _Stop(tenacity.stop.stop_base):
    """Stop after ``max_attempts`` un-hinted failures, or before a sleep that would take the
    total time slept past ``deadline_s``. Stateful per call: build one per retried call."""

    def __init__(self, policy: RetryPolicy, wait_hint: WaitHint | None):
        self.policy, self.wait_hint = policy, wait_hint
        self.failures = 0  # attempts that failed without a hinted wait
        self.exhausted_budget = False  # True when the deadline (not the attempt bound) stopped it

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if exc is None or _hint(self.wait_hint, exc) is None:
            self.failures += 1
            if self.policy.max_attempts is not None and self.failures >= self.policy.max_attempts:
                return True
        deadline = self.policy.deadline_s
        if deadline is not None and retry_state.idle_for + retry_state.upcoming_sleep > deadline:
            self.exhausted_budget = True
            return True
        return False


class _Wait(tenacity.wait.wait_base):
    """The failure's own wait when it has one, else jittered exponential backoff."""

    def __init__(self, policy: RetryPolicy, wait_hint: WaitHint | None):
        self.wait_hint = wait_hint
        self.backoff = tenacity.wait_random_exponential(
            multiplier=policy.backoff_base_s, max=policy.backoff_cap_s
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = _hint(self.wait_hint, exc) if exc is not None else None
        return max(0.0, hinted) if hinted is not None else self.backoff(retry_state)


def _hint(wait_hint: WaitHint | None, exc: BaseException) -> float | None:
    return wait_hint(exc) if wait_hint is not None else None


def _options(predicate: Predicate, policy: RetryPolicy, wait_hint: WaitHint | None) -> dict:
    return {
        "retry": tenacity.retry_if_exception(predicate),
        "stop": _Stop(policy, wait_hint),
        "wait": _Wait(policy, wait_hint),
        "reraise": True,
    }


def retrying(
    predicate: Predicate,
    *,
    deadline_s: float | None = None,
    max_attempts: int | None = None,
    backoff_base_s: float = 0.05,
    backoff_cap_s: float = 2.0,
    wait_hint: WaitHint | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tenacity.Retrying:
    """A blocking retry loop: retry while ``predicate(exc)`` holds, until ``deadline_s`` seconds
    have been slept or ``max_attempts`` attempts made (at least one of them must be set).

    Use it as ``retrying(...)(fn, *args)`` or ``for attempt in retrying(...): with attempt: ...``.
    ``stop.failures`` on the returned object counts the failed attempts afterwards.
    """
    policy = RetryPolicy(max_attempts, deadline_s, backoff_base_s, backoff_cap_s)
    return tenacity.Retrying(sleep=sleep, **_options(predicate, policy, wait_hint))


def async_retrying(
    predicate: Predicate,
    policy: RetryPolicy,
    *,
    wait_hint: WaitHint | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tenacity.AsyncRetrying:
    """The same loop for coroutines: ``async for attempt in async_retrying(...): with attempt: ...``.

    ``sleep`` is injectable so tests advance a fake clock instead of waiting.
    """
    return tenacity.AsyncRetrying(sleep=sleep, **_options(predicate, policy, wait_hint))


__all__ = ["RetryPolicy", "async_retrying", "retrying"]
