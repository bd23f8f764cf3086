"""Shared HTTP plumbing: a borrowed-or-owned session, and the retry policy (exponential backoff, full jitter)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import aiohttp

Sleep = Callable[[float], Awaitable[None]]

#: Transport-level failures worth retrying: connection refused/reset, server
#: disconnects, truncated bodies and (read/connect) timeouts.
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,  # includes ServerDisconnectedError, ClientOSError, ServerTimeoutError
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
    ConnectionResetError,
)


class OwnedSession:
    """Async context manager over an aiohttp session the caller passed in, or one this client owns.

    Subclasses set ``_session`` (None unless borrowed), ``_owns_session`` and
    ``_session_timeout`` in their ``__init__``.
    """

    _session: aiohttp.ClientSession | None
    _owns_session: bool
    _session_timeout: aiohttp.ClientTimeout

    async def __aenter__(self):
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._session_timeout)
            self._owns_session = True
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False


@dataclass
class RetryPolicy:
    """Bounded retries for 5xx answers and transport errors.

    ``max_attempts`` counts every attempt (1 = no retry). The wait before retry
    ``n`` (0-based) is drawn uniformly from ``[0, min(cap, base * 2**n)]``
    ("full jitter"), so a fleet of workers does not retry in lock-step.
    """

    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, retry_index: int) -> float:
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2**retry_index))
        return self.rng.uniform(0.0, ceiling)


def describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def snippet(body: bytes | str, limit: int = 200) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = body.strip()
    return body if len(body) <= limit else body[:limit] + "..."
