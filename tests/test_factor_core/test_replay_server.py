"""The replay server on 127.0.0.1, driven by a plain aiohttp client written here (not the project's client).

Every message is compared with the stored rows (``replay_data.reference_messages``);
every bad input and fault of issue 12 is tried over both transports, and the
server is shown to keep serving afterwards.
"""

import asyncio
import json
import socket
import time
import urllib.parse

import aiohttp
import numpy as np
import pandas as pd
import pytest

from factor_core.partition_store import PartitionStore
from factor_core.replay import ReplayCatalog, ReplayServer
from tests.test_factor_core.replay_data import book_rows, ns, reference_messages, write_simulated, write_table

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAY = "2024-01-02"
WINDOW = {"symbols": SYMBOLS, "from": "2024-01-02T06:00:00Z", "to": "2024-01-02T08:00:00Z",
          "dataTypes": ["trade", "book_snapshot_10_0ms"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = PartitionStore(tmp_path_factory.mktemp("served") / "data")
    write_simulated(store, SYMBOLS, [DAY], trades_per_minute=6)
    return store


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    store = PartitionStore(tmp_path_factory.mktemp("big") / "data")
    write_simulated(store, ["BTCUSDT"], [DAY], trades_per_minute=160)  # ~230k trades, ~50 MB of JSON
    return store


def url(base: str, options, *, websocket: bool) -> str:
    raw = options if isinstance(options, str) else json.dumps(options)
    return f"{base}/{'ws-' if websocket else ''}replay-normalized?options={urllib.parse.quote_plus(raw)}"


def serve(store, scenario, **server_options):
    """Run ``scenario(server, base_url)`` against a fresh server on a free port of 127.0.0.1."""
    async def main():
        server = ReplayServer(ReplayCatalog(store), **server_options)
        port, = await server.start("127.0.0.1", (0,))
        try:
            return await scenario(server, f"http://127.0.0.1:{port}")
        finally:
            await server.stop()

    return asyncio.run(main())


async def ws_replay(session, base, options):
    """(messages, error frame or None, close code) of one WebSocket replay."""
    messages, error = [], None
    async with session.ws_connect(url(base, options, websocket=True), max_msg_size=0) as ws:
        async for msg in ws:
            data = json.loads(msg.data)
            if data.get("type") == "error":
                error = data
            else:
                messages.append(data)
        return messages, error, ws.close_code


async def http_replay(session, base, options):
    """(status, messages or error body) of one HTTP replay."""
    async with session.get(url(base, options, websocket=False)) as response:
        body = await response.text()
        if response.status != 200:
            return response.status, json.loads(body)
        assert response.headers["Content-Type"] == "application/x-json-stream"
        return 200, [json.loads(line) for line in body.splitlines()]


def test_websocket_and_http_stream_exactly_the_stored_rows(store):
    async def scenario(server, base):
        async with aiohttp.ClientSession() as session:
            ws_messages, error, code = await ws_replay(session, base, WINDOW)
            status, http_messages = await http_replay(session, base, WINDOW)
            health = await (await session.get(f"{base}/health")).json()
        return ws_messages, error, code, status, http_messages, health

    ws_messages, error, code, status, http_messages, health = serve(store, scenario)
    expected = reference_messages(store.root, SYMBOLS, WINDOW["from"], WINDOW["to"], WINDOW["dataTypes"])
    assert (error, code, status) == (None, 1000, 200)
    assert ws_messages == expected and http_messages == expected
    assert len(expected) > 1000
    assert health == {"status": "ok", "sessions": 0, "exchange": "binance"}


def test_an_options_array_is_one_synchronized_stream(store):
    async def scenario(server, base):
        async with aiohttp.ClientSession() as session:
            array = [{**WINDOW, "symbols": [s], "exchange": "binance"} for s in SYMBOLS]
            return (await ws_replay(session, base, array))[0], (await ws_replay(session, base, WINDOW))[0]

    from_array, single = serve(store, scenario)
    assert from_array == single


def test_frames_of_every_length_class_reach_the_client_intact(tmp_path):
    store = PartitionStore(tmp_path)
    levels = 1000  # ~90 kB: a 64-bit WebSocket length; trades (~215 B) use 16-bit lengths
    bids = [(50_000.0 - 0.5 * i, 0.001 * (i + 1)) for i in range(levels)]
    asks = [(50_000.5 + 0.5 * i, 0.002 * (i + 1)) for i in range(levels)]
    write_table(store, "raw_book", "BTCUSDT", DAY, pd.DataFrame(book_rows("2024-01-02T00:00:00Z", bids, asks)))
    write_table(store, "raw_trades", "BTCUSDT", DAY, pd.DataFrame(
        {"trade_id": [1, 2], "ts": ["2024-01-02T00:00:00.5Z", "2024-01-02T00:00:01Z"], "price": [50_000.0, 50_000.5],
         "qty": [0.1, 0.2], "is_buyer_maker": [True, False]}))
    options = {"symbols": ["BTCUSDT"], "from": DAY, "to": "2024-01-03", "dataTypes": ["book_snapshot_1000_0ms", "trade"]}

    async def scenario(server, base):
        async with aiohttp.ClientSession() as session:
            return await ws_replay(session, base, options), await http_replay(session, base, options)

    (messages, error, code), (status, http_messages) = serve(store, scenario)
    assert messages == http_messages == reference_messages(store.root, ["BTCUSDT"], DAY, "2024-01-03", options["dataTypes"])
    assert len(json.dumps(messages[0])) > 65_536 and len(messages[0]["bids"]) == levels


def test_a_paced_replay_never_sends_a_message_before_it_is_due(big_store):
    speed = 60.0
    options = {"symbols": ["BTCUSDT"], "from": "2024-01-02T13:00:00Z", "to": "2024-01-02T13:01:00Z",
               "dataTypes": ["trade"], "speed": speed}

    async def scenario(server, base):
        arrivals = []
        async with aiohttp.ClientSession() as session:
            sent = time.monotonic()
            async with session.ws_connect(url(base, options, websocket=True)) as ws:
                async for msg in ws:
                    arrivals.append((time.monotonic(), json.loads(msg.data)["timestamp"]))
        return sent, arrivals

    sent, arrivals = serve(big_store, scenario)
    due = np.array([(ns(ts) - ns(options["from"])) / 1e9 / speed for _, ts in arrivals])
    elapsed = np.array([t for t, _ in arrivals]) - sent
    assert len(arrivals) > 100
    # The replay clock starts after the request was sent, so no message may arrive before its due time
    # (2 ms for clock granularity). How late they arrive is measured in bench/bench_replay.py.
    assert int(np.sum(elapsed < due - 0.002)) == 0


def _bad_request_cases(store):
    day2 = "2024-01-03"
    return [
        ("unknown symbol", {**WINDOW, "symbols": ["DOGEUSDT"]}, 4404, 404, "['DOGEUSDT'] are not registered"),
        ("from after to", {**WINDOW, "from": "2024-01-02T09:00:00Z"}, 4400, 400, "must be before options.to"),
        ("never materialized", {**WINDOW, "to": f"{day2}T01:00:00Z"}, 4404, 404,
         f"never materialized: raw_trades: {day2}|BTCUSDT, {day2}|ETHUSDT; raw_book: {day2}|BTCUSDT, {day2}|ETHUSDT"),
        ("malformed options", '{"symbols": ["BTCUSDT"], "from": ', 4400, 400, "options is not valid JSON"),
        ("speed zero", {**WINDOW, "speed": 0}, 4400, 400, "options.speed 0 is invalid"),
        ("speed negative", {**WINDOW, "speed": -1.5}, 4400, 400, "options.speed -1.5 is invalid"),
        ("other exchange", {**WINDOW, "exchange": "bitmex"}, 4404, 404, "replays the stored 'binance' data"),
    ]


def test_bad_requests_get_a_clear_message_and_code_on_both_transports_and_the_server_keeps_serving(store):
    cases = _bad_request_cases(store)

    async def scenario(server, base):
        out = []
        async with aiohttp.ClientSession() as session:
            for name, options, ws_code, http_status, words in cases:
                messages, error, code = await ws_replay(session, base, options)
                status, body = await http_replay(session, base, options)
                good, _, good_code = await ws_replay(session, base, {**WINDOW, "to": "2024-01-02T06:05:00Z"})
                out.append((name, messages, error, code, status, body, len(good), good_code))
        return out

    for (name, messages, error, code, status, body, good, good_code), case in zip(serve(store, scenario), cases,
                                                                                   strict=True):
        _, _, ws_code, http_status, words = case
        assert messages == [], name
        assert (code, error["code"], status, body["code"]) == (ws_code, ws_code, http_status, ws_code), name
        assert words in error["message"] and words in body["message"], (name, error["message"])
        assert good > 0 and good_code == 1000, name  # the next client is served normally


def test_a_crossed_snapshot_met_while_streaming_ends_the_stream_with_the_reason(tmp_path):
    store = PartitionStore(tmp_path)
    rows = [*book_rows("2024-01-02T00:00:00Z", [(100.0, 1.0)], [(101.0, 1.0)]),
            *book_rows("2024-01-02T00:01:00Z", [(100.0, 1.0)], [(101.0, 1.0)]),
            *book_rows("2024-01-02T00:02:00Z", [(102.0, 1.0)], [(101.0, 1.0)])]
    write_table(store, "raw_book", "BTCUSDT", DAY, pd.DataFrame(rows))
    options = {"symbols": ["BTCUSDT"], "from": DAY, "to": "2024-01-03", "dataTypes": ["book_snapshot_5_0ms"]}

    async def scenario(server, base):
        async with aiohttp.ClientSession() as session:
            ws = await ws_replay(session, base, options)
            async with session.get(url(base, options, websocket=False)) as response:
                status, received = response.status, b""
                with pytest.raises(aiohttp.ClientPayloadError):
                    async for data in response.content.iter_any():
                        received += data
        return ws, status, received

    (messages, error, code), status, received = serve(store, scenario)
    assert code == 4422 and error["code"] == 4422
    assert [m["timestamp"] for m in messages] == ["2024-01-02T00:00:00.000000Z"]  # what came before, never the crossed one
    assert "2024-01-02T00:02:00.000000Z is crossed: best bid 102.0 >= best ask 101.0" in error["message"]
    lines = [json.loads(line) for line in received.decode().splitlines()]
    assert status == 200 and lines[-1]["type"] == "error" and lines[-1]["code"] == 4422
    assert all(line["type"] != "book_snapshot" or line["bids"][0]["price"] < 101.0 for line in lines)


def _wait_for(predicate, what: str):
    async def wait():
        for _ in range(500):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    return wait()


def test_a_client_that_disconnects_mid_stream_has_its_cursor_freed(store):
    async def scenario(server, base):
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url(base, {**WINDOW, "to": "2024-01-03"}, websocket=True))
            for _ in range(50):
                await ws.receive()
            assert len(server.sessions) == 1
            await ws.close()
            await _wait_for(lambda: not server.sessions, "the WebSocket session to end")
            response = await session.get(url(base, {**WINDOW, "to": "2024-01-03"}, websocket=False))
            await response.content.read(10_000)
            assert len(server.sessions) == 1
            response.close()  # drop the connection mid-body
            await _wait_for(lambda: not server.sessions, "the HTTP session to end")
            messages, _, code = await ws_replay(session, base, {**WINDOW, "to": "2024-01-02T06:05:00Z"})
            return len(messages), code

    served, code = serve(store, scenario)
    assert served > 0 and code == 1000


def test_a_slow_reader_holds_back_its_own_cursor_and_others_are_still_served(big_store):
    options = {"symbols": ["BTCUSDT"], "from": DAY, "to": "2024-01-03", "dataTypes": ["trade"]}
    total = pd.read_parquet(big_store.path("raw_trades", {"date": DAY, "symbol": "BTCUSDT"})).shape[0]
    write_bytes = 64 * 1024

    def small_receive_buffer(addr_info):
        # A small receive window, so what the kernel buffers between the two ends stays small on any machine.
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=kind, proto=proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        return sock

    async def scenario(server, base):
        connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
        async with aiohttp.ClientSession(connector=connector) as slow_session, aiohttp.ClientSession() as fast_session:
            slow = await slow_session.ws_connect(url(base, options, websocket=True))
            for _ in range(20):  # a reader that takes a message now and then
                await slow.receive()
                await asyncio.sleep(0.01)
            session = next(iter(server.sessions.values()))
            fast = await ws_replay(fast_session, base, {**options, "to": "2024-01-02T00:30:00Z"})
            await asyncio.sleep(0.3)
            stats = (session.rows_read, session.messages_sent, session.max_write_buffer_bytes, session.max_chunk_bytes)
            await slow.close()
            return stats, fast

    (rows_read, sent, max_buffer, max_chunk), (fast_messages, _, fast_code) = serve(big_store, scenario,
                                                                                   write_bytes=write_bytes)
    assert total > 200_000
    assert rows_read < total / 3  # the cursor waits for the client instead of reading ahead
    assert sent < total / 3
    assert max_buffer <= 64 * 1024 + write_bytes + 1024  # transport high-water mark + one slice
    assert max_chunk < 8 * 1024 * 1024  # one merge round, whatever the range
    assert fast_code == 1000 and len(fast_messages) > 1000


def test_many_clients_at_once_each_get_the_whole_stream(store):
    options = {**WINDOW, "to": "2024-01-02T07:00:00Z"}

    async def scenario(server, base):
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(ws_replay(session, base, options) for _ in range(6)))

    results = serve(store, scenario)
    expected = reference_messages(store.root, SYMBOLS, options["from"], options["to"], options["dataTypes"])
    assert all(messages == expected and code == 1000 for messages, _, code in results)
