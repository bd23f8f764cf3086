"""The product where users look: dagster-webserver's GraphQL API and the asset graph in a real browser."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_factor_assets.cli_runner import BIN, REPO, assert_ok, run_cli

pytestmark = pytest.mark.slow

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAYS = ["2024-01-01", "2024-01-02"]
PER_SYMBOL = ["raw_klines", "raw_trades", "raw_book", "raw_funding", "raw_quotes", "liquidity_metrics",
              "liquidity_daily", "factor_bars"]
SCREENSHOT = REPO / "docs" / "ui-lineage.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webserver:
    def __init__(self, env: dict[str, str]):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes = [
            subprocess.Popen([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
                             cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             start_new_session=True),
            subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO,
                             env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             start_new_session=True),
        ]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload
        return payload["data"]

    def failure(self, run_id: str) -> list[str]:
        """The error messages of a failed run's steps (for assertion messages)."""
        data = self.graphql(
            """query($id: ID!) { runOrError(runId: $id) { ... on Run { eventConnection(afterCursor: null) { events {
                 __typename ... on ExecutionStepFailureEvent { stepKey error { message } }
                 ... on RunFailureEvent { message } } } } } }""", {"id": run_id})
        events = data["runOrError"]["eventConnection"]["events"]
        return [f"{e.get('stepKey', '')}: {(e.get('error') or {}).get('message') or e.get('message')}" for e in events
                if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")]

    def wait_ready(self, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                nodes = self.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
                if nodes:
                    return
            except OSError:
                pass
            time.sleep(2)
        raise AssertionError("dagster-webserver did not come up")

    def stop(self) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def server(dagster_home, data_root):
    env = {"DAGSTER_HOME": str(dagster_home), "FACTOR_DATA_ROOT": str(data_root), "SIM_TRADES_PER_MINUTE": "2"}
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", *SYMBOLS], env=env))
    web = Webserver(env)
    try:
        web.wait_ready()
        yield web
    finally:
        web.stop()


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return path


def _browser(url: str, out_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={out_dir / 'profile'}", "--window-size=1600,1000", "--virtual-time-budget=25000", *flags, url],
        capture_output=True, text=True, timeout=180,
    )


def test_the_graph_backfills_and_lineage_through_the_webserver_and_a_real_browser(server, data_root, tmp_path):
    # 1. Every asset and every edge of the code location, as GraphQL serves them.
    from factor_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    expected = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
                for k in graph.get_all_asset_keys()}
    nodes = server.graphql("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
    served = {"/".join(n["assetKey"]["path"]): sorted("/".join(d["path"]) for d in n["dependencyKeys"]) for n in nodes}
    assert served == expected

    # 2. A partition backfill of 2 days x 2 symbols of the per-symbol layers, each asset given its partitions
    # (with `partitionNames`, Dagster extends downstream assets along their look-back mappings: docs/operations.md).
    rectangle = {"start": f"{DAYS[0]}|{SYMBOLS[0]}", "end": f"{DAYS[-1]}|{SYMBOLS[-1]}"}
    launched = server.graphql(
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {"params": {"partitionsByAssets": [{"assetKey": {"path": [a]}, "partitions": {"range": rectangle}}
                                           for a in PER_SYMBOL]}},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    deadline = time.monotonic() + 600
    while True:
        status = server.graphql(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
                 status runs(limit: 100) { runId status } } } }""", {"id": backfill_id})["partitionBackfillOrError"]
        if status["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "CANCELED", "COMPLETED_FAILED"):
            break
        assert time.monotonic() < deadline, f"backfill still {status['status']}"
        time.sleep(3)
    assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), [server.failure(r["runId"]) for r in status["runs"]
                                                                   if r["status"] != "SUCCESS"]
    # Single-run policies: a few range runs, never one run per partition (4 partitions x 8 assets).
    assert 1 <= len(status["runs"]) <= len(SYMBOLS), status["runs"]
    assert all(r["status"] == "SUCCESS" for r in status["runs"])
    for asset in PER_SYMBOL:
        stored = sorted(p.parent.parent.name + "/" + p.parent.name for p in (data_root / asset).rglob("part-0.parquet"))
        assert stored == sorted(f"symbol={s}/date={d}" for s in SYMBOLS for d in DAYS), asset

    # 3. The asset graph, rendered by a real browser (the first-run modal dismissed as a returning user would).
    server.graphql("mutation { setNuxSeen }")
    # The lineage of the last asset, upstream: every layer drawn, grouped (the global view collapses groups).
    url = f"{server.url}/assets/backtest_summary?view=lineage&lineageScope=upstream&lineageDepth=10"
    dom = _browser(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for asset in ("raw_klines", "raw_quotes", "liquidity_daily", "factor_bars", "symbol_universe", "factor_panel",
                  "backtest_daily"):
        assert asset in dom.stdout, f"{asset} is not drawn in the lineage view"
    png = tmp_path / "ui-lineage.png"
    shot = _browser(url, tmp_path, f"--screenshot={png}")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] >= 900 and pixels.std() > 0.05  # a drawn page, not a blank one
    if os.environ.get("FACTOR_UPDATE_UI_SCREENSHOT") == "1":
        shutil.copyfile(png, SCREENSHOT)
