"""A local replica of Binance's public archive and REST API, for tests and benchmarks.

Runs an ``aiohttp.web`` app on 127.0.0.1 (ephemeral port) in a background
thread with its own event loop, so sync tests can use it as a context manager::

    with BinanceReplica() as replica:
        replica.put_archive("spot", "daily", "klines", "BTCUSDT", "2024-01-01",
                            klines_csv(rows), interval="1m")
        table = fetch_day_sync("klines", "BTCUSDT", "2024-01-01", base_url=replica.url)

It serves (a) the archive layout ``/data/{market}/{period}/{type}/{SYMBOL}/[{interval}/]
{SYMBOL}-{type|interval}-{date}.zip`` with sibling ``.CHECKSUM`` files, built
here independently of the project's URL code, and (b) ``/api/v3/klines``,
``/api/v3/depth``, ``/api/v3/exchangeInfo`` and ``/fapi/v1/fundingRate`` with
``X-MBX-USED-WEIGHT-1M`` headers. Faults are queued per path with
:meth:`BinanceReplica.inject` and consumed one per request.

The CSV helpers write the exact Binance formats: rows are lists of *strings*
exactly as they appear in the file, so tests compare parsed values against
``int(field)`` / ``float(field)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import threading
import time
import zipfile
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from aiohttp import web

MINUTE_MS = 60_000
DAY_MS = 86_400_000

KLINES_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
AGG_TRADES_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
    "is_buyer_maker,is_best_match"
)
BOOK_DEPTH_HEADER = "timestamp,percentage,depth,notional"
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"


# =========================================================================== data + CSV


def day_start_ms(day: date | str) -> int:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1000


def _scale(ms: int, unit: str) -> int:
    return ms * 1000 if unit == "us" else ms


def _dec(x: float, places: int = 8) -> str:
    return f"{x:.{places}f}"


def kline_rows(day: date | str, *, unit: str = "ms", n: int = 1440, seed: int = 0,
               start_minute: int = 0, price: float = 42000.0) -> list[list[str]]:
    """``n`` consecutive 1-minute klines from ``start_minute`` of ``day`` (12 fields)."""
    rng = random.Random(seed)
    base = day_start_ms(day)
    rows = []
    for i in range(start_minute, start_minute + n):
        o = price
        c = max(1.0, o * (1 + rng.gauss(0, 0.001)))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.0005)))
        low = min(o, c) * (1 - abs(rng.gauss(0, 0.0005)))
        vol = abs(rng.gauss(10, 3))
        tb = vol * rng.random()
        t = base + i * MINUTE_MS
        rows.append([
            str(_scale(t, unit)), _dec(o, 2), _dec(h, 2), _dec(low, 2), _dec(c, 2), _dec(vol),
            str(_scale(t + MINUTE_MS - 1, unit) + (999 if unit == "us" else 0)),
            _dec(vol * c), str(rng.randint(1, 5000)), _dec(tb), _dec(tb * c), "0",
        ])
        price = round(c, 2)
    return rows


def agg_trade_rows(day: date | str, *, unit: str = "ms", n: int = 1000, seed: int = 0,
                   first_id: int = 3_000_000_000, bool_style: str = "True") -> list[list[str]]:
    """``n`` aggregate trades spread over ``day`` (8 fields, spot format)."""
    rng = random.Random(seed)
    base = day_start_ms(day)
    step = DAY_MS / max(n, 1)
    t_true, t_false = ("True", "False") if bool_style == "True" else ("true", "false")
    rows, price, tid = [], 42000.0, first_id * 10
    for i in range(n):
        price = max(1.0, price * (1 + rng.gauss(0, 0.0002)))
        k = rng.randint(1, 3)
        t_ms = base + int(i * step)
        ts = _scale(t_ms, unit) + (rng.randint(0, 999) if unit == "us" else 0)
        rows.append([
            str(first_id + i), _dec(price, 2), _dec(abs(rng.gauss(0.05, 0.05)) + 1e-5),
            str(tid), str(tid + k - 1), str(ts),
            t_true if rng.random() < 0.5 else t_false, t_true,
        ])
        tid += k
    return rows


def book_depth_rows(day: date | str, *, snapshots: int = 10, seed: int = 0,
                    bands: tuple[float, ...] = (1, 2, 3, 4, 5), every_s: int = 30) -> list[list[str]]:
    """Depth bands of futures ``bookDepth``: per snapshot one row per +/- band."""
    rng = random.Random(seed)
    d = date.fromisoformat(day) if isinstance(day, str) else day
    start = datetime(d.year, d.month, d.day)
    rows = []
    for s in range(snapshots):
        stamp = (start + timedelta(seconds=s * every_s + rng.randint(0, 5))).strftime("%Y-%m-%d %H:%M:%S")
        for sign in (-1, 1):
            cum = 0.0
            for band in bands:
                cum += abs(rng.gauss(100, 20))
                pct = sign * band
                pct_text = str(int(pct)) if float(pct).is_integer() else f"{pct:.2f}"
                rows.append([stamp, pct_text, _dec(cum), _dec(cum * 42000.0)])
    return rows


def funding_rows(year: int, month: int, *, interval_hours: int = 8, seed: int = 0,
                 unit: str = "ms") -> list[list[str]]:
    """Funding events of a month every ``interval_hours`` (calc_time,interval,rate)."""
    rng = random.Random(seed)
    t = int(datetime(year, month, 1, tzinfo=timezone.utc).timestamp()) * 1000
    end_month = (year + month // 12, month % 12 + 1)
    end = int(datetime(end_month[0], end_month[1], 1, tzinfo=timezone.utc).timestamp()) * 1000
    rows = []
    while t < end:
        rows.append([str(_scale(t + rng.randint(0, 9), unit)), str(interval_hours),
                     _dec(rng.gauss(0.0001, 0.0001))])
        t += interval_hours * 3_600_000
    return rows


def to_csv(rows: list[list[str]], header: str | None = None, *, trailing_newline: bool = True) -> bytes:
    lines = ([header] if header else []) + [",".join(r) for r in rows]
    text = "\n".join(lines) + ("\n" if trailing_newline else "")
    return text.encode()


def klines_csv(rows, *, header: bool = False) -> bytes:
    return to_csv(rows, KLINES_HEADER if header else None)


def agg_trades_csv(rows, *, header: bool = False) -> bytes:
    return to_csv(rows, AGG_TRADES_HEADER if header else None)


def book_depth_csv(rows, *, header: bool = True) -> bytes:
    return to_csv(rows, BOOK_DEPTH_HEADER if header else None)


def funding_csv(rows, *, header: bool = True) -> bytes:
    return to_csv(rows, FUNDING_HEADER if header else None)


def make_zip(member_name: str, csv: bytes, *, level: int = 6) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr(member_name, csv)
    return buf.getvalue()


def checksum_text(data: bytes, file_name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {file_name}\n".encode()


def archive_path(market: str, period: str, type_: str, symbol: str, label: str,
                 interval: str | None = None) -> str:
    """``/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip`` etc."""
    middle = f"{interval}/" if interval else ""
    return f"/data/{market}/{period}/{type_}/{symbol}/{middle}{symbol}-{interval or type_}-{label}.zip"


# =========================================================================== server


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


def rest_klines(rows: list[list[str]]) -> list[list]:
    """Archive-format rows (strings) -> REST JSON rows (times as ints, numbers as strings)."""
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], int(r[8]), r[9], r[10], r[11]]
            for r in rows]


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
