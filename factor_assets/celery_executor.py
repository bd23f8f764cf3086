"""Steps on Celery workers beyond one machine (``FACTOR_EXECUTOR=celery``): dagster-celery, with two faults made clear.

dagster-celery's executor sends each step of a run to the broker as a Celery
task; a worker on any machine runs the step in its own process against the
same Dagster instance (Postgres) and the same data root, and returns the
step's events. This module keeps that executor and its worker program
(``dagster-celery worker start -A dagster_celery.app``) as they are and adds:

* **Broker unreachable**: the stock executor fails on its first submission with
  kombu's ``Error 111 connecting to 127.0.0.1:6379`` and no word of which
  setting is wrong. Here the run fails before any step is submitted, naming the
  broker (or result backend) URL, password masked, and the setting to fix.
* **A worker lost mid-step**: Celery acknowledges a task as it starts (its
  default early ack), so when a worker's machine dies no result ever arrives and
  the stock loop waits forever. Here the launcher asks the workers which of them
  holds each pending step (Celery's own control API: one ``query_task``
  broadcast per probe for all pending steps, plus the STARTED state the workers
  record); a holder that stops answering, or answers without the task, for
  ``worker_lost_after_s`` fails the run with an error naming the worker and the
  step. When only the process running the step dies (the OOM killer), Celery
  reports ``WorkerLostError``; it is reworded the same way.

A lost step is not retried inside the run: the step may have published some of
its partitions before dying (each one whole: see ``factor_core.atomic_files``),
and late acknowledgement, which would make the broker redeliver it, redelivers a
task of a dead worker only after the broker's visibility timeout (an hour on
Redis), possibly into a run that has long failed. The error says what to re-run;
re-running a range is idempotent.

Workers must run the same code with the same environment as the launcher
(``FACTOR_DATA_ROOT`` on storage every node sees, ``DAGSTER_HOME`` pointing at
the Postgres instance, the market-data settings): a step reads its resources'
configuration where it runs. ``worker_config`` is the YAML a worker is started
with, derived from the same settings as the launcher's executor.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import DuplicateTaskNameWarning
from dagster import Executor, Field, executor, multiple_process_executor_requirements
from dagster._core.execution.retries import RetryMode
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task
from dagster_celery.make_app import make_app
from kombu.utils.url import maybe_sanitize_url

#: Seconds a worker may stay silent about a step it holds before the run fails (CELERY_WORKER_LOST_AFTER_S).
DEFAULT_WORKER_LOST_AFTER_S = 60.0
#: Longest wait for the workers' answers to one probe (a broadcast waits this long for every answer).
INSPECT_TIMEOUT_S = 1.0
#: Celery settings every worker of this pipeline runs with (passed through the worker YAML).
WORKER_CELERY_SETTINGS = {
    # The worker records STARTED with its hostname as the step starts: the launcher knows at once who holds
    # a step, even if that worker dies before the first probe.
    "task_track_started": True,
    # Celery 5 warns at every start without it; retrying the broker connection at start-up is what we want.
    "broker_connection_retry_on_startup": True,
}


class CeleryBrokerUnreachable(RuntimeError):
    """The broker or result backend of the Celery executor did not answer; no step was submitted."""


class CeleryWorkerLost(RuntimeError):
    """The Celery worker running a step died or stopped answering; the run fails naming it."""


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``**`` (safe for logs and error messages)."""
    return maybe_sanitize_url(url)


def check_broker(app: Any, broker_url: str, backend_url: str) -> None:
    """Raise :class:`CeleryBrokerUnreachable` naming the URL and its setting unless broker and backend answer."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2)
    except Exception as exc:
        raise CeleryBrokerUnreachable(
            f"Celery broker {masked_url(broker_url)} (CELERY_BROKER_URL) is unreachable: {exc}. "
            "Start the broker, or set CELERY_BROKER_URL to the broker your Celery workers use "
            "(their YAML is written from the same setting). No step of this run was submitted."
        ) from exc
    try:
        app.backend.get_state("factor-pipeline-backend-check")  # any read: it needs the backend to answer
    except Exception as exc:
        raise CeleryBrokerUnreachable(
            f"Celery result backend {masked_url(backend_url)} (CELERY_BACKEND_URL) is unreachable: {exc}. "
            "Start it, or set CELERY_BACKEND_URL to the backend your Celery workers use. "
            "No step of this run was submitted."
        ) from exc


@dataclass
class _Pending:
    step_key: str
    result: Any  # celery.result.AsyncResult
    holder: str | None = None  # the worker's hostname, once known
    silent_since: float | None = None
    lost: bool = False


@dataclass
class WorkerWatch:
    """Tells, for every pending step of a run, whether the worker holding it is gone (see the module docstring).

    ``probe`` is throttled to one round every ``probe_every_s``: the states the
    workers recorded (STARTED names the worker), then one ``query_task``
    broadcast for every pending step. A step still queued (no holder yet) is
    never lost: it waits for a worker, as with the stock executor.
    """

    control: Any  # celery.app.control.Control
    lost_after_s: float = DEFAULT_WORKER_LOST_AFTER_S
    probe_every_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _last_probe: float | None = None

    def __post_init__(self) -> None:
        if self.probe_every_s is None:
            self.probe_every_s = max(1.0, min(10.0, self.lost_after_s / 3))

    def watch(self, step_key: str, result: Any) -> WatchedResult:
        self._pending[result.id] = _Pending(step_key, result)
        return WatchedResult(self, result.id)

    def pending(self, task_id: str) -> _Pending:
        return self._pending[task_id]

    def done(self, task_id: str) -> None:
        self._pending.pop(task_id, None)

    def probe(self) -> None:
        now = self.clock()
        if self._last_probe is not None and now - self._last_probe < self.probe_every_s:
            return
        self._last_probe = now
        waiting = {task_id: p for task_id, p in self._pending.items() if not p.lost}
        if not waiting:
            return
        for pending in waiting.values():
            if pending.holder is None and pending.result.state == "STARTED":
                info = pending.result.info
                pending.holder = info.get("hostname") if isinstance(info, dict) else None
        replies = self.control.inspect(timeout=INSPECT_TIMEOUT_S).query_task(*waiting) or {}
        held = {}
        for worker, tasks in replies.items():
            for task_id in tasks or {}:
                held[task_id] = worker
        for task_id, pending in waiting.items():
            if task_id in held:
                pending.holder, pending.silent_since = held[task_id], None
                continue
            if pending.holder is None or pending.result.ready():
                continue  # still queued, or finished since the last look
            # The holder did not answer, or answered without the task (restarted): silent.
            if pending.silent_since is None:
                pending.silent_since = now
            if now - pending.silent_since >= self.lost_after_s:
                pending.lost = True


@dataclass
class WatchedResult:
    """A step's Celery result as dagster-celery's loop uses it (``ready``, ``get``, ``revoke``), with the watch."""

    watch: WorkerWatch
    task_id: str

    def ready(self) -> bool:
        pending = self.watch.pending(self.task_id)
        if pending.lost or pending.result.ready():
            return True
        self.watch.probe()
        return pending.lost

    def get(self) -> Any:
        pending = self.watch.pending(self.task_id)
        self.watch.done(self.task_id)
        advice = (
            "Partitions the step had not published keep their previous version (each stored partition is "
            "whole); re-run the same selection and range to rebuild them."
        )
        if pending.lost:
            pending.result.revoke()  # should the task ever be redelivered, no worker runs it for this failed run
            raise CeleryWorkerLost(
                f"step {pending.step_key}: Celery worker {pending.holder}, which was running it (task "
                f"{self.task_id}), has not answered for it for {self.watch.lost_after_s:g} s "
                f"(CELERY_WORKER_LOST_AFTER_S): the worker or its machine stopped mid-step. {advice}"
            )
        try:
            return pending.result.get()
        except Exception as exc:
            if type(exc).__name__ != "WorkerLostError":
                raise
            raise CeleryWorkerLost(
                f"step {pending.step_key}: the process of Celery worker {pending.holder or '(unknown)'} running it "
                f"died ({exc}); the machine's OOM killer or a signal stopped it (task {self.task_id}). {advice}"
            ) from exc

    def revoke(self) -> None:
        self.watch.pending(self.task_id).result.revoke()


class WatchedCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor with the broker check and the worker watch of the module docstring."""

    def __init__(self, retries: RetryMode, worker_lost_after_s: float, **celery_args: Any):
        super().__init__(retries=retries, **celery_args)
        self.worker_lost_after_s = worker_lost_after_s

    def execute(self, plan_context, execution_plan):
        app = make_app(self.app_args())
        check_broker(app, self.broker, self.backend)
        watch = WorkerWatch(app.control, lost_after_s=self.worker_lost_after_s)

        def submit(app, plan_context, step, queue, priority, known_state):
            with warnings.catch_warnings():
                # dagster-celery re-declares its one task for every step it submits; Celery warns each time.
                warnings.simplefilter("ignore", DuplicateTaskNameWarning)
                result = _submit_task(app, plan_context, step, queue, priority, known_state)
            return watch.watch(step.key, result)

        yield from core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)


@executor(
    name="celery",
    config_schema={
        **CELERY_CONFIG,
        "worker_lost_after_s": Field(
            float,
            default_value=DEFAULT_WORKER_LOST_AFTER_S,
            description="Seconds the worker holding a step may stay silent about it before the run fails.",
        ),
    },
    requirements=multiple_process_executor_requirements(),
)
def watched_celery_executor(init_context) -> Executor:
    config = init_context.executor_config
    return WatchedCeleryExecutor(
        retries=RetryMode.from_config(config["retries"]),
        worker_lost_after_s=config["worker_lost_after_s"],
        broker=config.get("broker"),
        backend=config.get("backend"),
        include=config.get("include"),
        config_source=config.get("config_source"),
    )


def celery_executor(broker: str | dict, backend: str | dict, worker_lost_after_s: float):
    """The executor of ``FACTOR_EXECUTOR=celery``.

    ``broker`` / ``backend`` are a URL or ``{"env": NAME}`` (Dagster reads the
    variable when the run starts, so a password in it never enters definitions).
    """
    return watched_celery_executor.configured(
        {
            "broker": broker,
            "backend": backend,
            "config_source": dict(WORKER_CELERY_SETTINGS),
            "worker_lost_after_s": worker_lost_after_s,
        },
        name="celery",
    )


def worker_config(broker: str | dict, backend: str | dict) -> dict:
    """The YAML document (``-y``) of ``dagster-celery worker start``: the launcher's broker, backend and settings."""
    return {"execution": {"config": {"broker": broker, "backend": backend, "config_source": dict(WORKER_CELERY_SETTINGS)}}}
