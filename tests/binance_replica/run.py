"""Blocking calls of the async Binance clients for tests: each runs one event loop with ``asyncio.run``."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any, Awaitable, Callable, Iterable

import pyarrow as pa

from factor_core.binance import ArchiveClient, RestClient
from factor_core.timeutil import as_date


def archive_day(base_url: str, dataset: str, symbol: str, day: date | str, **client_kwargs) -> pa.Table:
    """One daily archive file through a fresh :class:`ArchiveClient`."""

    async def go() -> pa.Table:
        async with ArchiveClient(base_url, **client_kwargs) as client:
            return await client.fetch_day(dataset, symbol, day)

    return asyncio.run(go())


def archive_days(base_url: str, dataset: str, symbol: str, days: Iterable[date | str], *,
                 return_exceptions: bool = False, **client_kwargs) -> dict[date, Any]:
    """Several days concurrently over one client; a failed day maps to its exception when asked."""
    days = [as_date(d) for d in days]

    async def go() -> list:
        async with ArchiveClient(base_url, **client_kwargs) as client:
            return await asyncio.gather(*(client.fetch_day(dataset, symbol, d) for d in days),
                                        return_exceptions=return_exceptions)

    return dict(zip(days, asyncio.run(go())))


def archive_month(base_url: str, dataset: str, symbol: str, year: int, month: int, **client_kwargs) -> pa.Table:
    async def go() -> pa.Table:
        async with ArchiveClient(base_url, **client_kwargs) as client:
            return await client.fetch_month(dataset, symbol, year, month)

    return asyncio.run(go())


def rest_call(fn: Callable[[RestClient], Awaitable[Any]], *, api_url: str, fapi_url: str | None = None,
              **client_kwargs) -> Any:
    """``fn(client)`` with a fresh :class:`RestClient` (both hosts on the replica by default)."""

    async def go() -> Any:
        async with RestClient(api_url, fapi_url or api_url, **client_kwargs) as client:
            return await fn(client)

    return asyncio.run(go())
