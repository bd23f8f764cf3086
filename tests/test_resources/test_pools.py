"""Concurrency pools hold on a fresh instance with no manual step, across runs started at the same time."""

import pytest

from tests.test_factor_assets.cli_runner import start_cli

pytestmark = pytest.mark.slow


def test_two_duckdb_writers_in_two_runs_never_overlap_and_neither_fails_on_the_lock(instance, dagster_home, data_root):
    # The `instance` fixture creates the SQLite storages first (as `dagster instance migrate` would): two
    # processes creating them at the same instant race in Dagster's own schema migration
    # ("table alembic_version already exists"), which is not what this test is about.
    instance.get_runs(limit=1)
    instance.schedule_storage.all_instigator_state()
    env = {"DAGSTER_HOME": str(dagster_home), "FACTOR_DATA_ROOT": str(data_root)}
    runs = [start_cli(["dagster", "asset", "materialize", "-f", "tests/pool_location.py", "--select", name], env=env)
            for name in ("writer_a", "writer_b")]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    spans = sorted((float(start), float(end), name) for name, start, end in
                   (line.split() for line in (data_root / "writers.log").read_text().splitlines()))
    assert len(spans) == 2
    (_, first_end, first), (second_start, _, second) = spans
    assert first_end <= second_start, f"{first} and {second} wrote DuckDB at the same time: {spans}"
