"""Concurrency pools hold on a fresh instance with no manual step, across runs whose steps overlap."""

import time

import pytest

from tests.test_factor_assets.cli_runner import start_cli

pytestmark = pytest.mark.slow


def test_two_duckdb_writers_in_two_runs_never_overlap_and_neither_fails_on_the_lock(instance, dagster_home, data_root):
    """The second run is launched while the first one's writer holds the duckdb slot, and waits for it.

    Not at the same instant: two steps claiming a pool's last slot within the same few milliseconds can both
    get it (Dagster's own claim checks, then updates; see docs/operations.md). The `instance` fixture creates
    the SQLite storages first (as `dagster instance migrate` would): two processes creating them at once race
    in Dagster's schema migration ("table alembic_version already exists"). Neither is what this test is about.
    """
    instance.get_runs(limit=1)
    instance.schedule_storage.all_instigator_state()
    env = {"DAGSTER_HOME": str(dagster_home), "FACTOR_DATA_ROOT": str(data_root)}

    def launch(name):
        return start_cli(["dagster", "asset", "materialize", "-f", "tests/pool_location.py", "--select", name], env=env)

    runs = [launch("writer_a")]
    deadline = time.monotonic() + 300
    while not (data_root / "writer_a.started").exists():
        assert runs[0].poll() is None and time.monotonic() < deadline, runs[0].communicate()[0][-3000:]
        time.sleep(0.1)
    runs.append(launch("writer_b"))
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    spans = sorted((float(start), float(end), name) for name, start, end in
                   (line.split() for line in (data_root / "writers.log").read_text().splitlines()))
    assert len(spans) == 2
    (_, first_end, first), (second_start, _, second) = spans
    assert first_end <= second_start, f"{first} and {second} wrote DuckDB at the same time: {spans}"
