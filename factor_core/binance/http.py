"""HTTP plumbing shared by the archive and REST clients: a borrowed-or-owned session,
which failures are transient, and short renderings of errors and bodies."""

from __future__ import annotations

import asyncio

import aiohttp

#: Transport-level failures worth retrying: connection refused/reset, server
#: disconnects, truncated bodies and (read/connect) timeouts.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,  # includes ServerDisconnectedError, ClientOSError, ServerTimeoutError
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
    ConnectionResetError,
)


class ServerError(Exception):
    """An HTTP 5xx answer: transient, retried with backoff (never leaves the clients)."""

    def __init__(self, status: int, body: bytes):
        self.status, self.body = status, body
        super().__init__(f"HTTP {status}: {snippet(body)}")


def is_transient(exc: BaseException) -> bool:
    """Retry predicate of both clients: 5xx answers and transport errors."""
    return isinstance(exc, (ServerError, *TRANSPORT_ERRORS))


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


def describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def snippet(body: bytes | str, limit: int = 200) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = body.strip()
    return body if len(body) <= limit else body[:limit] + "..."
