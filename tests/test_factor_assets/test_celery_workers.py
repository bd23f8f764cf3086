"""Celery workers for real: `dagster-celery worker start` processes, Redis, Postgres and one shared data root.

Runs are launched as a user launches them (``dagster asset materialize`` with
``FACTOR_EXECUTOR=celery``); every step runs in a worker process started by
``dagster-celery worker start -A dagster_celery.app -y celery.yaml``. The
faults are real too: a worker killed with SIGKILL mid-step, a broker port
nobody listens on, a Postgres server restarted between two runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import REPO_ROOT, require_service

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SYMBOLS = ("BTCUSDT", "ETHUSDT")
RAW_ASSETS = ("raw_klines", "raw_trades", "raw_book", "raw_funding", "raw_quotes")
PER_SYMBOL_ASSETS = (*RAW_ASSETS, "liquidity_metrics", "liquidity_daily", "factor_bars")
#: The launcher fails a run this many seconds after the worker running a step stops answering.
WORKER_LOST_AFTER_S = 8
PG_ENV = ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB")


def _days(first: str, n: int) -> list[str]:
    import datetime as dt

    start = dt.date.fromisoformat(first)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]


def _range(days: list[str]) -> str:
    return f"{days[0]}|{SYMBOLS[0]}...{days[-1]}|{SYMBOLS[-1]}"


def _partition_files(root: Path, assets, days) -> set[Path]:
    return {root / a / f"symbol={s}" / f"date={d}" / "part-0.parquet" for a in assets for s in SYMBOLS for d in days}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_dbs() -> tuple[int, int]:
    """A broker and a backend database of the local Redis, one pair per pytest-xdist worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw6")
    base = 2 + 2 * (int(worker.removeprefix("gw") or 0) % 7)
    return base, base + 1


@dataclass
class Cluster:
    """Celery workers and the environment they share with the launcher (see the module docstring)."""

    tmp: Path
    root: Path  # the data root every worker sees
    env: dict[str, str]
    broker: str
    backend: str
    config_yaml: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def hostname(self, name: str) -> str:
        return f"{name}@{socket.gethostname()}"

    def start_worker(self, name: str, *celery_args: str, through_project_cli: bool = False) -> None:
        """``dagster-celery worker start`` with the test's YAML, or the same through ``factor-pipeline celery-worker``."""
        if through_project_cli:
            command = [str(BIN / "factor-pipeline"), "celery-worker", "--name", name]
        else:
            command = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                       "-y", str(self.config_yaml), "-n", name]
        log = open(self.tmp / f"{name}.log", "ab")
        self.workers[name] = subprocess.Popen(
            [*command, "--", "--concurrency", "1", *celery_args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own process group
        )

    def worker_log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-4000:]

    def wait_ready(self, names, timeout_s: float = 180) -> None:
        import kombu.pools
        from celery import Celery

        wanted = {self.hostname(n) for n in names}
        deadline = time.monotonic() + timeout_s
        app = Celery(broker=self.broker)
        try:
            while time.monotonic() < deadline:
                answered = {host for reply in app.control.ping(timeout=1.0) for host in reply}
                if wanted <= answered:
                    return
                for name in names:
                    if self.workers[name].poll() is not None:
                        pytest.fail(f"celery worker {name} exited: {self.worker_log(name)}")
        finally:
            # kombu closes every live pool again in each child forked later in this process, and
            # that close blocks on the inherited broker socket: a later test that forks would hang.
            app.close()
            kombu.pools.reset()
        pytest.fail(f"celery workers {sorted(wanted)} did not answer in {timeout_s} s: {self.worker_log(names[0])}")

    def kill(self, name: str) -> None:
        """SIGKILL the worker's whole process group: its machine is gone, nothing gets to clean up."""
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # warm shutdown
        for proc in self.workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.workers.clear()

    def launch(self, assets, partition_range: str, **env: str) -> subprocess.Popen:
        command = [str(BIN / "dagster"), "asset", "materialize", "-m", "factor_assets", "--select", ",".join(assets)]
        command += ["--partition-range" if "..." in partition_range else "--partition", partition_range]
        return subprocess.Popen(
            command, env={**self.env, **env}, cwd=self.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def materialize(self, assets, partition_range: str, **env: str) -> tuple[int, str]:
        proc = self.launch(assets, partition_range, **env)
        output, _ = proc.communicate(timeout=600)
        return proc.returncode, output


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            mp.setenv(name, value)
        yield


def _instance(env: dict[str, str]):
    from dagster import DagsterInstance

    with _env({k: env[k] for k in ("DAGSTER_HOME", *PG_ENV) if k in env}):
        return DagsterInstance.get()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Two workers over Redis and a fresh Postgres database of the local server, with the symbols registered."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    import psycopg2
    import redis

    from factor_assets.celery_executor import worker_config
    from partitions import register_symbols

    tmp = tmp_path_factory.mktemp("celery")
    db_name = f"factor_pipeline_celery_{secrets.token_hex(4)}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db_name}"')
    broker_db, backend_db = _redis_dbs()
    for db in (broker_db, backend_db):
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
    home, root = tmp / "dagster_home", tmp / "shared_data"
    home.mkdir()
    root.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster_home" / "postgres" / "dagster.yaml").read_text())
    broker, backend = f"redis://127.0.0.1:6379/{broker_db}", f"redis://127.0.0.1:6379/{backend_db}"
    env = {k: v for k, v in os.environ.items() if k not in ("FACTOR_STEP_WORKERS", "PYTEST_XDIST_WORKER")}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery runs `celery`
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": db_name,
        "FACTOR_DATA_ROOT": str(root),
        "FACTOR_EXECUTOR": "celery",
        "CELERY_BROKER_URL": broker,
        "CELERY_BACKEND_URL": backend,
        "CELERY_WORKER_LOST_AFTER_S": str(WORKER_LOST_AFTER_S),
        "SIM_TRADES_PER_MINUTE": "2",  # small ticks: the test is about where steps run, not about their size
    })
    config_yaml = tmp / "celery.yaml"
    config_yaml.write_text(yaml.safe_dump(worker_config(broker, backend)))
    with _instance(env) as instance:
        register_symbols(instance, SYMBOLS)
    cluster = Cluster(tmp, root, env, broker, backend, config_yaml)
    try:
        for name in ("fpworker1", "fpworker2"):
            cluster.start_worker(name)
        cluster.wait_ready(["fpworker1", "fpworker2"])
        yield cluster
    finally:
        cluster.stop_all()
        for db in (broker_db, backend_db):
            redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()


def _new_run_id(instance, before: set[str]) -> str:
    runs = [r.run_id for r in instance.get_runs() if r.run_id not in before]
    assert len(runs) == 1, runs
    return runs[0]


def _step_workers(instance, run_id: str) -> dict[str, str]:
    """``{step key: hostname of the Celery worker that ran it}`` from the run's engine events."""
    out = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type_value == "ENGINE_EVENT":
            worker = (event.engine_event_data.metadata or {}).get("Celery worker")
            if worker is not None:
                out[event.step_key] = worker.value
    return out


def _messages(instance, run_id: str, containing: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if containing in (e.user_message or "")]


#: The days both executors materialize in the byte-for-byte comparisons.
COMPARED_DAYS = _days("2024-01-02", 3)


@dataclass(frozen=True)
class Baseline:
    root: Path
    run_id: str


@pytest.fixture(scope="module")
def multiprocess_baseline(cluster) -> Baseline:
    """The per-symbol layers over COMPARED_DAYS through the default executor, into a data root of their own."""
    root = cluster.tmp / "multiprocess_data"
    root.mkdir()
    with _instance(cluster.env) as instance:
        before = {r.run_id for r in instance.get_runs()}
        code, output = cluster.materialize(
            PER_SYMBOL_ASSETS, _range(COMPARED_DAYS), FACTOR_EXECUTOR="multiprocess", FACTOR_DATA_ROOT=str(root),
            FACTOR_STEP_WORKERS="2",
        )
        assert code == 0, output
        run_id = _new_run_id(instance, before)
        assert _step_workers(instance, run_id) == {}  # no Celery worker involved
        assert any("in 2 chunk(s) on 2 worker(s)" in m for m in _messages(instance, run_id, "chunk(s)"))  # a pool
    return Baseline(root, run_id)


def _differing(root: Path, baseline: Path, files: set[Path]) -> list[str]:
    return [str(p) for p in sorted(files) if (root / p).read_bytes() != (baseline / p).read_bytes()]


@pytest.mark.services
def test_celery_workers_store_byte_identical_partitions_to_the_multiprocess_executor(cluster, multiprocess_baseline):
    with _instance(cluster.env) as instance:
        before = {r.run_id for r in instance.get_runs()}
        code, output = cluster.materialize(PER_SYMBOL_ASSETS, _range(COMPARED_DAYS))
        assert code == 0, output
        run_id = _new_run_id(instance, before)
        # Every step ran in one of the two workers, none in the launcher.
        ran_on = _step_workers(instance, run_id)
        assert {"raw_market_data", "factor_bars"} <= set(ran_on), ran_on
        assert set(ran_on.values()) <= {cluster.hostname("fpworker1"), cluster.hostname("fpworker2")}, ran_on
        # Inside a (daemonic) Celery pool process the chunks of a step run inline, one after another.
        assert any("in 2 chunk(s) on 1 worker(s)" in m for m in _messages(instance, run_id, "chunk(s)"))

    files = _partition_files(Path(), PER_SYMBOL_ASSETS, COMPARED_DAYS)
    assert {p.relative_to(cluster.root) for p in cluster.root.rglob("part-0.parquet")} == files
    assert {p.relative_to(multiprocess_baseline.root) for p in multiprocess_baseline.root.rglob("part-0.parquet")} == files
    assert _differing(cluster.root, multiprocess_baseline.root, files) == []


@contextmanager
def _private_postgres() -> Iterator[tuple[str, str, int]]:
    """A Postgres server of this machine's installation, of our own: restarting it disturbs nobody else's tests."""
    if shutil.which("pg_createcluster") is None or not Path("/etc/postgresql").is_dir():
        message = "pg_createcluster (postgresql-common) is not installed"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and REQUIRE_SERVICES=1")
        pytest.skip(message)
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    name, port = f"fp_restart_{secrets.token_hex(3)}", _free_port()
    subprocess.run(["pg_createcluster", version, name, "-p", str(port), "--", "--auth-local=trust", "--auth-host=trust"],
                   check=True, capture_output=True)
    try:
        _pg_ctl(version, name, "start", port)
        yield version, name, port
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)


def _pg_ctl(version: str, name: str, action: str, port: int) -> None:
    import psycopg2

    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.services
def test_the_next_run_succeeds_after_the_postgres_server_restarts_between_two_runs(cluster):
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    from partitions import register_symbols

    with _private_postgres() as (version, name, port):
        home = cluster.tmp / "restart_home"
        home.mkdir()
        storage = {"postgres": {"postgres_db": {
            "username": "postgres", "password": "unused-with-trust-auth", "hostname": "127.0.0.1",
            "db_name": "postgres", "port": port, "scheme": "postgresql+psycopg2"}}}
        (home / "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}, "storage": storage}))
        with DagsterInstance.from_config(str(home)) as instance:
            register_symbols(instance, SYMBOLS)
        first, second = _days("2024-01-20", 2)

        code, output = cluster.materialize(["raw_klines"], _range([first]), DAGSTER_HOME=str(home))
        assert code == 0, output
        _pg_ctl(version, name, "restart", port)  # the workers keep running, unaware
        code, output = cluster.materialize(["raw_klines"], _range([second]), DAGSTER_HOME=str(home))
        assert code == 0, output

        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs()
            assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS, DagsterRunStatus.SUCCESS]
            assert instance.get_materialized_partitions(AssetKey("raw_klines")) == {
                f"{d}|{s}" for d in (first, second) for s in SYMBOLS
            }
            assert all(_step_workers(instance, r.run_id) for r in runs)  # both ran on the workers


@pytest.mark.services
def test_a_worker_killed_mid_step_fails_the_run_naming_it_and_stores_none_of_its_partitions(cluster):
    from dagster import AssetKey, DagsterRunStatus

    days = _days("2024-02-01", 6)  # one chunk of 6 days per symbol: the step stages files for several seconds
    expected = _partition_files(cluster.root, RAW_ASSETS, days)
    with _instance(cluster.env) as instance:
        before = {r.run_id for r in instance.get_runs()}
        run = cluster.launch(RAW_ASSETS, _range(days))
        try:
            deadline = time.monotonic() + 180
            while not any(cluster.root.glob("raw_*/symbol=*/date=2024-02-*/.part-0.parquet.*.tmp")):
                assert run.poll() is None and time.monotonic() < deadline, "the step never started staging files"
                time.sleep(0.1)
            run_id = _new_run_id(instance, before)
            holder = _step_workers(instance, run_id)["raw_market_data"]
            cluster.kill(holder.split("@")[0])
            output, _ = run.communicate(timeout=WORKER_LOST_AFTER_S + 120)
        finally:
            if run.poll() is None:
                run.kill()

        assert run.returncode != 0
        assert f"step raw_market_data: Celery worker {holder}, which was running it" in output, output[-3000:]
        assert f"has not answered for it for {WORKER_LOST_AFTER_S} s (CELERY_WORKER_LOST_AFTER_S)" in output
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        assert not any(p.exists() for p in expected)  # staged, never published
        keys = {f"{d}|{s}" for d in days for s in SYMBOLS}
        for asset in RAW_ASSETS:
            assert not instance.get_materialized_partitions(AssetKey(asset)) & keys, asset

        # The surviving worker runs the same range again; the dead worker's temporary files are cleared.
        code, output = cluster.materialize(RAW_ASSETS, _range(days))
        assert code == 0, output
        assert all(p.exists() for p in expected)
        assert all(pq.read_metadata(p).num_rows == 1440 for p in expected if p.parts[-4] == "raw_klines")
        assert not list(cluster.root.glob("raw_*/symbol=*/date=2024-02-*/.*.tmp"))
        for asset in RAW_ASSETS:
            assert instance.get_materialized_partitions(AssetKey(asset)) >= keys, asset


@pytest.mark.services
def test_a_threads_pool_worker_runs_a_steps_chunks_on_every_core_and_stores_the_same_bytes(cluster, multiprocess_baseline):
    """The other way to run workers (docs/operations.md): one step at a time, its chunks on a process pool.

    This worker is started the way the docs say, ``factor-pipeline celery-worker``, which writes its YAML
    from the CELERY_* settings."""
    cluster.stop_all()  # last test of the module: the prefork workers are done
    root = cluster.tmp / "threads_worker_data"  # the worker and its launcher get a data root of their own
    root.mkdir()
    cluster.env["FACTOR_DATA_ROOT"] = str(root)
    cluster.start_worker("fpthreads", "--pool", "threads", through_project_cli=True)
    cluster.wait_ready(["fpthreads"])
    with _instance(cluster.env) as instance:
        before = {r.run_id for r in instance.get_runs()}
        code, output = cluster.materialize(RAW_ASSETS, _range(COMPARED_DAYS))
        assert code == 0, output
        run_id = _new_run_id(instance, before)
        assert _step_workers(instance, run_id) == {"raw_market_data": cluster.hostname("fpthreads")}
        assert any("in 2 chunk(s) on 2 worker(s)" in m for m in _messages(instance, run_id, "chunk(s)"))
    files = _partition_files(Path(), RAW_ASSETS, COMPARED_DAYS)
    assert {p.relative_to(root) for p in root.rglob("part-0.parquet")} == files
    assert _differing(root, multiprocess_baseline.root, files) == []


def test_an_unreachable_broker_fails_the_run_naming_its_url_without_its_password(dagster_home, data_root, tmp_path):
    from dagster import DagsterInstance

    from partitions import register_symbols

    with DagsterInstance.get() as instance:
        register_symbols(instance, ["BTCUSDT"])
    port = _free_port()  # nobody listens there
    env = {**os.environ, "FACTOR_EXECUTOR": "celery", "CELERY_BROKER_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
           "CELERY_BACKEND_URL": f"redis://127.0.0.1:{port}/1"}
    result = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "factor_assets", "--select", "raw_klines",
         "--partition", "2024-01-02|BTCUSDT"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"Celery broker redis://:**@127.0.0.1:{port}/0 (CELERY_BROKER_URL) is unreachable" in output, output[-3000:]
    assert "No step of this run was submitted" in output
    assert "hunter2" not in output
    for stored in dagster_home.rglob("*"):  # run storage, event log, run config: the password is nowhere
        if stored.is_file():
            assert b"hunter2" not in stored.read_bytes(), stored
    assert not list(data_root.rglob("*.parquet"))
