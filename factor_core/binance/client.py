"""Async downloader for data.binance.vision: checksum-verified zips, parsed off the event loop."""

from __future__ import annotations

import asyncio
from datetime import date

import aiohttp
import pyarrow as pa

from factor_core.retry import RetryPolicy, async_retrying
from factor_core.schemas import validate_symbol
from factor_core.timeutil import as_date

from .checksum import verify_checksum
from .datasets import Dataset, get_dataset
from .errors import ChecksumMissing, NotAvailableYet, RequestFailed
from .http import TRANSPORT_ERRORS, OwnedSession, ServerError, describe_exception, is_transient, snippet
from .parse import parse_zip
from .urls import DEFAULT_ARCHIVE_URL, archive_url, month_of


class ArchiveClient(OwnedSession):
    """Async downloader for data.binance.vision with checksum verification.

    One ``aiohttp.ClientSession`` per run: pass ``session=`` or use the client as
    an async context manager (it then owns and closes its session). At most
    ``max_concurrency`` downloads are in flight. 5xx answers, timeouts and
    connection resets are retried per ``retry`` (:mod:`factor_core.retry`); 404
    raises :class:`NotAvailableYet` at once.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_ARCHIVE_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        max_concurrency: int = 8,
        timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        sleep=asyncio.sleep,
        parse_threads: bool = True,
    ):
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = False
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._timeout = timeout or aiohttp.ClientTimeout(total=None, connect=30, sock_read=60)
        self._session_timeout = self._timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.parse_threads = parse_threads

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ArchiveClient has no session: use 'async with ArchiveClient(...)'")
        return self._session

    async def get_bytes(self, url: str) -> bytes:
        """GET ``url`` -> body. 404 -> NotAvailableYet; 5xx/transport errors retried."""
        retrying = async_retrying(is_transient, self.retry, sleep=self._sleep)
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_once(url)
        except (ServerError, *TRANSPORT_ERRORS) as exc:
            detail = str(exc) if isinstance(exc, ServerError) else describe_exception(exc)
            raise RequestFailed(f"GET {url} failed after {retrying.stop.failures} attempt(s): {detail}", exc) from exc
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _get_once(self, url: str) -> bytes:
        async with self._semaphore:
            async with self.session.get(url, timeout=self._timeout) as resp:
                if resp.status == 404:
                    raise NotAvailableYet(url)
                body = await resp.read()
                if resp.status >= 500:
                    raise ServerError(resp.status, body)
                if resp.status != 200:
                    raise RequestFailed(f"GET {url}: HTTP {resp.status}: {snippet(body)}")
                return body

    async def published(self, dataset: str | Dataset, symbol: str, day: date | str) -> bool:
        """Whether the archive has published ``symbol``'s file of ``day``: a probe of its small
        ``.CHECKSUM`` file (published together with the zip), never the zip itself."""
        try:
            await self.get_bytes(archive_url(dataset, symbol, day, self.base_url) + ".CHECKSUM")
        except NotAvailableYet:
            return False
        return True

    async def download_verified(self, url: str) -> tuple[bytes, str]:
        """Download a zip and its ``.CHECKSUM``; return (bytes, sha256) once they agree."""
        data_r, sum_r = await asyncio.gather(
            self.get_bytes(url), self.get_bytes(url + ".CHECKSUM"), return_exceptions=True
        )
        if isinstance(data_r, BaseException):
            raise data_r
        if isinstance(sum_r, NotAvailableYet):
            raise ChecksumMissing(url, url + ".CHECKSUM")
        if isinstance(sum_r, BaseException):
            raise sum_r
        return data_r, verify_checksum(data_r, sum_r, url=url)

    async def fetch(self, dataset: str | Dataset, symbol: str, when) -> pa.Table:
        """One archive file -> canonical table, ``binance.sha256`` added to its metadata."""
        ds = get_dataset(dataset)
        url = archive_url(ds, symbol, when, self.base_url)
        data, digest = await self.download_verified(url)
        bounds = {"day": as_date(when)} if ds.period == "daily" else {"month": month_of(when)}
        table = await asyncio.to_thread(
            parse_zip, data, ds, source=url, use_threads=self.parse_threads, **bounds
        )
        meta = dict(table.schema.metadata or {})
        meta[b"binance.sha256"] = digest.encode()
        return table.replace_schema_metadata(meta)

    async def fetch_day(self, dataset: str | Dataset, symbol: str, day: date | str) -> pa.Table:
        ds = get_dataset(dataset)
        if ds.period != "daily":
            raise ValueError(f"{ds.name} is published monthly: use fetch_month")
        return await self.fetch(ds, symbol, as_date(day))

    async def fetch_month(self, dataset: str | Dataset, symbol: str, year: int, month: int) -> pa.Table:
        ds = get_dataset(dataset)
        if ds.period != "monthly":
            raise ValueError(f"{ds.name} is published daily: use fetch_day")
        return await self.fetch(ds, symbol, (year, month))


class _borrowed:
    """Async context giving an ArchiveClient for a client, a session or nothing."""

    def __init__(self, client_or_session, base_url: str | None):
        self.src, self.base_url, self.owned = client_or_session, base_url, None

    async def __aenter__(self) -> ArchiveClient:
        if isinstance(self.src, ArchiveClient):
            if self.base_url and self.base_url.rstrip("/") != self.src.base_url:
                raise ValueError("base_url conflicts with the ArchiveClient's base_url")
            return self.src
        if isinstance(self.src, aiohttp.ClientSession):
            return ArchiveClient(self.base_url or DEFAULT_ARCHIVE_URL, session=self.src)
        if self.src is None:
            self.owned = ArchiveClient(self.base_url or DEFAULT_ARCHIVE_URL)
            return await self.owned.__aenter__()
        raise TypeError(f"expected ArchiveClient or aiohttp.ClientSession, got {type(self.src)!r}")

    async def __aexit__(self, *exc):
        if self.owned is not None:
            await self.owned.close()


async def fetch_day(client_or_session: ArchiveClient | aiohttp.ClientSession | None, dataset: str,
                    symbol: str, day: date | str, *, base_url: str | None = None) -> pa.Table:
    """Download, verify and parse one daily archive file -> canonical table."""
    validate_symbol(symbol)
    async with _borrowed(client_or_session, base_url) as client:
        return await client.fetch_day(dataset, symbol, day)


async def fetch_funding_month(client_or_session: ArchiveClient | aiohttp.ClientSession | None,
                              symbol: str, year: int, month: int, *,
                              base_url: str | None = None) -> pa.Table:
    """USD-M monthly fundingRate file -> FUNDING table for the month (see ``split_by_day``)."""
    validate_symbol(symbol)
    async with _borrowed(client_or_session, base_url) as client:
        return await client.fetch_month("fundingRate", symbol, year, month)
