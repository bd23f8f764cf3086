"""Tick replay and strategy engine: throughput and pacing, each beside a baseline measured in the same run.

Run:  .venv/bin/python bench/bench_replay.py [--ticks N] [--repeat R] [--data DIR]

Simulates ``N`` stored trades (default 1,000,000: BTCUSDT and ETHUSDT, one day each, plus
their 1-minute book snapshots) into ``DIR`` (default a temporary folder; an existing one is
reused), then prints, best of ``R`` (default 3) with every measurement and its baseline
interleaved so drifting load hits both alike:

(a) **load**: the replay cursor reading and merging the N stored ticks (pyarrow batches,
    merge, no JSON) and the same plus JSON encoding, against ``pyarrow.parquet.read_table``
    of the same files (rows/s);
(b) **throughput** at max speed, messages/s measured by the client (a separate process,
    aiohttp): one client, and ten clients (two client processes of five connections),
    against two bare WebSocket servers sending the *same* pre-encoded messages: aiohttp's
    ``send_str`` one message at a time, and the same frames pre-built and written in bulk
    (the transport's ceiling); target >= 200,000 messages/s to one client;
(c) **pacing** at 10x over a dense 90-second window: the gap between each message's due time
    and its arrival (client clock, anchored on the first message), P50 / P99 / max, against a
    bare server pacing the same pre-encoded messages with the same sleep-until-due loop;
    target P99 <= 5 ms;
(d) **engine** events/s over the stored events with 1 strategy and with 10 side by side,
    against a loop handing the same events to one no-op handler.

The machine is shared: absolute numbers move with the load; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from factor_core.partition_store import PartitionStore  # noqa: E402
from factor_core.replay import ReplayCatalog, parse_options  # noqa: E402
from factor_core.replay.encode import NDJSON, WEBSOCKET, EncodingSource, chunk_of, unframe  # noqa: E402

DAY = "2024-01-02"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
FULL = {"symbols": list(SYMBOLS), "from": DAY, "to": "2024-01-03", "dataTypes": ["trade"]}
PACED_WINDOW = {"symbols": list(SYMBOLS), "from": "2024-01-02T14:00:00Z", "to": "2024-01-02T14:01:30Z",
                "dataTypes": ["trade", "book_snapshot_10_0ms"]}
TARGET_MSGS, TARGET_P99_MS = 200_000, 5.0


# ---- data ------------------------------------------------------------------------------------------
def prepare(root: Path, ticks: int) -> PartitionStore:
    from factor_core.schemas import BOOK, TRADES
    from factor_core.simulator import SimulatorConfig, simulate_day

    store = PartitionStore(root)
    per_minute = ticks / len(SYMBOLS) / 1440
    marker = root / f".ticks-{ticks}"
    if marker.exists():
        return store
    config = SimulatorConfig(trades_per_minute=per_minute)
    for symbol in SYMBOLS:
        sim = simulate_day(symbol, dt.date.fromisoformat(DAY), config)
        dims = {"date": DAY, "symbol": symbol}
        store.publish([store.stage("raw_trades", dims, pa.Table.from_pandas(sim.trades, schema=TRADES, preserve_index=False)),
                       store.stage("raw_book", dims, pa.Table.from_pandas(sim.book, schema=BOOK, preserve_index=False))])
    marker.touch()
    return store


def plan_of(store: PartitionStore, options: dict):
    return ReplayCatalog(store).plan(parse_options(json.dumps(options)))


def encoded_messages(store: PartitionStore, options: dict) -> tuple[list[str], list[int]]:
    """The replay's messages (JSON text) and timestamps (ns), through the pure pipeline."""
    cursor = plan_of(store, options).open(wrap=lambda s: EncodingSource(s, "binance", NDJSON))
    texts, stamps = [], []
    while (batch := cursor.next_batch()) is not None:
        chunk = chunk_of(batch)
        texts.extend(unframe(chunk.data, NDJSON))
        stamps.extend(chunk.ts.tolist())
    cursor.close()
    return texts, stamps


# ---- (a) load --------------------------------------------------------------------------------------
def load_cursor(store, encode: bool) -> int:
    wrap = (lambda s: EncodingSource(s, "binance", WEBSOCKET)) if encode else None
    cursor = plan_of(store, FULL).open(wrap=wrap)
    rows = 0
    while (batch := cursor.next_batch()) is not None:
        if encode:
            chunk_of(batch)
        rows += len(batch)
    cursor.close()
    return rows


def load_pyarrow(store) -> int:
    return sum(pq.read_table(store.path("raw_trades", {"date": DAY, "symbol": s})).num_rows for s in SYMBOLS)


def best(fn, repeat: int) -> tuple[float, int]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


# ---- servers (run as subprocesses: `--serve KIND --port P --data DIR`) ------------------------------
def serve_main(kind: str, port: int, data: Path, options: dict) -> None:
    from aiohttp import web

    from factor_core.replay.server import ReplayServer, tune_for_serving

    tune_for_serving()  # every server of the comparison alike (see its docstring)

    async def main():
        if kind == "replay":
            server = ReplayServer(ReplayCatalog(PartitionStore(data)))
            await server.start("127.0.0.1", (port,))
        else:
            texts, stamps = encoded_messages(PartitionStore(data), options)
            request = parse_options(json.dumps(options))
            frames = bytes(_frames(texts))
            ends = np.cumsum([len(_frames([t])) for t in texts])

            async def handler(request_):
                ws = web.WebSocketResponse(compress=False)
                writer = await ws.prepare(request_)
                transport = request_.transport
                speed = request.speed
                if speed is None and kind == "send_str":
                    for text in texts:
                        await ws.send_str(text)
                elif speed is None:
                    view = memoryview(frames)
                    for start in range(0, len(frames), 256 * 1024):
                        transport.write(view[start:start + 256 * 1024])
                        await writer.drain()
                else:  # the same sleep-until-due loop as the replay server, over the same messages
                    loop = asyncio.get_running_loop()
                    t0 = loop.time()
                    due = t0 + (np.array(stamps) - request.start_ns) / (1e9 * speed)
                    i = 0
                    while i < len(texts):
                        now = loop.time()
                        j = int(np.searchsorted(due, now, side="right"))
                        if j > i:
                            transport.write(frames[(ends[i - 1] if i else 0):ends[j - 1]])
                            i = j
                        else:
                            await asyncio.sleep(float(due[i] - now))
                await ws.close()
                return ws

            app = web.Application()
            app.router.add_get("/ws-replay-normalized", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _frames(texts: list[str]) -> bytearray:
    out = bytearray()
    for text in texts:
        data = text.encode()
        n = len(data)
        out += bytes([0x81, n]) if n < 126 else (bytes([0x81, 126]) + n.to_bytes(2, "big"))
        out += data
    return out


# ---- clients (`--client URL --connections N [--paced SPEED]`) ---------------------------------------
def client_main(url: str, connections: int, paced: float | None) -> None:
    import aiohttp

    async def one(session):
        arrivals, stamps, n = [], [], 0
        async with session.ws_connect(url, max_msg_size=0) as ws:
            t0 = time.perf_counter()
            async for msg in ws:
                n += 1
                if paced:
                    arrivals.append(time.perf_counter())
                    stamps.append(json.loads(msg.data)["timestamp"])
            return n, time.perf_counter() - t0, arrivals, stamps

    async def main():
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(one(session) for _ in range(connections)))

    results = asyncio.run(main())
    out = {"messages": sum(r[0] for r in results), "seconds": max(r[1] for r in results)}
    if paced:
        n, _, arrivals, stamps = results[0]
        ts = np.array([np.datetime64(s[:-1], "ns").astype(np.int64) for s in stamps])
        offsets = (ts - ts[0]) / 1e9 / paced
        gaps = (np.array(arrivals) - arrivals[0]) - offsets
        gaps -= min(0.0, gaps.min())  # anchor: no message earlier than the earliest one allows
        out["gaps_ms"] = (gaps * 1e3).tolist()
    print(json.dumps(out), flush=True)


class Server:
    def __init__(self, kind: str, data: Path, options: dict):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(self.port),
                                      "--data", str(data), "--options", json.dumps(options)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def url(self, options: dict) -> str:
        import urllib.parse

        return f"ws://127.0.0.1:{self.port}/ws-replay-normalized?options={urllib.parse.quote_plus(json.dumps(options))}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_clients(url: str, processes: int, connections: int, paced: float | None = None) -> list[dict]:
    args = [sys.executable, __file__, "--client", url, "--connections", str(connections)]
    if paced:
        args += ["--paced", str(paced)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return [json.loads(p.communicate()[0]) for p in procs]


def throughput(server: Server, options: dict, processes: int, connections: int) -> float:
    results = run_clients(server.url(options), processes, connections)
    return sum(r["messages"] for r in results) / max(r["seconds"] for r in results)


# ---- (d) engine ------------------------------------------------------------------------------------
def engine_rates(store, repeat: int) -> dict[str, float]:
    from factor_core.replay.engine import Engine, StrategySpec, file_events

    options = {**FULL, "to": "2024-01-02T06:00:00Z", "dataTypes": ["trade", "book_snapshot_10_0ms"]}
    request = parse_options(json.dumps(options))
    events = list(file_events(plan_of(store, options)))
    taker = StrategySpec("taker", "book_imbalance_taker", SYMBOLS, max_position_usd=5_000.0)
    ten = [StrategySpec(f"taker{i}", "book_imbalance_taker", SYMBOLS, {"threshold": 0.1 + 0.1 * i}) for i in range(5)]
    ten += [StrategySpec(f"mm{i}", "simple_market_maker", SYMBOLS, {"half_spread_bps": 2.0 + 2 * i}) for i in range(5)]

    def engine(specs):
        def go():
            Engine(specs, start_us=request.start_ns // 1000, end_us=request.end_ns // 1000).run(events)
        return go

    def noop():
        handler = (lambda event: None)
        for event in events:
            handler(event)

    def feed():
        return sum(1 for _ in file_events(plan_of(store, options)))

    timings = {name: [] for name in ("noop", "feed", "1", "10")}
    for _ in range(repeat):
        for name, fn in (("noop", noop), ("feed", feed), ("1", engine([taker])), ("10", engine(ten))):
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    return {name: len(events) / min(t) for name, t in timings.items()} | {"events": len(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--serve"), parser.add_argument("--port", type=int), parser.add_argument("--options")
    parser.add_argument("--client"), parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--paced", type=float, default=None)
    parser.add_argument("--parts", default="abcd", help="which measurements to run (default abcd: all)")
    args = parser.parse_args()
    if args.serve:
        return serve_main(args.serve, args.port, args.data, json.loads(args.options))
    if args.client:
        return client_main(args.client, args.connections, args.paced)

    from factor_core.replay.server import tune_for_serving

    tune_for_serving()  # as the servers do; pyarrow's baseline runs under it too
    data = args.data or Path(tempfile.mkdtemp(prefix="bench_replay_"))
    t0 = time.perf_counter()
    store = prepare(data, args.ticks)
    print(f"data: {data} ({time.perf_counter() - t0:.1f} s to prepare)")

    if "a" in args.parts:
        measure_load(store, args.repeat)
    if "b" in args.parts:
        measure_throughput(data, args.repeat)
    if "c" in args.parts:
        measure_pacing(data, args.repeat)
    if "d" in args.parts:
        measure_engine(store, args.repeat)
    print(f"\nload average at the end of the run: {_load()[0]:.1f}")


def measure_load(store, repeat: int) -> None:
    runs = {"cursor": [], "cursor+json": [], "pyarrow": []}
    rows = 0
    for _ in range(repeat):
        for name, fn in (("pyarrow", lambda: load_pyarrow(store)), ("cursor", lambda: load_cursor(store, False)),
                         ("cursor+json", lambda: load_cursor(store, True))):
            seconds, rows = best(fn, 1)
            runs[name].append(seconds)
    base = min(runs["pyarrow"])
    print(f"\n(a) load of {rows:,} stored ticks (best of {repeat})")
    for name in ("pyarrow", "cursor", "cursor+json"):
        s = min(runs[name])
        print(f"  {name:<12} {s * 1e3:8.1f} ms  {rows / s:>12,.0f} rows/s  time vs pyarrow.read_table {s / base:5.2f}x")


def measure_throughput(data: Path, repeat: int) -> None:
    servers = {kind: Server(kind, data, FULL) for kind in ("replay", "send_str", "bulk")}
    rates = {(kind, n): [] for kind in servers for n in (1, 10)}
    try:
        for _ in range(repeat):
            for kind, server in servers.items():
                rates[(kind, 1)].append(throughput(server, FULL, 1, 1))
                rates[(kind, 10)].append(throughput(server, FULL, 2, 5))
    finally:
        for server in servers.values():
            server.close()
    print(f"\n(b) throughput at max speed, messages/s seen by the clients (best of {repeat}; target >= "
          f"{TARGET_MSGS:,} to one client)")
    print(f"  {'server':<34} {'1 client':>12} {'10 clients':>12}")
    labels = {"replay": "replay server (Parquet -> JSON)", "send_str": "baseline: aiohttp send_str",
              "bulk": "baseline: pre-built frames, bulk"}
    for kind in servers:
        print(f"  {labels[kind]:<34} {max(rates[(kind, 1)]):>12,.0f} {max(rates[(kind, 10)]):>12,.0f}")
    one = max(rates[("replay", 1)])
    print(f"  replay / send_str: {one / max(rates[('send_str', 1)]):.2f}x (1 client), "
          f"{max(rates[('replay', 10)]) / max(rates[('send_str', 10)]):.2f}x (10); replay / bulk: "
          f"{one / max(rates[('bulk', 1)]):.2f}x (1 client)")
    print(f"  target {TARGET_MSGS:,}/s, floor = bulk baseline {max(rates[('bulk', 1)]):,.0f}/s, result {one:,.0f}/s: "
          f"{'met' if one >= TARGET_MSGS else 'NOT met'}")


def measure_pacing(data: Path, repeat: int) -> None:
    paced = {**PACED_WINDOW, "speed": 10}
    servers = {kind: Server(kind, data, paced) for kind in ("replay", "paced")}
    gaps = {kind: [] for kind in servers}
    try:
        for _ in range(repeat):
            for kind, server in servers.items():
                gaps[kind].extend(run_clients(server.url(paced), 1, 1, paced=10)[0]["gaps_ms"])
    finally:
        for server in servers.values():
            server.close()
    print(f"\n(c) pacing at 10x: arrival minus due time, ms ({len(gaps['replay']):,} messages; target P99 <= {TARGET_P99_MS} ms)")
    for kind, label in (("paced", "baseline: bare paced WebSocket"), ("replay", "replay server")):
        g = np.array(gaps[kind])
        print(f"  {label:<32} P50 {np.percentile(g, 50):6.2f}  P99 {np.percentile(g, 99):6.2f}  max {g.max():7.2f}")
    p99 = float(np.percentile(gaps["replay"], 99))
    print(f"  target P99 <= {TARGET_P99_MS} ms, floor = baseline P99 {np.percentile(gaps['paced'], 99):.2f} ms, "
          f"result {p99:.2f} ms: {'met' if p99 <= TARGET_P99_MS else 'NOT met'}")


def measure_engine(store, repeat: int) -> None:
    engine = engine_rates(store, repeat)
    print(f"\n(d) strategy engine over {engine['events']:,} stored events (6 h, 2 symbols; best of {repeat})")
    print(f"  baseline: no-op handler loop     {engine['noop']:>12,.0f} events/s")
    print(f"  file feed alone (read + events)  {engine['feed']:>12,.0f} events/s")
    print(f"  engine, 1 strategy               {engine['1']:>12,.0f} events/s  ({engine['noop'] / engine['1']:.0f}x the no-op loop's time)")
    print(f"  engine, 10 strategies            {engine['10']:>12,.0f} events/s  ({engine['1'] / engine['10']:.1f}x the time of 1)")


def _load() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return [float("nan")]


if __name__ == "__main__":
    main()
