"""A real dagster-daemon keeps the pipeline fresh: new raw partitions reach every layer on disk, and only those."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus

from tests.test_factor_assets.cli_runner import BIN, REPO, assert_ok, run_cli

pytestmark = pytest.mark.slow

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAYS = ["2024-01-01", "2024-01-02"]
DOWNSTREAM_PER_SYMBOL = ["liquidity_metrics", "liquidity_daily", "factor_bars"]
RAW = "raw_klines,raw_trades,raw_book,raw_funding,raw_quotes"
IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _stored(root: Path, asset: str) -> set[str]:
    out = set()
    for path in root.glob(f"{asset}/**/part-0.parquet"):
        parts = dict(p.split("=", 1) for p in path.relative_to(root / asset).parts[:-1])
        out.add("|".join(parts[k] for k in sorted(parts)))
    return out


def _wait(predicate, timeout_s: float, what: str, daemon: subprocess.Popen):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        assert daemon.poll() is None, f"dagster-daemon exited:\n{_log_tail(daemon)}"
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; the daemon's log ends:\n{_log_tail(daemon)}")


def _log_tail(daemon: subprocess.Popen) -> str:
    return Path(daemon.log_path).read_text(errors="replace")[-4000:]


@pytest.fixture
def env(dagster_home, data_root):
    return {"DAGSTER_HOME": str(dagster_home), "FACTOR_DATA_ROOT": str(data_root), "SIM_TRADES_PER_MINUTE": "2",
            "AUTOMATION_INTERVAL_S": "5", "DEMO_SYMBOLS": ",".join(SYMBOLS)}


@pytest.fixture
def daemon(env, tmp_path):
    # A file, not a pipe: the runs the daemon launches inherit its output, and a pipe nobody reads
    # fills up and blocks the first run step that logs past 64 KB.
    log_path = tmp_path / "dagster-daemon.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO,
                                   env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    process.log_path = log_path
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _sensor_ticks(home: Path, name: str) -> int:
    with DagsterInstance.from_config(str(home)) as instance:
        states = [s for s in instance.all_instigator_state() if s.name == name]
        return sum(len(instance.get_ticks(s.instigator_origin_id, s.selector_id, limit=5)) for s in states)


def test_a_running_daemon_carries_new_raw_partitions_through_every_layer_and_nothing_else(env, daemon, dagster_home, data_root):
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", *SYMBOLS], env=env))
    # The first evaluation of an automation sensor requests nothing, by design: let it happen first.
    _wait(lambda: _sensor_ticks(dagster_home, "keep_fresh_sensor") >= 1, 240, "the first automation tick", daemon)

    assert_ok(run_cli(["dagster", "asset", "materialize", "-m", "factor_assets", "--select", RAW,
                       "--partition-range", f"{DAYS[0]}|{SYMBOLS[0]}...{DAYS[-1]}|{SYMBOLS[-1]}"], env=env))
    expected = {f"{d}|{s}" for d in DAYS for s in SYMBOLS}

    def done() -> bool:
        return (all(_stored(data_root, a) == expected for a in DOWNSTREAM_PER_SYMBOL)
                and _stored(data_root, "factor_panel") == set(DAYS) and _stored(data_root, "backtest_daily") == set(DAYS)
                and (data_root / "warehouse.duckdb").exists())

    _wait(done, 600, "automation to materialize every layer", daemon)
    # The unpartitioned layers (summary, reports) follow on later ticks: wait until the daemon has nothing
    # in flight for a few automation intervals.
    quiet_since = [time.monotonic()]

    def idle() -> bool:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            busy = instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS)) or [
                b for b in instance.get_backfills() if b.status == BulkActionStatus.REQUESTED]
        if busy:
            quiet_since[0] = time.monotonic()
        return time.monotonic() - quiet_since[0] > 20

    _wait(idle, 600, "the daemon to finish every run it launched", daemon)
    # Exactly the partitions the raw data covers (files on disk, not just events), all readable.
    for asset in DOWNSTREAM_PER_SYMBOL:
        assert _stored(data_root, asset) == expected, asset
        for path in (data_root / asset).rglob("part-0.parquet"):
            assert pq.read_table(path).num_rows > 0
    assert not list(data_root.rglob("*.tmp"))  # nothing half-written
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_materialized_partitions(AssetKey("factor_bars")) == expected
        automation_runs = [r for r in instance.get_runs() if r.tags.get("dagster/from_automation_condition") == "true"
                           or "dagster/backfill" in r.tags]
        # One tick's requests go out as one backfill honouring the single-run policy: a run carries every
        # symbol of the days it covers, never one partition each. (How many runs depends on how ticks fall
        # between arrivals: a day's panel is rebuilt when the next day's closes arrive.)
        assert automation_runs
        for run in automation_runs:
            if AssetKey("factor_bars") not in (run.asset_selection or set()):
                continue
            stored_by_run = {e.dagster_event.partition for e in instance.all_logs(
                run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
                if e.dagster_event.asset_key == AssetKey("factor_bars")}
            days = {key.split("|")[0] for key in stored_by_run}
            assert stored_by_run == {f"{d}|{s}" for d in days for s in SYMBOLS}, (run.run_id, stored_by_run)
        assert len(automation_runs) < 2 * len(expected) + 2 * len(DAYS), [r.asset_selection for r in automation_runs]
        assert all(r.is_success for r in instance.get_runs()), [(r.run_id, r.status) for r in instance.get_runs()]


def _digests(root: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("part-0.parquet"))}


def test_a_run_killed_mid_step_leaves_stored_partitions_intact_and_a_rerun_completes(env, dagster_home, data_root, tmp_path):
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", *SYMBOLS], env=env))
    first = ["dagster", "asset", "materialize", "-m", "factor_assets", "--select", RAW]
    assert_ok(run_cli([*first, "--partition-range", f"2024-01-01|{SYMBOLS[0]}...2024-01-03|{SYMBOLS[-1]}"], env=env))
    before = _digests(data_root)
    wider = [*first, "--partition-range", f"2024-01-01|{SYMBOLS[0]}...2024-01-12|{SYMBOLS[-1]}"]
    process = subprocess.Popen([str(BIN / wider[0]), *wider[1:]], cwd=REPO, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(data_root.rglob(".*.tmp")):  # the step is staging files: kill the whole run now
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)

    assert _digests(data_root) == before  # nothing published, nothing half-written: the old files intact
    assert_ok(run_cli(wider, env=env))  # the re-run completes (and sweeps the dead writers' temp files)
    assert not list(data_root.rglob(".*.tmp"))
    clean = tmp_path / "clean"
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", *SYMBOLS], env={**env, "FACTOR_DATA_ROOT": str(clean),
                                                                          "DAGSTER_HOME": str(dagster_home)}))
    assert_ok(run_cli(wider, env={**env, "FACTOR_DATA_ROOT": str(clean)}))
    assert _digests(data_root) == _digests(clean)  # the same bytes as a run that was never interrupted
