"""A step's range, worked in chunks on every core, published all or nothing.

A range run (hundreds of (day, symbol) partitions in one step) is cut into
tasks: a few partitions each, or one symbol's run of consecutive days where a
look-back makes neighbouring days share their inputs. Each task reads its own
inputs, calls the pure computation and *stages* its output files (written and
fsynced under temporary names); it hands back only small per-partition
metadata. So a step's memory is bounded by one task per worker, not by the
range.

Tasks run in a pool of worker processes (``workers``, default one per core),
or inline when there is a single task, a single worker, or the step itself
runs in a daemonic process (a Celery worker, which may not have children).
Workers are forked from the step process, which has already imported the
pipeline: a pool starts in ~40 ms where a fork server importing it again
takes ~2 s per step. Forking is safe here: the step's only other threads are
Dagster's event-queue feeder and termination handler, which a worker never
touches, and the libraries used in workers (logging, pyarrow, numpy) reset
their locks after a fork.

If any task fails, the tasks still queued are cancelled, every file staged by
any task is discarded, and :class:`ChunkFailure` names the partitions of the
failing task: the run then stores none of its partitions, and the previous
versions stay in place. Only when every task succeeded does the caller publish.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from factor_core import settings
from factor_core.atomic_files import StagedFile, discard_files, discarding_on_failure

#: Where ``fork`` is unavailable, workers start from a fork server that imports these first.
WORKER_PRELOAD = ["factor_assets"]


class Task(Protocol):
    """What a task must tell about itself so a failure can name what it covered."""

    @property
    def partitions(self) -> list[str]: ...


@dataclass
class ChunkResult:
    """What a task hands back: staged files per asset, and small metadata per (asset, partition)."""

    staged: dict[str, list[StagedFile]] = field(default_factory=dict)
    metadata: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Anything else the step needs from the task (check outcomes, frames for the warehouse).
    extra: dict[str, Any] = field(default_factory=dict)

    def all_staged(self) -> list[StagedFile]:
        return [f for files in self.staged.values() for f in files]


T = TypeVar("T", bound=Task)


class ChunkFailure(RuntimeError):
    """A task of a chunked step failed; nothing of the run was published."""

    def __init__(self, what: str, task: Task, error: BaseException, n_tasks: int):
        partitions = task.partitions
        shown = ", ".join(partitions[:8]) + (f" and {len(partitions) - 8} more" if len(partitions) > 8 else "")
        super().__init__(
            f"{what}: the chunk covering partition(s) {shown} failed: {type(error).__name__}: {error}. "
            f"None of the run's partitions were stored ({n_tasks} chunk(s) in the run); the previous "
            "versions are unchanged."
        )
        self.partitions = partitions


def default_workers() -> int:
    """``FACTOR_STEP_WORKERS`` (read when a step runs, so a run's environment decides), 0 = one per core."""
    configured = settings.get_int("FACTOR_STEP_WORKERS")
    return configured if configured > 0 else (os.cpu_count() or 1)


def _pool(workers: int) -> ProcessPoolExecutor:
    if "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_PRELOAD)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _run_task(fn: Callable[[T], ChunkResult], task: T) -> ChunkResult:
    """``fn(task)``; a task that fails half-way leaves none of the files it staged."""
    with discarding_on_failure():
        return fn(task)


@dataclass
class ChunkRunner(Generic[T]):
    """Runs ``fn`` over tasks; iterate :meth:`run` to receive results in task order."""

    what: str
    workers: int = field(default_factory=default_workers)
    on_progress: Callable[[int, int], None] | None = None

    def effective_workers(self, n_tasks: int) -> int:
        if multiprocessing.current_process().daemon:
            return 1  # daemonic processes (Celery prefork workers) may not start children
        return max(1, min(self.workers, n_tasks))

    def run(self, fn: Callable[[T], ChunkResult], tasks: Sequence[T]) -> Iterator[ChunkResult]:
        done: list[ChunkResult] = []
        try:
            if self.effective_workers(len(tasks)) == 1:
                yield from self._inline(fn, tasks, done)
            else:
                yield from self._parallel(fn, tasks, done)
        except BaseException:
            for result in done:
                discard_files(result.all_staged())
            raise

    def _report(self, i: int, n: int) -> None:
        if self.on_progress is not None:
            self.on_progress(i, n)

    def _inline(self, fn, tasks, done) -> Iterator[ChunkResult]:
        for i, task in enumerate(tasks, start=1):
            try:
                result = _run_task(fn, task)
            except Exception as exc:
                raise ChunkFailure(self.what, task, exc, len(tasks)) from exc
            done.append(result)
            self._report(i, len(tasks))
            yield result

    def _parallel(self, fn, tasks, done) -> Iterator[ChunkResult]:
        with _pool(self.effective_workers(len(tasks))) as pool:
            futures: list[Future] = [pool.submit(_run_task, fn, task) for task in tasks]
            consumed = 0
            try:
                for task, future in zip(tasks, futures, strict=True):
                    try:
                        result = future.result()
                    except Exception as exc:
                        raise ChunkFailure(self.what, task, exc, len(tasks)) from exc
                    done.append(result)
                    consumed += 1
                    self._report(consumed, len(tasks))
                    yield result
            except BaseException:
                for future in futures[consumed:]:
                    future.cancel()
                wait(futures)  # tasks already running finish; their staged files are discarded too
                for future in futures[consumed:]:
                    if not future.cancelled() and future.exception() is None:
                        discard_files(future.result().all_staged())
                raise


@dataclass
class ChunkedRun:
    """Everything a chunked step's tasks handed back, in task order, ready to publish."""

    staged: dict[str, list[StagedFile]] = field(default_factory=dict)
    metadata: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    extras: list[dict[str, Any]] = field(default_factory=list)

    def output(self, asset: str):
        """The asset's files as the Parquet IO manager's ``StagedPartitions``."""
        from resources.parquet_io_manager import StagedPartitions

        return StagedPartitions(self.staged.get(asset, []))


def run_chunks(context, what: str, fn: Callable[[T], ChunkResult], chunks: Sequence[T], *,
               workers: int | None = None, record: Sequence[str] | None = None) -> ChunkedRun:
    """Run ``chunks`` and attach each partition's metadata to its materialization (``context.add_asset_metadata``).

    ``record`` limits the assets whose metadata is attached (the selected outputs of a
    multi-asset); by default every asset a chunk reports on.
    """
    runner = ChunkRunner(what) if workers is None else ChunkRunner(what, workers=workers)
    run = ChunkedRun()
    for result in runner.run(fn, chunks):
        for asset, files in result.staged.items():
            run.staged.setdefault(asset, []).extend(files)
        for asset, per_partition in result.metadata.items():
            run.metadata.setdefault(asset, {}).update(per_partition)
            if record is not None and asset not in record:
                continue
            for key, metadata in per_partition.items():
                context.add_asset_metadata(metadata, asset_key=asset, partition_key=key)
        run.extras.append(result.extra)
    return run
