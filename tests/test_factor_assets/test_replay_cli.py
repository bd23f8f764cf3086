"""``factor-pipeline replay serve``: a real server process, on the port and the tardis-machine WebSocket port + 1."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import urllib.parse

import aiohttp

from factor_core.partition_store import PartitionStore
from partitions import register_symbols
from tests.test_factor_assets.cli_runner import BIN, REPO
from tests.test_factor_core.replay_data import write_simulated


def _two_free_ports() -> int:
    """A port p with p + 1 free too (tardis-machine's layout)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free ports")


def test_replay_serve_serves_both_ports_refuses_unregistered_symbols_and_stops_on_sigterm(instance, dagster_home, data_root):
    register_symbols(instance, ["BTCUSDT"])
    write_simulated(PartitionStore(data_root), ["BTCUSDT", "ETHUSDT"], ["2024-01-02"], trades_per_minute=2)
    port = _two_free_ports()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "FACTOR_DATA_ROOT": str(data_root)}
    server = subprocess.Popen([str(BIN / "factor-pipeline"), "replay", "serve", "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner and f"http://127.0.0.1:{port + 1}" in banner, server.stderr.read()

        async def client():
            options = {"symbols": ["BTCUSDT"], "from": "2024-01-02T00:00:00Z", "to": "2024-01-02T00:10:00Z",
                       "dataTypes": ["trade"]}
            async with aiohttp.ClientSession() as session:
                health = [await (await session.get(f"http://127.0.0.1:{p}/health")).json() for p in (port, port + 1)]
                query = urllib.parse.quote_plus(json.dumps(options))
                async with session.ws_connect(f"ws://127.0.0.1:{port + 1}/ws-replay-normalized?options={query}") as ws:
                    trades = [json.loads(m.data) async for m in ws]
                query = urllib.parse.quote_plus(json.dumps({**options, "symbols": ["ETHUSDT"]}))
                refused = await session.get(f"http://127.0.0.1:{port}/replay-normalized?options={query}")
                return health, trades, refused.status, await refused.json()

        health, trades, status, refusal = asyncio.run(client())
        assert [h["status"] for h in health] == ["ok", "ok"]
        assert trades and all(t["type"] == "trade" and t["symbol"] == "BTCUSDT" for t in trades)
        assert status == 404 and "['ETHUSDT'] are not registered (registered: BTCUSDT)" in refusal["message"]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
