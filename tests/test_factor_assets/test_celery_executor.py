"""The Celery executor's own logic, without a broker: selection, the broker check, the worker-loss watch, the worker command.

The real workers, Redis and Postgres are exercised in ``test_celery_workers.py``.
"""

from __future__ import annotations

import socket

import pytest
import yaml
from billiard.exceptions import WorkerLostError
from dagster_celery.cli import get_validated_config

from factor_assets import cli
from factor_assets.celery_executor import (
    CeleryBrokerUnreachable,
    CeleryWorkerLost,
    WorkerWatch,
    check_broker,
    worker_config,
)
from factor_assets.definitions import EXECUTOR, executor_for
from factor_core import settings


class FakeResult:
    """What the watch uses of a celery AsyncResult."""

    def __init__(self, task_id: str, state: str = "PENDING", info=None, outcome=None):
        self.id, self.state, self.info, self.outcome = task_id, state, info, outcome
        self.finished = False
        self.revoked = 0

    def ready(self) -> bool:
        return self.finished

    def get(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def revoke(self) -> None:
        self.revoked += 1


class FakeControl:
    """Workers answering ``inspect().query_task``: ``replies`` maps a live worker to the task ids it holds."""

    def __init__(self):
        self.replies: dict[str, set[str]] = {}
        self.broadcasts = 0

    def inspect(self, timeout: float):
        return self

    def query_task(self, *task_ids: str):
        self.broadcasts += 1
        return {worker: {t: ["active", {}] for t in held if t in task_ids} for worker, held in self.replies.items()}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watched():
    """A watch over one submitted step (``raw_market_data``), its fake result, workers and clock."""
    control, clock = FakeControl(), Clock()
    watch = WorkerWatch(control, lost_after_s=30, probe_every_s=5, clock=clock)
    result = FakeResult("task-1")
    handle = watch.watch("raw_market_data", result)
    return watch, handle, result, control, clock


def advance(clock: Clock, handle, to: float) -> bool:
    """Poll ``handle.ready()`` every second up to time ``to``, as dagster-celery's loop does; the last answer."""
    ready = False
    while clock.now < to:
        clock.now += 1
        ready = handle.ready()
    return ready


def test_factor_executor_selects_the_executor_and_rejects_unknown_names(monkeypatch):
    assert executor_for("multiprocess") is EXECUTOR
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://broker.internal:6379/0")
    celery = executor_for("celery")
    assert celery.name == "celery"
    assert celery.executor_creation_fn is not None
    with pytest.raises(ValueError, match=r"FACTOR_EXECUTOR='kubernetes': expected multiprocess, celery or k8s"):
        executor_for("kubernetes")


def test_factor_executor_k8s_selects_dagsters_kubernetes_job_executor():
    from dagster_k8s import k8s_job_executor

    assert executor_for("k8s") is k8s_job_executor


def test_a_set_broker_url_reaches_dagster_as_an_env_reference_so_its_password_stays_out(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://:hunter2@broker.internal:6379/0")
    monkeypatch.delenv("CELERY_BACKEND_URL", raising=False)
    assert settings.config_source("CELERY_BROKER_URL") == {"env": "CELERY_BROKER_URL"}
    assert settings.config_source("CELERY_BACKEND_URL") == "redis://127.0.0.1:6379/1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_broker_fails_naming_its_url_and_setting_with_the_password_masked():
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    port = _closed_port()
    broker = f"redis://:hunter2@127.0.0.1:{port}/0"
    app = make_app(CeleryExecutor.for_cli(broker=broker, backend=f"redis://127.0.0.1:{port}/1").app_args())
    with pytest.raises(CeleryBrokerUnreachable) as raised:
        check_broker(app, broker, f"redis://127.0.0.1:{port}/1")
    message = str(raised.value)
    assert f"Celery broker redis://:**@127.0.0.1:{port}/0 (CELERY_BROKER_URL) is unreachable" in message
    assert "No step of this run was submitted" in message
    assert "hunter2" not in message


def test_an_unreachable_result_backend_is_named_as_such():
    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def ensure_connection(self, **kwargs):
            return self

    class Backend:
        def get_state(self, task_id):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6380. Connection refused.")

    class App:
        backend = Backend()

        def connection_for_write(self):
            return Connection()

    with pytest.raises(CeleryBrokerUnreachable, match=r"result backend redis://127\.0\.0\.1:6380/1 \(CELERY_BACKEND_URL\)"):
        check_broker(App(), "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6380/1")


def test_a_step_whose_worker_stops_answering_fails_naming_worker_step_and_setting(watched):
    watch, handle, result, control, clock = watched
    control.replies = {"w1@host": {"task-1"}, "w2@host": set()}
    assert advance(clock, handle, 10) is False
    control.replies = {"w2@host": set()}  # w1 is gone
    assert advance(clock, handle, 35) is False  # silent since ~11 s: not yet 30 s
    assert advance(clock, handle, 50) is True
    with pytest.raises(CeleryWorkerLost) as raised:
        handle.get()
    message = str(raised.value)
    assert "step raw_market_data: Celery worker w1@host" in message
    assert "has not answered for it for 30 s (CELERY_WORKER_LOST_AFTER_S)" in message
    assert "re-run the same selection and range" in message
    assert result.revoked == 1


def test_a_step_still_waiting_in_the_queue_is_never_declared_lost(watched):
    watch, handle, result, control, clock = watched
    control.replies = {"w1@host": set()}  # busy elsewhere: nobody holds the task yet
    assert advance(clock, handle, 1000) is False
    result.finished, result.outcome = True, ["events"]
    assert handle.ready() is True and handle.get() == ["events"]


def test_a_worker_that_answers_again_within_the_limit_keeps_its_step(watched):
    watch, handle, result, control, clock = watched
    control.replies = {"w1@host": {"task-1"}}
    advance(clock, handle, 6)
    control.replies = {}
    assert advance(clock, handle, 30) is False  # silent ~24 s
    control.replies = {"w1@host": {"task-1"}}
    assert advance(clock, handle, 40) is False
    control.replies = {}
    assert advance(clock, handle, 65) is False  # the silence counts again from ~41 s
    assert advance(clock, handle, 80) is True


def test_the_started_state_names_the_holder_even_if_it_dies_before_the_first_answer(watched):
    watch, handle, result, control, clock = watched
    result.state, result.info = "STARTED", {"hostname": "w9@host", "pid": 4242}
    control.replies = {"w1@host": set()}
    assert advance(clock, handle, 40) is True
    with pytest.raises(CeleryWorkerLost, match="Celery worker w9@host"):
        handle.get()


def test_a_worker_restarted_under_the_same_name_without_the_task_loses_it(watched):
    watch, handle, result, control, clock = watched
    control.replies = {"w1@host": {"task-1"}}
    advance(clock, handle, 6)
    control.replies = {"w1@host": set()}  # answers, but the task died with the previous process
    assert advance(clock, handle, 45) is True


def test_a_finished_step_is_never_declared_lost(watched):
    watch, handle, result, control, clock = watched
    control.replies = {"w1@host": {"task-1"}}
    advance(clock, handle, 6)
    control.replies = {}
    result.finished, result.outcome = True, ["events"]
    assert advance(clock, handle, 100) is True
    assert handle.get() == ["events"]


def test_probes_are_one_broadcast_per_period_for_all_pending_steps():
    control, clock = FakeControl(), Clock()
    watch = WorkerWatch(control, lost_after_s=30, probe_every_s=5, clock=clock)
    handles = [watch.watch(f"step_{i}", FakeResult(f"task-{i}")) for i in range(4)]
    for _ in range(20):  # 20 s of one-second ticks, every step polled each tick
        clock.now += 1
        for handle in handles:
            handle.ready()
    assert control.broadcasts == 4


def test_a_killed_worker_process_is_reported_naming_the_step():
    control, clock = FakeControl(), Clock()
    watch = WorkerWatch(control, clock=clock)
    result = FakeResult("task-7", outcome=WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0."))
    result.finished = True
    handle = watch.watch("factor_bars", result)
    with pytest.raises(CeleryWorkerLost) as raised:
        handle.get()
    assert "step factor_bars: the process of Celery worker (unknown) running it died" in str(raised.value)
    assert "signal 9 (SIGKILL)" in str(raised.value)


def test_a_step_error_raised_by_the_task_passes_through_unchanged():
    watch = WorkerWatch(FakeControl(), clock=Clock())
    result = FakeResult("task-8", outcome=ValueError("boom"))
    result.finished = True
    with pytest.raises(ValueError, match="boom"):
        watch.watch("factor_bars", result).get()


def test_the_worker_yaml_is_accepted_by_dagster_celery_and_resolves_the_launchers_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://:hunter2@10.0.0.5:6379/3")
    config = worker_config(settings.config_source("CELERY_BROKER_URL"), settings.config_source("CELERY_BACKEND_URL"))
    path = tmp_path / "celery.yaml"
    path.write_text(yaml.safe_dump(config))
    assert "hunter2" not in path.read_text()  # the file names the variable, not its value
    validated = get_validated_config(str(path))
    assert validated["broker"] == "redis://:hunter2@10.0.0.5:6379/3"
    assert validated["backend"] == "redis://127.0.0.1:6379/1"
    assert validated["config_source"]["task_track_started"] is True


def test_the_celery_worker_command_starts_dagster_celery_with_that_yaml(monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("CELERY_BACKEND_URL", "redis://10.0.0.5:6379/4")
    seen = {}

    def fake_call(command, env):
        seen["command"], seen["env"] = command, env
        seen["yaml"] = yaml.safe_load(open(command[command.index("-y") + 1]).read())
        return 0

    monkeypatch.setattr(cli.subprocess, "call", fake_call)
    assert cli.main(["celery-worker", "--name", "w1", "--concurrency", "1", "--", "--without-gossip"]) == 0
    command = seen["command"]
    assert command[1:5] == ["worker", "start", "-A", "dagster_celery.app"]
    assert command[command.index("-n") + 1] == "w1"
    assert command[command.index("--"):] == ["--", "--concurrency", "1", "--without-gossip"]
    assert seen["yaml"]["execution"]["config"]["broker"] == "redis://127.0.0.1:6379/0"
    assert seen["yaml"]["execution"]["config"]["backend"] == {"env": "CELERY_BACKEND_URL"}
    assert seen["env"]["PATH"].split(":")[0] == command[0].rsplit("/", 1)[0]  # `celery` found beside dagster-celery
