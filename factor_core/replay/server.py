"""The replay server: tardis-machine's ``/replay-normalized`` API over stored partitions (aiohttp).

Endpoints (the same on every port the server listens on):

* ``GET /replay-normalized?options=<url-encoded JSON>``: NDJSON over HTTP
  (``Content-Type: application/x-json-stream``, chunked), one message per line;
* ``GET /ws-replay-normalized?options=...``: the same messages over WebSocket,
  one text frame each;
* ``GET /health``: ``{"status": "ok", "sessions": N}``.

Options and messages: ``factor_core.replay.options`` / ``encode``. Order of
messages: ``factor_core.replay.merge``. Errors: ``factor_core.replay.errors``;
before the stream starts an HTTP request gets the status and a JSON body
``{"type": "error", "error": ..., "code": ..., "message": ...}``, a WebSocket the
same JSON as a text frame and then the close code. An error found while
streaming (a crossed book snapshot in the stored data) ends an HTTP stream with
that JSON line and an incomplete chunked body (clients see a payload error,
never a silent truncation); a WebSocket gets the JSON frame and the close code.

Each client has its own cursor (open files, merge buffers) in its own session.
Reading, merging and encoding run in a small thread pool (pyarrow and the
Numba kernels release the GIL), one chunk ahead of the socket. Writes go to the
socket in slices of at most ``write_bytes`` and wait whenever the transport's
buffer is above its high-water mark, so a slow reader holds back its own
cursor (backpressure) instead of growing a buffer: per client the server holds
at most two chunks, the merge buffers and one slice. A client that goes away
is noticed at the next write (or by the WebSocket reader), its cursor is closed
and its session removed.

Pacing (``speed``): message ``i`` is due at ``t0 + (ts_i - from) / speed``
(``t0`` = when the first chunk is ready); messages already due go out together
in one write, then the server sleeps until the next one is due. Without
``speed`` messages go out as fast as the client reads.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import logging
import re
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from aiohttp import WSMsgType, web

from factor_core.replay.catalog import ReplayCatalog, ReplayPlan
from factor_core.replay.encode import NDJSON, WEBSOCKET, EncodingSource, FramedChunk, chunk_of
from factor_core.replay.errors import ReplayError, close_reason
from factor_core.replay.options import ReplayRequest, parse_options

log = logging.getLogger(__name__)
EXCHANGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
#: Messages per merge round (and so per chunk) are bounded by this many stored rows.
ROUND_ROWS = 16_384
WRITE_BYTES = 256 * 1024
MAX_SESSIONS = 64


@dataclass
class SessionInfo:
    """One client's replay, as :attr:`ReplayServer.sessions` reports it."""

    id: int
    transport: str  # "http" or "websocket"
    request: str = ""
    messages_sent: int = 0
    bytes_sent: int = 0
    rows_read: int = 0
    max_write_buffer_bytes: int = 0  # largest transport buffer seen after a write
    max_chunk_bytes: int = 0
    state: str = "planning"  # planning, streaming, closing


class _Producer:
    """Reads, merges and frames chunks in the pool, one chunk ahead; closes the cursor when done."""

    def __init__(self, pool: ThreadPoolExecutor, plan: ReplayPlan, mode: int, info: SessionInfo):
        self._pool, self._info = pool, info
        rows = max(1024, ROUND_ROWS // max(1, len(plan.sources)))
        self._cursor = plan.open(batch_rows=rows, wrap=lambda s: EncodingSource(s, plan.exchange, mode))
        self._pending: Future | None = None
        self._closed = False

    def _produce(self) -> FramedChunk | None:
        batch = self._cursor.next_batch()
        self._info.rows_read = sum(s.rows_read for s in self._cursor.sources)
        return None if batch is None else chunk_of(batch)

    async def next(self) -> FramedChunk | None:
        if self._pending is None:
            self._pending = self._pool.submit(self._produce)
        chunk = await asyncio.wrap_future(self._pending)
        self._pending = self._pool.submit(self._produce) if chunk is not None else None
        return chunk

    def close(self, on_closed: Callable[[], None]) -> None:
        """Close the cursor once no read is in flight (a read running in the pool finishes first)."""
        if self._closed:
            return
        self._closed = True

        def done(_=None):
            self._cursor.close()
            on_closed()

        if self._pending is None:
            done()
        else:
            self._pending.add_done_callback(done)


@dataclass
class ReplayServer:
    """An aiohttp application replaying ``catalog``; :meth:`start` binds it to ports on a host."""

    catalog: ReplayCatalog
    workers: int = 2
    write_bytes: int = WRITE_BYTES
    max_sessions: int = MAX_SESSIONS
    sessions: dict[int, SessionInfo] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)
    _runner: web.AppRunner | None = None
    _sockets: set = field(default_factory=set)

    def __post_init__(self) -> None:
        if not EXCHANGE_NAME.fullmatch(self.catalog.exchange):
            raise ValueError(f"exchange {self.catalog.exchange!r}: use lower-case letters, digits and '-' (e.g. binance)")
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="replay")
        self.app = web.Application()
        self.app.router.add_get("/replay-normalized", self._http)
        self.app.router.add_get("/ws-replay-normalized", self._websocket)
        self.app.router.add_get("/health", self._health)
        self.app.on_shutdown.append(self._on_shutdown)

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", ports: tuple[int, ...] = (0,)) -> list[int]:
        """Listen on ``host`` at each of ``ports`` (0 = any free port); returns the bound ports."""
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        for port in ports:
            await web.TCPSite(self._runner, host, port).start()
        return [address[1] for address in self._runner.addresses]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def _on_shutdown(self, _app) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutting down")

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "sessions": len(self.sessions), "exchange": self.catalog.exchange})

    # ---- shared ----------------------------------------------------------------------------------
    def _open_session(self, transport: str) -> SessionInfo:
        info = SessionInfo(next(self._ids), transport)
        self.sessions[info.id] = info
        return info

    def _end_session(self, info: SessionInfo) -> None:
        self.sessions.pop(info.id, None)

    async def _plan(self, request: web.Request, info: SessionInfo) -> tuple[ReplayRequest, ReplayPlan]:
        if len(self.sessions) > self.max_sessions:
            raise _Busy(f"the server is replaying to {self.max_sessions} clients already; try again later")
        replay = parse_options(request.query.get("options"))
        info.request = replay.describe()
        plan = await asyncio.get_running_loop().run_in_executor(self._pool, self.catalog.plan, replay)
        return replay, plan

    async def _stream(self, producer: _Producer, replay: ReplayRequest, info: SessionInfo, write, drain, buffered) -> None:
        loop = asyncio.get_running_loop()
        info.state = "streaming"
        t0 = None
        while (chunk := await producer.next()) is not None:
            info.max_chunk_bytes = max(info.max_chunk_bytes, len(chunk.data))
            if replay.speed is None:
                await self._write_range(chunk, 0, len(chunk), info, write, drain, buffered)
                continue
            if t0 is None:
                t0 = loop.time()
            due = t0 + (chunk.ts - replay.start_ns).astype(np.float64) / (1e9 * replay.speed)
            i = 0
            while i < len(chunk):
                now = loop.time()
                j = int(np.searchsorted(due, now, side="right"))
                if j > i:
                    await self._write_range(chunk, i, j, info, write, drain, buffered)
                    i = j
                else:
                    await asyncio.sleep(float(due[i] - now))

    async def _write_range(self, chunk: FramedChunk, i: int, j: int, info: SessionInfo, write, drain, buffered) -> None:
        """Messages ``i..j-1`` of ``chunk``, in slices of at most ``write_bytes``, waiting on a full transport."""
        view = memoryview(chunk.data)
        while i < j:
            start = int(chunk.ends[i - 1]) if i else 0
            k = max(i + 1, min(j, int(np.searchsorted(chunk.ends, start + self.write_bytes, side="right"))))
            end = int(chunk.ends[k - 1])
            await write(view[start:end])
            info.max_write_buffer_bytes = max(info.max_write_buffer_bytes, buffered())
            info.messages_sent += k - i
            info.bytes_sent += end - start
            i = k
            await drain()

    # ---- HTTP ------------------------------------------------------------------------------------
    async def _http(self, request: web.Request) -> web.StreamResponse:
        info = self._open_session("http")
        producer = None
        try:
            try:
                replay, plan = await self._plan(request, info)
            except ReplayError as exc:
                return web.Response(status=exc.http_status, text=exc.to_json(), content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "application/x-json-stream"})
            await response.prepare(request)
            producer = _Producer(self._pool, plan, NDJSON, info)
            transport = request.transport
            try:
                await self._stream(producer, replay, info, response.write, _noop, lambda: _buffered(transport))
            except ReplayError as exc:
                log.warning("replay %s failed while streaming: %s", info.request, exc.message)
                await response.write((exc.to_json() + "\n").encode())
                if request.transport is not None:
                    request.transport.close()  # no terminating chunk: the client sees an incomplete body
                return response
            except (ConnectionResetError, ConnectionError):
                return response  # the client went away; the cursor is closed below
            await response.write_eof()
            return response
        finally:
            info.state = "closing"
            if producer is None:
                self._end_session(info)
            else:
                producer.close(lambda: self._end_session(info))

    # ---- WebSocket -------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        info = self._open_session("websocket")
        ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 20)
        producer = None
        try:
            payload_writer = await ws.prepare(request)
        except Exception:
            self._end_session(info)
            raise
        self._sockets.add(ws)
        reader = asyncio.create_task(self._read_until_closed(ws))
        try:
            try:
                replay, plan = await self._plan(request, info)
            except ReplayError as exc:
                await self._refuse(ws, exc)
                return ws
            producer = _Producer(self._pool, plan, WEBSOCKET, info)
            transport = request.transport

            async def write(data) -> None:
                if transport is None or transport.is_closing():
                    raise ConnectionResetError("the client closed the connection")
                transport.write(data)

            streaming = asyncio.create_task(
                self._stream(producer, replay, info, write, payload_writer.drain, lambda: _buffered(transport))
            )
            await asyncio.wait({streaming, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not streaming.done():  # the client closed or vanished first
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)
                return ws
            try:
                streaming.result()
            except ReplayError as exc:
                log.warning("replay %s failed while streaming: %s", info.request, exc.message)
                await self._refuse(ws, exc)
                return ws
            except (ConnectionResetError, ConnectionError):
                return ws
            await ws.close(code=1000, message=b"replay complete")
            return ws
        finally:
            info.state = "closing"
            reader.cancel()
            self._sockets.discard(ws)
            if producer is None:
                self._end_session(info)
            else:
                producer.close(lambda: self._end_session(info))

    @staticmethod
    async def _refuse(ws: web.WebSocketResponse, exc: ReplayError) -> None:
        if ws.closed:
            return
        try:
            await ws.send_str(exc.to_json())
        except ConnectionError:
            return
        await ws.close(code=exc.close_code, message=close_reason(exc.message).encode())

    @staticmethod
    async def _read_until_closed(ws: web.WebSocketResponse) -> None:
        """Consume what the client sends (pings, close) until the connection ends."""
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break


class _Busy(ReplayError):
    http_status = 503
    close_code = 1013  # try again later
    kind = "busy"


async def _noop() -> None:
    return None


def _buffered(transport) -> int:
    return 0 if transport is None else transport.get_write_buffer_size()


def tune_for_serving(trim_bytes: int = 128 << 20, mmap_bytes: int = 32 << 20, switch_interval_s: float = 0.0005) -> None:
    """Process-wide settings for a process that serves replays (the CLI and the benchmark call it; library code never does).

    * glibc keeps freed buffers for reuse (``mallopt`` mmap and trim thresholds raised): every
      merge round allocates a few MB, and by default each one comes back as fresh pages whose
      first-touch faults are slow on virtual machines: on this project's 2-core VM they cost ~9x
      the framing itself (390 against 42 ns a message in ``chunk_of``). Linux only; skipped elsewhere;
    * the GIL switch interval drops from 5 ms to 0.5 ms: a reader thread running Python code can
      otherwise hold the event loop ~5 ms past a paced message's due time;
    * objects alive after start-up (modules, Numba dispatchers) are frozen out of the garbage
      collector's scans (``gc.freeze``), so collections are short while streaming.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_trim_threshold, trim_bytes)
        libc.mallopt(m_mmap_threshold, mmap_bytes)
    except (OSError, AttributeError):
        pass
    sys.setswitchinterval(switch_interval_s)
    gc.freeze()


async def serve_forever(catalog: ReplayCatalog, host: str, ports: tuple[int, ...], *, workers: int = 2,
                        on_ready: Callable[[list[int]], None] | None = None) -> None:
    """Run a :class:`ReplayServer` until cancelled (Ctrl-C in the CLI)."""
    tune_for_serving()
    server = ReplayServer(catalog, workers=workers)
    bound = await server.start(host, ports)
    if on_ready is not None:
        on_ready(bound)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
