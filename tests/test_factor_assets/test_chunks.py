"""The chunk runner: parallel tasks, results in task order, all or nothing."""

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from factor_assets.chunks import ChunkFailure, ChunkResult, ChunkRunner
from factor_core.partition_store import PartitionStore


@dataclass(frozen=True)
class Task:
    root: Path
    day: str
    fail: bool = False

    @property
    def partitions(self) -> list[str]:
        return [f"{self.day}|BTCUSDT"]


def stage_one(task: Task) -> ChunkResult:
    store = PartitionStore(task.root)
    staged = store.stage("prices", {"date": task.day, "symbol": "BTCUSDT"}, pa.table({"pid": [os.getpid()]}))
    if task.fail:
        raise ValueError(f"bad data on {task.day}")
    return ChunkResult(staged={"prices": [staged]}, metadata={"prices": {task.partitions[0]: {"pid": os.getpid()}}})


def _days(n: int) -> list[str]:
    return [f"2024-01-{d:02d}" for d in range(1, n + 1)]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_tasks_run_in_worker_processes_and_come_back_in_task_order(tmp_path):
    tasks = [Task(tmp_path, day) for day in _days(6)]
    results = list(ChunkRunner("prices", workers=2).run(stage_one, tasks))
    assert [next(iter(r.metadata["prices"])) for r in results] == [t.partitions[0] for t in tasks]
    pids = {r.metadata["prices"][t.partitions[0]]["pid"] for r, t in zip(results, tasks, strict=True)}
    assert os.getpid() not in pids and len(pids) >= 1  # computed in workers, not in this process
    assert not list(tmp_path.rglob("part-0.parquet"))  # staged only: nothing visible until published


def test_one_failing_task_discards_every_staged_file_and_names_its_partitions(tmp_path):
    store = PartitionStore(tmp_path)
    previous = store.stage("prices", {"date": "2024-01-02", "symbol": "BTCUSDT"}, pa.table({"pid": [0]}))
    store.publish([previous])
    before = _files(tmp_path)
    tasks = [Task(tmp_path, day, fail=(day == "2024-01-04")) for day in _days(6)]
    with pytest.raises(ChunkFailure, match=r"partition\(s\) 2024-01-04\|BTCUSDT failed: ValueError: bad data on 2024-01-04") as raised:
        list(ChunkRunner("prices", workers=2).run(stage_one, tasks))
    assert raised.value.partitions == ["2024-01-04|BTCUSDT"]
    assert "None of the run's partitions were stored" in str(raised.value)
    assert _files(tmp_path) == before  # no staged file left behind, the stored partition untouched


def test_inline_when_the_step_runs_in_a_daemonic_process(tmp_path, monkeypatch):
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    runner = ChunkRunner("prices", workers=4)
    assert runner.effective_workers(10) == 1
    results = list(runner.run(stage_one, [Task(tmp_path, day) for day in _days(3)]))
    assert {r.metadata["prices"][f"{d}|BTCUSDT"]["pid"] for r, d in zip(results, _days(3), strict=True)} == {os.getpid()}


def test_the_worker_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACTOR_STEP_WORKERS", "3")
    assert ChunkRunner("x").workers == 3
    monkeypatch.setenv("FACTOR_STEP_WORKERS", "many")
    with pytest.raises(ValueError, match="FACTOR_STEP_WORKERS='many' is not an integer"):
        ChunkRunner("x")
