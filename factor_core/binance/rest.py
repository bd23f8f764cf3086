"""Binance REST client (spot api.binance.com, USD-M futures fapi.binance.com).

Rate limiting follows the server (:mod:`.limiter`): before sending, a request
whose weight would overrun the minute's budget waits for the next window;
429 -> wait ``Retry-After`` then retry; 418 -> the host is banned until
``now + Retry-After`` and no request is sent to it before then. Every wait goes
through the one retry policy (:mod:`factor_core.retry`): a wait that would take
the call's total waiting past ``max_wait_s`` fails at once, without sleeping,
with :class:`RateLimited` / :class:`IPBanned`. 5xx, timeouts and connection
resets are retried with jittered exponential backoff up to ``retry.max_attempts``.

Clock and sleep are injectable (``clock=``, ``sleep=``) so tests never wait.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import replace
from datetime import date, datetime
from typing import Any, Callable

import aiohttp
import numpy as np
import pyarrow as pa

from factor_core.retry import RetryPolicy, async_retrying
from factor_core.schemas import BOOK, FUNDING, TS, validate_symbol
from factor_core.timeutil import MS_PER_DAY, MS_PER_HOUR, NS_PER_SECOND, as_date, day_start_ms, iso_s, to_ms

from .builders import build_klines
from .columns import epoch_to_utc_ns
from .csvread import ParseContext
from .datasets import DATASETS
from .errors import ApiError, IPBanned, MalformedResponse, ParseError, RateLimited, RequestFailed, UnknownSymbol
from .http import TRANSPORT_ERRORS, OwnedSession, ServerError, describe_exception, is_transient, snippet
from .limiter import FAPI_WEIGHT_LIMIT, SPOT_WEIGHT_LIMIT, WeightLimiter, shared_limiter
from .parse import window_of
from .urls import DEFAULT_API_URL, DEFAULT_FAPI_URL

KLINES_WEIGHT = 2
EXCHANGE_INFO_WEIGHT = 20
FUNDING_RATE_WEIGHT = 1
KLINES_PAGE = 1000


def depth_weight(limit: int) -> int:
    """Weight of ``GET /api/v3/depth`` for ``limit`` (5 / 25 / 50 / 250)."""
    if not 1 <= limit <= 5000:
        raise ValueError(f"depth limit must be 1..5000, got {limit}")
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class MustWait(Exception):
    """The rate-limit gate or the server says: send nothing for ``wait_s`` seconds.

    Raised inside one attempt and consumed by the retry policy (its wait hint);
    it leaves the client only as :class:`RateLimited` / :class:`IPBanned`.
    """

    def __init__(self, wait_s: float, reason: str, *, banned: bool, status: int | None = None):
        self.wait_s, self.reason, self.banned, self.status = wait_s, reason, banned, status
        super().__init__(reason)


def _wait_hint(exc: BaseException) -> float | None:
    return exc.wait_s if isinstance(exc, MustWait) else None


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, MustWait) or is_transient(exc)


def _retry_after(resp: aiohttp.ClientResponse, default: float) -> float:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class RestClient(OwnedSession):
    """Async client for the public spot and USD-M futures REST endpoints.

    Use as ``async with RestClient(api_url=..., fapi_url=...) as client`` (owns
    one ``aiohttp.ClientSession``) or pass ``session=``. ``limiters`` maps a base
    URL to a shared :class:`WeightLimiter` (one per host by default).
    """

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        fapi_url: str = DEFAULT_FAPI_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        weight_limit: int = SPOT_WEIGHT_LIMIT,
        fapi_weight_limit: int = FAPI_WEIGHT_LIMIT,
        safety_margin: float = 0.9,
        max_wait_s: float = 120.0,
        retry: RetryPolicy | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        clock: Callable[[], float] = time.time,
        sleep=asyncio.sleep,
        limiters: dict[str, WeightLimiter] | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        self.fapi_url = fapi_url.rstrip("/")
        self._session = session
        self._owns_session = False
        self.max_wait_s = max_wait_s
        self.retry = retry or RetryPolicy()
        self.timeout = timeout or aiohttp.ClientTimeout(total=60, connect=10, sock_read=30)
        self._session_timeout = self.timeout
        self.clock = clock
        self._sleep = sleep
        self.limiters = dict(limiters or {})
        self.limiters.setdefault(
            self.api_url, WeightLimiter(weight_limit, safety_margin=safety_margin, clock=clock))
        self.limiters.setdefault(
            self.fapi_url, WeightLimiter(fapi_weight_limit, safety_margin=safety_margin, clock=clock))

    # ------------------------------------------------------------------ core request
    async def request(self, base_url: str, path: str, params: dict[str, Any] | None = None,
                      *, weight: int, symbol: str | None = None) -> Any:
        """GET ``base_url + path`` within the rate limits; return the decoded JSON."""
        if self._session is None:
            raise RuntimeError("RestClient has no session: use 'async with RestClient(...)'")
        limiter = self.limiters[base_url]
        url = base_url + path
        endpoint = f"GET {url}"
        params = {k: str(v) for k, v in (params or {}).items() if v is not None}
        policy = replace(self.retry, deadline_s=self.max_wait_s)
        retrying = async_retrying(_retryable, policy, wait_hint=_wait_hint, sleep=self._sleep)
        try:
            async for attempt in retrying:
                with attempt:
                    status, body = await self._send_once(limiter, url, params, weight)
                    return _decode(endpoint, status, body, symbol)
        except MustWait as exc:
            waited = retrying.statistics.get("idle_for", 0.0)
            cls = IPBanned if exc.banned else RateLimited
            raise cls(
                f"{endpoint}: {exc.reason}; must wait {exc.wait_s:g}s more (host blocked until "
                f"{iso_s(self.clock() + exc.wait_s)}), which exceeds the max_wait_s={self.max_wait_s:g}s "
                f"budget ({waited:.1f}s already waited); not sending the request",
                retry_after_s=exc.wait_s, budget_s=self.max_wait_s,
                status=418 if exc.banned else exc.status,
            ) from None
        except (ServerError, *TRANSPORT_ERRORS) as exc:
            detail = str(exc) if isinstance(exc, ServerError) else describe_exception(exc)
            raise RequestFailed(
                f"{endpoint} failed after {retrying.stop.failures} attempt(s): {detail}", exc
            ) from exc
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _send_once(self, limiter: WeightLimiter, url: str, params: dict[str, str],
                         weight: int) -> tuple[int, bytes]:
        """One pass through the gate and, if it opens, one request -> (status, body).

        Raises :class:`MustWait` for a closed gate or a 429/418 answer and
        :class:`ServerError` for a 5xx answer, for the retry policy to handle.
        """
        wait, reason, window = limiter.acquire_or_wait(weight)
        if wait > 0:
            raise MustWait(wait, reason, banned="418" in reason)
        try:
            async with self._session.get(url, params=params, timeout=self.timeout) as resp:
                body = await resp.read()
                limiter.settle(weight, window, resp.headers.get("X-MBX-USED-WEIGHT-1M"))
                status, retry_after = resp.status, _retry_after(resp, 60.0)
        except TRANSPORT_ERRORS:
            limiter.release(weight)  # never reached the server's counter
            raise
        if status in (418, 429):
            banned = status == 418
            limiter.block(retry_after, ban=banned)
            what = "IP banned" if banned else "rate limited"
            raise MustWait(retry_after, f"HTTP {status} {what}, Retry-After {retry_after:g}s: {snippet(body)}",
                           banned=banned, status=status)
        if status >= 500:
            raise ServerError(status, body)
        return status, body

    # ------------------------------------------------------------------ endpoints
    async def klines(self, symbol: str, *, interval: str = "1m", start_ms: int | None = None,
                     end_ms: int | None = None, limit: int = KLINES_PAGE) -> list[list]:
        """One page of ``/api/v3/klines`` (raw rows)."""
        validate_symbol(symbol)
        rows = await self.request(
            self.api_url, "/api/v3/klines",
            {"symbol": symbol, "interval": interval, "startTime": start_ms, "endTime": end_ms,
             "limit": limit},
            weight=KLINES_WEIGHT, symbol=symbol,
        )
        if not isinstance(rows, list):
            raise MalformedResponse(
                f"GET {self.api_url}/api/v3/klines: expected a JSON array, got {snippet(json.dumps(rows))!r}")
        return rows

    async def klines_day(self, symbol: str, day: date | str, *, closed_only: bool = True) -> pa.Table:
        """All 1-minute klines of one UTC day (pages of 1000) -> KLINES table.

        ``closed_only`` drops a bar whose close time is still in the future (today).
        """
        validate_symbol(symbol)
        d = as_date(day)
        start = day_start_ms(d)
        end = start + MS_PER_DAY - 1
        rows_by_open: dict[int, list] = {}
        cursor = start
        for _ in range(10):  # 1440 minutes = 2 pages; the bound guards a misbehaving server
            page = await self.klines(symbol, start_ms=cursor, end_ms=end, limit=KLINES_PAGE)
            for row in page:
                if not isinstance(row, list) or len(row) < 11:
                    raise MalformedResponse(
                        f"GET {self.api_url}/api/v3/klines: kline row is not a 12-element array: "
                        f"{snippet(json.dumps(row))!r}")
                rows_by_open.setdefault(int(row[0]), row)
            if len(page) < KLINES_PAGE:
                break
            last_open = int(page[-1][0])
            if last_open >= end:
                break
            cursor = last_open + 1
        rows = [rows_by_open[k] for k in sorted(rows_by_open)]
        if closed_only:
            now_ms = self.clock() * 1000
            rows = [r for r in rows if int(r[6]) < now_ms]
        source = f"GET {self.api_url}/api/v3/klines symbol={symbol} day={d} (line = JSON row)"
        return _klines_table(rows, source, d)

    async def exchange_info(self, *, status: str | None = None) -> list[dict]:
        """``/api/v3/exchangeInfo`` symbols: dicts with symbol, status, baseAsset, quoteAsset, ..."""
        info = await self.request(self.api_url, "/api/v3/exchangeInfo", weight=EXCHANGE_INFO_WEIGHT)
        symbols = info.get("symbols") if isinstance(info, dict) else None
        if not isinstance(symbols, list):
            raise MalformedResponse(
                f"GET {self.api_url}/api/v3/exchangeInfo: no 'symbols' array in "
                f"{snippet(json.dumps(info))!r}")
        if status is not None:
            symbols = [s for s in symbols if s.get("status") == status]
        return symbols

    async def depth(self, symbol: str, limit: int = 20) -> pa.Table:
        """Top-``limit`` order book now -> BOOK top-N snapshot rows (ts = capture time, UTC)."""
        validate_symbol(symbol)
        weight = depth_weight(limit)
        endpoint = f"GET {self.api_url}/api/v3/depth"
        book = await self.request(self.api_url, "/api/v3/depth", {"symbol": symbol, "limit": limit},
                                  weight=weight, symbol=symbol)
        captured_ns = int(round(self.clock() * NS_PER_SECOND))
        try:
            bids = np.array([[float(p), float(q)] for p, q in book["bids"]], dtype=float).reshape(-1, 2)
            asks = np.array([[float(p), float(q)] for p, q in book["asks"]], dtype=float).reshape(-1, 2)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"{endpoint}: unexpected depth payload ({describe_exception(exc)}): "
                f"{snippet(json.dumps(book))!r}") from exc
        n_b, n_a = len(bids), len(asks)
        price = np.concatenate([bids[:, 0], asks[:, 0]])
        qty = np.concatenate([bids[:, 1], asks[:, 1]])
        table = pa.Table.from_arrays(
            [
                pa.array(np.full(n_b + n_a, captured_ns, dtype=np.int64)).view(TS),
                pa.array(["bid"] * n_b + ["ask"] * n_a),
                pa.array(np.concatenate([np.arange(1, n_b + 1), np.arange(1, n_a + 1)]).astype(np.int16)),
                pa.array(price),
                pa.array(qty),
                pa.nulls(n_b + n_a, pa.float64()),
                pa.array(price * qty),
            ],
            schema=BOOK,
        )
        return table.replace_schema_metadata({
            b"binance.source": endpoint.encode(),
            b"binance.lastUpdateId": str(book.get("lastUpdateId")).encode(),
        })

    async def funding_history(self, symbol: str, start: date | str | datetime,
                              end: date | str | datetime) -> pa.Table:
        """``/fapi/v1/fundingRate`` events with start <= fundingTime < end -> FUNDING.

        Dates mean UTC midnight. ``funding_interval_hours`` is inferred from the
        spacing of consecutive events (8 when there is a single event).
        """
        validate_symbol(symbol)
        start_ms, end_ms = to_ms(start), to_ms(end)
        endpoint = f"GET {self.fapi_url}/fapi/v1/fundingRate"
        events: dict[int, float] = {}
        cursor = start_ms
        for _ in range(1000):
            page = await self.request(
                self.fapi_url, "/fapi/v1/fundingRate",
                {"symbol": symbol, "startTime": cursor, "endTime": end_ms - 1, "limit": 1000},
                weight=FUNDING_RATE_WEIGHT, symbol=symbol)
            if not isinstance(page, list):
                raise MalformedResponse(f"{endpoint}: expected a JSON array, got {snippet(json.dumps(page))!r}")
            try:
                for e in page:
                    events.setdefault(int(e["fundingTime"]), float(e["fundingRate"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise MalformedResponse(
                    f"{endpoint}: unexpected funding event ({describe_exception(exc)}): "
                    f"{snippet(json.dumps(page[:2]))!r}") from exc
            if len(page) < 1000:
                break
            cursor = int(page[-1]["fundingTime"]) + 1
        times = np.array(sorted(events), dtype=np.int64)
        ctx = ParseContext(f"{endpoint} symbol={symbol}", b"", False)
        ns = epoch_to_utc_ns(times, ctx, "fundingTime")[0] if len(times) else times
        hours = np.full(len(times), 8, dtype=np.int16)
        if len(times) > 1:
            gaps = np.rint(np.diff(times) / MS_PER_HOUR).astype(np.int16)
            hours[1:] = gaps
            hours[0] = gaps[0]
        return pa.Table.from_arrays(
            [pa.array(ns, type=pa.int64()).view(TS), pa.array([events[t] for t in times], pa.float64()),
             pa.array(hours, pa.int16())],
            schema=FUNDING,
        )


def _decode(endpoint: str, status: int, body: bytes, symbol: str | None) -> Any:
    """A non-retryable answer -> its JSON, or the Binance error it carries."""
    if status >= 400:
        code, msg = None, snippet(body)
        try:
            err = json.loads(body)
            code, msg = err.get("code"), err.get("msg", msg)
        except (ValueError, AttributeError):
            pass
        if code == -1121 and symbol is not None:
            raise UnknownSymbol(symbol, endpoint, msg)
        raise ApiError(endpoint, status, code, msg)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedResponse(
            f"{endpoint}: response is not valid JSON ({exc}); body starts {snippet(body)!r}"
        ) from exc


def _klines_table(rows: list[list], source: str, day: date | None) -> pa.Table:
    """REST kline rows (numbers as strings) -> KLINES, through the archive's validation."""
    ds = DATASETS["klines"]
    if not rows:
        raise ParseError(source, "no klines returned")
    ctx = ParseContext(source, b"", False)
    cols = list(zip(*rows))
    arrays, names = [], []
    for idx, name in enumerate(ds.columns[:11]):
        typ = ds.types.get(name)
        if typ is None:
            continue
        try:
            if pa.types.is_integer(typ):
                arr = pa.array([int(v) for v in cols[idx]], pa.int64())
            else:
                arr = pa.array([str(v) for v in cols[idx]]).cast(typ)
        except (ValueError, TypeError, pa.ArrowInvalid) as exc:
            bad = next(i for i, v in enumerate(cols[idx]) if not _num_ok(v))
            raise ParseError(source, "value is not a number", line=bad + 1, column=name,
                             value=cols[idx][bad]) from exc
        arrays.append(arr)
        names.append(name)
    table = pa.Table.from_arrays(arrays, names=names)
    out, unit, _ = build_klines(table, ctx, window_of(ds, day))
    return out.replace_schema_metadata({b"binance.source": source.encode(),
                                        b"binance.time_unit": unit.encode()})


def _num_ok(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fetch_exchange_info_sync(*, api_url: str = DEFAULT_API_URL, status: str | None = None,
                             max_wait_s: float = 120.0) -> list[dict]:
    """Blocking exchangeInfo symbols (optionally only ``status``, e.g. TRADING), for the universe
    sensor; consecutive calls in one process share the host's weight limiter."""
    limiter = shared_limiter(api_url, SPOT_WEIGHT_LIMIT)

    async def run() -> list[dict]:
        async with RestClient(api_url, limiters={api_url.rstrip("/"): limiter}, max_wait_s=max_wait_s) as rest:
            return await rest.exchange_info(status=status)

    return asyncio.run(run())
