"""Binance REST client (spot api.binance.com, USD-M futures fapi.binance.com).

Rate limiting follows the server: every response's ``X-MBX-USED-WEIGHT-1M`` is
read; each request knows its weight; before sending, if used + in-flight +
weight would exceed ``safety_margin * weight_limit`` the client sleeps until
the next minute window. 429 -> wait ``Retry-After`` then retry; 418 -> the host
is banned until ``now + Retry-After`` and no request is sent to it before
then. Any wait that would push the call past ``max_wait_s`` fails at once
with :class:`RateLimited` / :class:`IPBanned`. 5xx, timeouts and connection
resets are retried with exponential backoff and full jitter.

Clock and sleep are injectable (``clock=``, ``sleep=``) so tests never wait.
Nothing here imports Dagster.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from datetime import date, datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pyarrow as pa

from factor_core.schemas import BOOK, FUNDING, TS, validate_symbol

from ._http import RETRYABLE_EXCEPTIONS, OwnedSession, RetryPolicy, Sleep, describe_exception, snippet
from .archive import _as_date, _build_klines, _Ctx, epoch_to_utc_ns
from .errors import (
    ApiError,
    IPBanned,
    MalformedResponse,
    ParseError,
    RateLimited,
    RequestFailed,
    UnknownSymbol,
)

DEFAULT_API_URL = "https://api.binance.com"
DEFAULT_FAPI_URL = "https://fapi.binance.com"

SPOT_WEIGHT_LIMIT = 6000  # request weight per minute per IP (api.binance.com)
FAPI_WEIGHT_LIMIT = 2400  # USD-M futures request weight per minute per IP

KLINES_WEIGHT = 2
EXCHANGE_INFO_WEIGHT = 20
FUNDING_RATE_WEIGHT = 1
KLINES_PAGE = 1000
DAY_MS = 86_400_000


def depth_weight(limit: int) -> int:
    """Weight of ``GET /api/v3/depth`` for ``limit`` (5 / 25 / 50 / 250)."""
    if not 1 <= limit <= 5000:
        raise ValueError(f"depth limit must be 1..5000, got {limit}")
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


# =========================================================================== limiter


class WeightLimiter:
    """Per-host request-weight budget, fed by the server's ``X-MBX-USED-WEIGHT-1M``.

    Thread-safe (a ``threading.Lock`` guards state, never held across an await),
    so one limiter can be shared by clients running in different event loops.
    """

    def __init__(self, weight_limit: int = SPOT_WEIGHT_LIMIT, *, safety_margin: float = 0.9,
                 window_s: float = 60.0, window_slack_s: float = 0.25,
                 clock: Callable[[], float] = time.time):
        if not 0 < safety_margin <= 1:
            raise ValueError("safety_margin must be in (0, 1]")
        self.weight_limit = weight_limit
        self.budget = max(1, int(weight_limit * safety_margin))
        self.window_s = window_s
        self.window_slack_s = window_slack_s
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self.used = 0  # weight used in the current window (server's figure, or our estimate)
        self.inflight = 0
        self.blocked_until = 0.0  # 429 Retry-After
        self.ban_until = 0.0  # 418

    def _roll(self, now: float) -> int:
        window = int(now // self.window_s)
        if window != self._window:
            self._window, self.used = window, 0
        return window

    def acquire_or_wait(self, weight: int) -> tuple[float, str, int]:
        """Reserve ``weight`` and return (0, "", window), or return (seconds, reason, -1)."""
        with self._lock:
            now = self.clock()
            if self.ban_until > now:
                return self.ban_until - now, "banned (HTTP 418)", -1
            if self.blocked_until > now:
                return self.blocked_until - now, "rate limited (HTTP 429)", -1
            window = self._roll(now)
            busy = self.used + self.inflight
            if busy + weight > self.budget and busy > 0:
                wait = (window + 1) * self.window_s - now + self.window_slack_s
                return wait, (f"weight {self.used}+{self.inflight}+{weight} would exceed "
                              f"{self.budget} of {self.weight_limit}/min"), -1
            self.inflight += weight
            return 0.0, "", window

    def settle(self, weight: int, window: int, used_header: str | None) -> None:
        with self._lock:
            self.inflight = max(0, self.inflight - weight)
            current = self._roll(self.clock())
            if current != window:
                return  # answer belongs to a window that is over
            if used_header is not None:
                try:
                    self.used = max(self.used, int(used_header))
                    return
                except ValueError:
                    pass
            self.used += weight

    def release(self, weight: int) -> None:
        """Undo a reservation whose request never reached the server's counter."""
        with self._lock:
            self.inflight = max(0, self.inflight - weight)

    def block(self, seconds: float, *, ban: bool) -> float:
        with self._lock:
            until = self.clock() + seconds
            if ban:
                self.ban_until = max(self.ban_until, until)
            else:
                self.blocked_until = max(self.blocked_until, until)
            return until


_SHARED: dict[tuple, WeightLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(base_url: str, weight_limit: int, safety_margin: float = 0.9) -> WeightLimiter:
    """One limiter per (host, limit, margin) per process: sync wrappers share it."""
    key = (urlsplit(base_url).netloc, weight_limit, safety_margin)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = WeightLimiter(weight_limit, safety_margin=safety_margin)
        return _SHARED[key]


# =========================================================================== client


def _retry_after(resp: aiohttp.ClientResponse, default: float) -> float:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class RestClient(OwnedSession):
    """Async client for the public spot and USD-M futures REST endpoints.

    Use as ``async with RestClient(api_url=..., fapi_url=...) as client`` (owns
    one ``aiohttp.ClientSession``) or pass ``session=``.
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
        sleep: Sleep = asyncio.sleep,
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
        waited = 0.0
        failures = 0
        last: BaseException | None = None
        while True:
            wait, reason, window = limiter.acquire_or_wait(weight)
            if wait > 0:
                if waited + wait > self.max_wait_s:
                    banned = "418" in reason
                    cls = IPBanned if banned else RateLimited
                    raise cls(
                        f"{endpoint}: {reason}; must wait {wait:.1f}s more (host blocked until "
                        f"{_iso(self.clock() + wait)}), which exceeds the max_wait_s={self.max_wait_s:g}s "
                        f"budget ({waited:.1f}s already waited); not sending the request",
                        retry_after_s=wait, budget_s=self.max_wait_s, status=418 if banned else None,
                    )
                await self._sleep(wait)
                waited += wait
                continue
            try:
                async with self._session.get(url, params=params, timeout=self.timeout) as resp:
                    body = await resp.read()
                    limiter.settle(weight, window, resp.headers.get("X-MBX-USED-WEIGHT-1M"))
                    status = resp.status
                    retry_after = _retry_after(resp, 60.0)
            except RETRYABLE_EXCEPTIONS as exc:
                limiter.release(weight)
                failures += 1
                last = exc
                if failures >= self.retry.max_attempts:
                    raise RequestFailed(
                        f"{endpoint} failed after {failures} attempt(s): {describe_exception(exc)}",
                        exc,
                    ) from exc
                await self._sleep(self.retry.backoff(failures - 1))
                continue

            if status in (418, 429):
                ban = status == 418
                until = limiter.block(retry_after, ban=ban)
                if waited + retry_after > self.max_wait_s:
                    cls = IPBanned if ban else RateLimited
                    what = "IP banned" if ban else "rate limited"
                    raise cls(
                        f"{endpoint}: HTTP {status} {what}, Retry-After {retry_after:g}s (until "
                        f"{_iso(until)}) exceeds the max_wait_s={self.max_wait_s:g}s budget "
                        f"({waited:.1f}s already waited): {snippet(body)}",
                        retry_after_s=retry_after, budget_s=self.max_wait_s, status=status,
                    )
                continue  # the limiter makes the next iteration wait
            if status >= 500:
                failures += 1
                last = RequestFailed(f"HTTP {status}: {snippet(body)}")
                if failures >= self.retry.max_attempts:
                    raise RequestFailed(
                        f"{endpoint} failed after {failures} attempt(s): HTTP {status}: {snippet(body)}",
                        last,
                    )
                await self._sleep(self.retry.backoff(failures - 1))
                continue
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
        d = _as_date(day)
        start = int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1000
        end = start + DAY_MS - 1
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
        captured_ns = int(round(self.clock() * 1e9))
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
        start_ms, end_ms = _ms(start), _ms(end)
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
        ctx = _Ctx(f"{endpoint} symbol={symbol}", b"", False)
        ns = epoch_to_utc_ns(times, ctx, "fundingTime")[0] if len(times) else times
        hours = np.full(len(times), 8, dtype=np.int16)
        if len(times) > 1:
            gaps = np.rint(np.diff(times) / 3_600_000).astype(np.int16)
            hours[1:] = gaps
            hours[0] = gaps[0]
        return pa.Table.from_arrays(
            [pa.array(ns, type=pa.int64()).view(TS), pa.array([events[t] for t in times], pa.float64()),
             pa.array(hours, pa.int16())],
            schema=FUNDING,
        )


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="seconds")


def _ms(value: date | str | datetime) -> int:
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    d = _as_date(value)
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1000


def _klines_table(rows: list[list], source: str, day: date | None) -> pa.Table:
    """REST kline rows (numbers as strings) -> KLINES, through the archive's validation."""
    from .archive import DATASETS, _window

    ds = DATASETS["klines"]
    if not rows:
        raise ParseError(source, "no klines returned")
    ctx = _Ctx(source, b"", False)
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
    out, unit, _ = _build_klines(table, ctx, _window(ds, day, None))
    return out.replace_schema_metadata({b"binance.source": source.encode(),
                                        b"binance.time_unit": unit.encode()})


def _num_ok(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


# =========================================================================== sync wrappers


def _run(coro_fn: Callable[[RestClient], Any], api_url: str, fapi_url: str, kwargs: dict) -> Any:
    limit = kwargs.pop("weight_limit", SPOT_WEIGHT_LIMIT)
    flimit = kwargs.pop("fapi_weight_limit", FAPI_WEIGHT_LIMIT)
    margin = kwargs.pop("safety_margin", 0.9)
    limiters = kwargs.pop("limiters", None) or {
        api_url.rstrip("/"): shared_limiter(api_url, limit, margin),
        fapi_url.rstrip("/"): shared_limiter(fapi_url, flimit, margin),
    }

    async def run():
        async with RestClient(api_url, fapi_url, limiters=limiters, **kwargs) as client:
            return await coro_fn(client)

    return asyncio.run(run())


def fetch_klines_day_sync(symbol: str, day: date | str, *, api_url: str = DEFAULT_API_URL,
                          **client_kwargs) -> pa.Table:
    """Blocking: one UTC day of 1-minute klines from REST -> KLINES (1440 rows for a past day)."""
    return _run(lambda c: c.klines_day(symbol, day), api_url, DEFAULT_FAPI_URL, client_kwargs)


def fetch_depth_snapshot_sync(symbol: str, limit: int = 20, *, api_url: str = DEFAULT_API_URL,
                              **client_kwargs) -> pa.Table:
    """Blocking: top-``limit`` book snapshot now -> BOOK (top-N shape)."""
    return _run(lambda c: c.depth(symbol, limit), api_url, DEFAULT_FAPI_URL, client_kwargs)


def fetch_exchange_info_sync(*, api_url: str = DEFAULT_API_URL, status: str | None = None,
                             **client_kwargs) -> list[dict]:
    """Blocking: exchangeInfo symbols (optionally only those with ``status``, e.g. TRADING)."""
    return _run(lambda c: c.exchange_info(status=status), api_url, DEFAULT_FAPI_URL, client_kwargs)


def fetch_funding_history_sync(symbol: str, start: date | str | datetime, end: date | str | datetime,
                               *, fapi_url: str = DEFAULT_FAPI_URL, **client_kwargs) -> pa.Table:
    """Blocking: funding events in [start, end) from ``/fapi/v1/fundingRate`` -> FUNDING."""
    return _run(lambda c: c.funding_history(symbol, start, end), DEFAULT_API_URL, fapi_url,
                client_kwargs)


__all__ = [
    "DEFAULT_API_URL", "DEFAULT_FAPI_URL", "RestClient", "WeightLimiter", "depth_weight",
    "fetch_depth_snapshot_sync", "fetch_exchange_info_sync", "fetch_funding_history_sync",
    "fetch_klines_day_sync", "shared_limiter",
]  # fmt: skip
