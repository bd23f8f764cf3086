"""A local replica of Binance's public archive and REST API on 127.0.0.1, for tests and benchmarks.

Runs an ``aiohttp.web`` app (ephemeral port) in a background thread with its
own event loop, so sync tests can use it as a context manager::

    with BinanceReplica() as replica:
        replica.put_archive("spot", "daily", "klines", "BTCUSDT", "2024-01-01",
                            klines_csv(rows), interval="1m")
        table = archive_day(replica.url, "klines", "BTCUSDT", "2024-01-01")

It serves (a) any archive file put there (``/data/{market}/{period}/{type}/{SYMBOL}/
[{interval}/]{SYMBOL}-{type|interval}-{date}.zip`` with sibling ``.CHECKSUM``
files, klines, aggTrades, bookDepth, bookTicker, fundingRate alike), built here
independently of the project's URL code, and (b) ``/api/v3/klines``,
``/api/v3/depth``, ``/api/v3/exchangeInfo`` and ``/fapi/v1/fundingRate`` with
``X-MBX-USED-WEIGHT-1M`` headers. Faults are queued per path with
:meth:`BinanceReplica.inject` and consumed one per request. ``max_in_flight``
counts the most requests it was answering at once (count, don't time).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web

from .formats import archive_path, checksum_text, make_zip

@dataclass
class Fault:
    """One injected misbehaviour, consumed by one request to its path."""

    status: int | None = None  # answer with this status (body below or a Binance error JSON)
    retry_after: float | None = None  # Retry-After header (seconds)
    body: bytes | None = None  # raw body (e.g. malformed JSON); with status None -> 200
    reset: bool = False  # abort the connection without answering
    delay: float = 0.0  # sleep before answering (read-timeout tests); then serve normally
    content_type: str = "application/json"


@dataclass
class RequestRecord:
    t: float  # replica clock
    method: str
    path: str
    query: dict[str, str]
    fault: Fault | None = None


@dataclass
class BinanceReplica:
    """Archive + REST replica on 127.0.0.1. ``clock`` drives the weight windows."""

    clock: Callable[[], float] = time.time
    weight_limit: int = 6000  # server-side limit: beyond it answer 429
    extra_weight: int = 0  # weight "used by others" added to every header value
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    requests: list[RequestRecord] = field(default_factory=list)
    klines: dict[str, list[list]] = field(default_factory=dict)  # REST rows per symbol
    depth: dict[str, dict] = field(default_factory=dict)
    symbols: list[dict] = field(default_factory=list)
    funding: dict[str, list[dict]] = field(default_factory=dict)
    _used: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    in_flight: int = 0  # requests being answered right now
    max_in_flight: int = 0  # the most answered at once since start (or the last reset)

    # ------------------------------------------------------------------ content
    def put_file(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return path

    def put_archive(self, market: str, period: str, type_: str, symbol: str, label: str,
                    csv: bytes | None, *, interval: str | None = None, checksum: str = "ok",
                    zip_bytes: bytes | None = None) -> str:
        """Publish ``csv`` zipped at its archive path; ``checksum`` is "ok", "wrong" or
        "missing". ``zip_bytes`` replaces the zip (corrupt-zip tests). Returns the path."""
        path = archive_path(market, period, type_, symbol, label, interval)
        name = path.rsplit("/", 1)[-1]
        data = zip_bytes if zip_bytes is not None else make_zip(name[:-4] + ".csv", csv or b"")
        self.files[path] = data
        if checksum == "ok":
            self.files[path + ".CHECKSUM"] = checksum_text(data, name)
        elif checksum == "wrong":
            self.files[path + ".CHECKSUM"] = checksum_text(data + b"tampered", name)
        else:
            self.files.pop(path + ".CHECKSUM", None)
        return path

    def inject(self, path: str, *faults: Fault) -> None:
        self.faults[path].extend(faults)

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "BinanceReplica":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                app = web.Application()
                app.router.add_route("*", "/{tail:.*}", self._handle)
                self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                             shutdown_timeout=0.2)
                self._loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                self._loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            except BaseException as exc:  # pragma: no cover - surfaced below
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="binance-replica", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    # ------------------------------------------------------------------ handler
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1  # the handler runs on the replica's one loop: no lock needed
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        queue = self.faults.get(path)
        fault = queue.popleft() if queue else None
        self.requests.append(RequestRecord(self.clock(), request.method, path,
                                           dict(request.query), fault))
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.reset:
                if request.transport is not None:
                    request.transport.abort()
                # handler_cancellation=True: the lost connection cancels this wait
                await asyncio.sleep(30)
                raise ConnectionResetError("replica: injected connection reset")
            if fault.status is not None or fault.body is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(int(fault.retry_after))
                if path.startswith(("/api/", "/fapi/")):
                    headers["X-MBX-USED-WEIGHT-1M"] = str(self._weight(path, 0))
                body = fault.body
                if body is None:
                    body = json.dumps({"code": -1003, "msg": f"injected HTTP {fault.status}"}).encode()
                return web.Response(status=fault.status or 200, body=body, headers=headers,
                                    content_type=fault.content_type)
        if path.startswith("/data/"):
            data = self.files.get(path)
            if data is None:
                return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>",
                                    content_type="application/xml")
            return web.Response(body=data, content_type="application/zip")
        routes = {
            "/api/v3/klines": self._klines,
            "/api/v3/depth": self._depth,
            "/api/v3/exchangeInfo": self._exchange_info,
            "/fapi/v1/fundingRate": self._funding,
        }
        handler = routes.get(path)
        if handler is None:
            return web.Response(status=404, text="not found")
        return await handler(request)

    # ------------------------------------------------------------------ REST
    def _window(self) -> int:
        return int(self.clock() // 60)

    def _weight(self, path: str, add: int) -> int:
        host = path.split("/")[1]
        key = (host, self._window())
        self._used[key] += add
        return self._used[key] + self.extra_weight

    def _json(self, path: str, weight: int, payload, status: int = 200) -> web.Response:
        used = self._weight(path, weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.weight_limit:
            retry = 60 - (self.clock() % 60)
            headers["Retry-After"] = str(max(1, int(retry)))
            payload, status = {"code": -1003, "msg": "Too much request weight used"}, 429
        return web.Response(status=status, text=json.dumps(payload), headers=headers,
                            content_type="application/json")

    def _bad_symbol(self, path: str, weight: int) -> web.Response:
        return self._json(path, weight, {"code": -1121, "msg": "Invalid symbol."}, status=400)

    async def _klines(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = q.get("symbol", "")
        if symbol not in self.klines:
            return self._bad_symbol(request.path, 2)
        limit = min(int(q.get("limit", 500)), 1000)
        start = int(q.get("startTime", 0))
        end = int(q.get("endTime", 2**62))
        rows = [r for r in self.klines[symbol] if start <= r[0] <= end][:limit]
        return self._json(request.path, 2, rows)

    async def _depth(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = q.get("symbol", "")
        limit = int(q.get("limit", 100))
        weight = 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
        if symbol not in self.depth:
            return self._bad_symbol(request.path, weight)
        book = self.depth[symbol]
        return self._json(request.path, weight, {
            "lastUpdateId": book.get("lastUpdateId", 1),
            "bids": book["bids"][:limit], "asks": book["asks"][:limit],
        })

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return self._json(request.path, 20, {
            "timezone": "UTC", "serverTime": int(self.clock() * 1000),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": self.weight_limit}],
            "symbols": self.symbols,
        })

    async def _funding(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = q.get("symbol", "")
        if symbol not in self.funding:
            return self._bad_symbol(request.path, 1)
        limit = min(int(q.get("limit", 100)), 1000)
        start = int(q.get("startTime", 0))
        end = int(q.get("endTime", 2**62))
        rows = [r for r in self.funding[symbol] if start <= r["fundingTime"] <= end][:limit]
        return self._json(request.path, 1, rows)


class FakeClock:
    """Injectable clock + sleep: ``sleep`` advances time instantly and records the waits.

    Thread-safe enough for the replica (another thread) to read ``time()``.
    """

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
