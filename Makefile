# factor-pipeline: every target creates the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export FACTOR_DATA_ROOT ?= $(CURDIR)/data

# Parallel test workers (the suite is CPU-bound); override with `make test PYTEST_WORKERS=0`.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: install test test-slow demo dev validate bench clean celery-worker

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

validate: $(STAMP)
	$(BIN)/dagster definitions validate -w workspace.yaml

# Fast suite for development: everything but the suites marked slow.
test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# The suites marked slow (CI runs them after `make test`).
test-slow: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m slow $(PYTEST_ARGS)

# Registers the demo universe and materializes the whole graph through Dagster
# over the last DEMO_DAYS complete UTC days (or from DEMO_START): one
# `dagster asset materialize` run per stage of the graph (`factor-pipeline
# assets` lists them), each recorded in the instance at $(DAGSTER_HOME) so the
# UI shows it; then prints the strategies' summary.
demo: $(STAMP)
	$(BIN)/factor-pipeline symbols add --demo
	$(BIN)/factor-pipeline backfill
	$(BIN)/factor-pipeline report

# The Dagster UI on http://127.0.0.1:3000 (loopback only).
dev: $(STAMP)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# A Celery worker for FACTOR_EXECUTOR=celery, from the same CELERY_* settings and environment as the launcher
# (docs/operations.md#celery-workers), e.g. make celery-worker CELERY_WORKER_ARGS="--name node1 --concurrency 2".
CELERY_WORKER_ARGS ?=
celery-worker: $(STAMP)
	$(BIN)/factor-pipeline celery-worker $(CELERY_WORKER_ARGS)

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf data .pytest_cache
	find dagster_home -mindepth 1 -maxdepth 1 ! -name dagster.yaml ! -name postgres -exec rm -rf {} +
