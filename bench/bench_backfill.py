"""Whole-graph backfill: through Dagster, as plain Python, and Dagster's own floor, in one run.

Reproduce (defaults: 20 symbols x 30 days from 2024-03-01; a quiet machine, it takes a while):

    .venv/bin/python bench/bench_backfill.py [--symbols 20] [--days 30] [--start 2024-03-01]
        [--memory-symbols 5] [--memory-days 20 80] [--skip-memory] [--keep]

Small check: ``.venv/bin/python bench/bench_backfill.py --symbols 3 --days 4 --skip-memory``.

Over S symbols x D days of the simulator (MARKET_DATA_SOURCE=synthetic) the whole graph runs three ways,
compared stage by stage. The stages are the runs of the backfill's own plan (``factor_assets.cli.run_plan``,
what ``factor-pipeline assets`` prints): the universe, the news, the per-symbol layers, the daily layers,
the summaries. Every environment gets OPENAI_API_KEY removed, so sentiment is scored by the offline scorer
(newswire tone + VADER), as in ``make demo``; the rest of the user's settings apply.

(a) Through Dagster, as a user launches it (what ``make demo`` runs): a fresh DAGSTER_HOME (a copy of
    dagster_home/dagster.yaml) and FACTOR_DATA_ROOT, ``factor-pipeline symbols add <symbols>`` (not
    timed), then ``factor-pipeline backfill --start START --days D`` (timed): one ``dagster asset
    materialize -m factor_assets`` run per stage, on every core. The CLI prints each stage's command as
    it starts it, and the bench timestamps those lines: a stage runs from its line to the next; the CLI's
    own start-up before the first line (it imports the code location to plan) is a row of its own.
    Steps (STEP_START to STEP_SUCCESS) and run times come from the instance. Peak RSS: the largest
    process of the backfill, as ``getrusage(RUSAGE_CHILDREN)`` of a wrapper process sees it.
(b) Plain Python in this process, pinned to one core, FACTOR_STEP_WORKERS=1. Each node (op) of a stage
    runs as its Dagster step would, in dependency order: the asset's own function (the body under its
    decorator) is called with the project's resources (``factor_assets.definitions.build_resources``
    over a third data root) and a stand-in context that holds only the run's partition keys, the
    selected assets and the registered symbols (metadata and logs are dropped). So the same code builds
    the same chunks and runs the same chunk functions (``run_chunks``, inline), and outputs go through
    the project's IO managers' ``handle_output``: ``ParquetIOManager`` (checks that the staged files are
    exactly the run's partitions, publishes them) and ``WarehouseIOManager`` (DuckDB table replaced in
    a transaction, views refreshed). Inputs are ``ParquetIOManager.load_input`` (lazy
    ``PartitionedInput``) over exactly the upstream partitions Dagster maps to the run, from the same
    partition-mapping calls Dagster's step context makes; they are computed before the timer starts
    (that is Dagster's work, counted in (c)). Not timed: a warm-up of the whole graph over 2 symbols x
    2 days in this process first (Numba's compile or cache load, first imports such as matplotlib and
    the VADER lexicon); its time is printed. No asset needs ``dagster.materialize``.
(c) Dagster's floor: ``bench/noop_graph.py``, derived from ``factor_assets.defs`` (same op names, keys,
    partitions, mappings, policies, pools, checks, resources, config, executor) with bodies that do
    nothing, checked field by field against the real graph first (the bench stops on any difference),
    materialized on a fresh instance with the stage commands the backfill issues: the bench checks they
    are the lines (a) printed, with ``-m bench.noop_graph`` for ``-m factor_assets``.

Printed: the three times, the ratio a / (b + c) (target <= 1.3), the breakdown per stage and per step,
the number of runs, peak memory, and whether (a) and (b) stored the same partition files with the same
bytes (else equal tables) and the same DuckDB tables: any mismatch is listed and the exit status is 1.
Then, unless --skip-memory, the stages up to the per-symbol layers run on fresh instances over
--memory-symbols x each --memory-days, and the per-symbol run's peak RSS is printed: chunked steps hold
one chunk per worker, so it must not grow with the range. The last line is JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
START = dt.date(2024, 3, 1)
REAL_MODULE, NOOP_MODULE = "factor_assets", "bench.noop_graph"
#: The environment and cores as the user gave them, before this process pins itself for (b).
USER_ENV = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
USER_CPUS = sorted(os.sched_getaffinity(0))
#: Runs a command on the user's cores and prints the peak RSS (KiB) of every process it waited for,
#: the command's own descendants included.
PEAK_RSS = (
    "import os, resource, subprocess, sys; os.sched_setaffinity(0, [int(c) for c in sys.argv[1].split(',')]); "
    "r = subprocess.run(sys.argv[2:]); "
    "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr, flush=True); "
    "sys.exit(r.returncode)"
)
STAGE_LINE = "+ dagster asset materialize"


def symbols(n: int) -> list[str]:
    return [f"B{i:03d}USDT" for i in range(n)]


def last_day(first: dt.date, days: int) -> dt.date:
    return first + dt.timedelta(days=days - 1)


def pipeline_env(data: Path, names: list[str]) -> dict[str, str]:
    """What every way of running the pipeline gets on top of the user's environment."""
    return {"FACTOR_DATA_ROOT": str(data), "DEMO_SYMBOLS": ",".join(names), "MARKET_DATA_SOURCE": "synthetic"}


# --------------------------------------------------------------------------- the plan and its commands


def stage_label(kind: str, keys: list[str]) -> str:
    shown = ",".join(keys) if len(keys) <= 3 else f"{','.join(keys[:2])},... ({len(keys)} assets)"
    return f"{kind}: {shown}"


def partition_ranges(names: list[str], first: dt.date, last: dt.date) -> dict[str, str]:
    """The ``--partition-range`` of each kind of stage, as ``factor-pipeline backfill`` builds it."""
    return {"per-symbol": f"{first}|{names[0]}...{last}|{names[-1]}", "daily": f"{first}...{last}"}


def stage_commands(plan, names: list[str], first: dt.date, last: dt.date, module: str) -> list[list[str]]:
    ranges = partition_ranges(names, first, last)
    commands = []
    for kind, keys in plan:
        command = ["dagster", "asset", "materialize", "-m", module, "--select", ",".join(keys)]
        if kind in ranges:
            command += ["--partition-range", ranges[kind]]
        commands.append(command)
    return commands


def printed(command: list[str]) -> str:
    """The line ``factor-pipeline backfill`` prints before running ``command``."""
    return "+ " + " ".join(shlex.quote(c) for c in command)


# --------------------------------------------------------------------------- (a), (c): Dagster instances


@dataclass
class CliRun:
    elapsed: float
    lines: list[tuple[float, str]]  # (seconds since the start, line), stdout and stderr merged
    peak_rss_kib: int


@dataclass
class InstanceReport:
    runs: int
    run_seconds: list[float]  # per run, in start order: start to end as the instance recorded them
    steps: dict[str, float]  # step key: seconds from STEP_START to STEP_SUCCESS, summed over runs


class Instance:
    """A fresh DAGSTER_HOME + data root, driven through the command line like a user does."""

    def __init__(self, root: Path, name: str, names: list[str]):
        self.home, self.data = root / f"{name}_home", root / f"{name}_data"
        self.home.mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", self.home / "dagster.yaml")
        self.names = names
        self.env = {**USER_ENV, **pipeline_env(self.data, names), "DAGSTER_HOME": str(self.home)}
        self.peak_rss_kib = 0
        self.run(["factor-pipeline", "symbols", "add", *names])

    def run(self, args: list[str]) -> CliRun:
        command = [sys.executable, "-c", PEAK_RSS, ",".join(map(str, USER_CPUS)), str(BIN / args[0]), *args[1:]]
        started = time.perf_counter()
        with subprocess.Popen(command, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as proc:
            lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in proc.stdout]
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            tail = "\n".join(line for _, line in lines[-60:])
            raise SystemExit(f"FAILED: {' '.join(args)} (exit {proc.returncode}):\n{tail}")
        peak = max((int(line.split()[1]) for _, line in lines if line.startswith("PEAK_RSS_KIB")), default=0)
        self.peak_rss_kib = max(self.peak_rss_kib, peak)
        return CliRun(elapsed, lines, peak)

    def report(self) -> InstanceReport:
        os.environ["DAGSTER_HOME"] = str(self.home)
        from dagster import DagsterEventType, DagsterInstance

        with DagsterInstance.from_config(str(self.home)) as instance:
            records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
            steps: dict[str, float] = {}
            for record in records:
                starts = {}
                for entry in instance.all_logs(record.dagster_run.run_id):
                    event = entry.dagster_event
                    if event is None or not event.step_key:
                        continue
                    if event.event_type == DagsterEventType.STEP_START:
                        starts[event.step_key] = entry.timestamp
                    elif event.event_type == DagsterEventType.STEP_SUCCESS:
                        steps[event.step_key] = steps.get(event.step_key, 0.0) + entry.timestamp - starts[event.step_key]
            run_seconds = [(r.end_time or 0.0) - (r.start_time or 0.0) for r in records]
            return InstanceReport(len(records), run_seconds, steps)


def backfill_through_cli(instance: Instance, first: dt.date, days: int) -> tuple[CliRun, list[str], list[float], float]:
    """(a): ``factor-pipeline backfill``; (run, stage lines it printed, seconds per stage, CLI start-up)."""
    run = instance.run(["factor-pipeline", "backfill", "--start", first.isoformat(), "--days", str(days)])
    marks = [(t, line) for t, line in run.lines if line.startswith(STAGE_LINE)]
    if not marks:
        raise SystemExit("FAILED: factor-pipeline backfill printed no stage command")
    ends = [t for t, _ in marks[1:]] + [run.elapsed]
    return run, [line for _, line in marks], [end - t for (t, _), end in zip(marks, ends, strict=True)], marks[0][0]


def materialize_stages(instance: Instance, commands: list[list[str]]) -> list[CliRun]:
    return [instance.run(command) for command in commands]


# --------------------------------------------------------------------------- (b): plain Python


class PlainContext:
    """The few context attributes the asset bodies read; metadata and log lines are dropped."""

    log = logging.getLogger("bench_backfill.plain")
    log.addHandler(logging.NullHandler())
    log.propagate = False

    def __init__(self, node, partition_keys, selected, instance, tags):
        self.assets_def, self.partition_keys, self.selected_asset_keys = node, partition_keys, selected
        self.instance = instance
        self.run = SimpleNamespace(tags=tags)

    def add_asset_metadata(self, metadata, asset_key=None, partition_key=None) -> None:
        pass

    def add_output_metadata(self, metadata, output_name=None) -> None:
        pass


class PlainPipeline:
    """(b): the graph's nodes called as plain Python in this process, over one data root (module docstring)."""

    def __init__(self, data: Path, names: list[str]):
        os.environ.update({**pipeline_env(data, names), "FACTOR_STEP_WORKERS": "1"})
        from dagster import DagsterInstance

        from factor_assets.definitions import build_resources, defs
        from factor_core import settings
        from partitions import SYMBOLS_PARTITION_NAME

        self.names, self.data = names, data
        self.resources = build_resources(settings.get("MARKET_DATA_SOURCE"))
        self.graph = defs.resolve_asset_graph()
        self.nodes = defs.get_repository_def().assets_defs_by_key
        self.instance = DagsterInstance.ephemeral()  # the registered symbols, in registration order
        self.instance.add_dynamic_partitions(SYMBOLS_PARTITION_NAME, names)

    def run_plan(self, plan, first: dt.date, last: dt.date) -> list[dict[str, float]]:
        """Every stage; per stage ``{op name: seconds}``."""
        return [self.run_stage(kind, keys, first, last) for kind, keys in plan]

    def run_stage(self, kind: str, keys: list[str], first: dt.date, last: dt.date) -> dict[str, float]:
        from dagster import PartitionKeyRange

        ranges = partition_ranges(self.names, first, last)
        key_range = PartitionKeyRange(*ranges[kind].split("...")) if kind in ranges else None
        return {node.node_def.name: self.run_node(node, selected, key_range)
                for node, selected in self.nodes_in_order(keys)}

    def nodes_in_order(self, keys: list[str]):
        """The stage's nodes with their selected keys, upstream first (the order the steps could run in)."""
        from dagster import AssetKey

        wanted = {AssetKey.from_user_string(k) for k in keys}
        by_op: dict[str, tuple] = {}
        for key in sorted(wanted):
            node = self.nodes[key]
            by_op.setdefault(node.node_def.name, (node, set()))[1].add(key)
        ordered, done = [], set()
        while by_op:
            ready = [op for op, (_, selected) in by_op.items()
                     if all(p in done or p not in wanted or p in selected for k in selected for p in self.graph.get(k).parent_keys)]
            if not ready:
                raise RuntimeError(f"no node of {sorted(by_op)} is ready: a cycle?")
            for op in sorted(ready):
                node, selected = by_op.pop(op)
                ordered.append((node, selected))
                done |= selected
        return ordered

    def run_node(self, node, selected, key_range) -> float:
        """One node as its step would run it; seconds from calling its function to its last output stored."""
        from dagster import Output, partition_loading_context

        from factor_assets.partition_keys import RANGE_END_TAG, RANGE_START_TAG

        partitions_def = node.partitions_def
        with partition_loading_context(dynamic_partitions_store=self.instance):
            subset = (partitions_def.empty_subset().with_partition_key_range(partitions_def, key_range)
                      if partitions_def is not None else None)
            partition_keys = partitions_def.get_partition_keys_in_range(key_range) if partitions_def is not None else []
            inputs = {name: self.load_input(node, name, upstream, subset)
                      for name, upstream in node.keys_by_input_name.items()}
            output_keys = list(subset.get_partition_keys()) if subset is not None else []
        tags = {RANGE_START_TAG: key_range.start, RANGE_END_TAG: key_range.end} if key_range else {}
        context = PlainContext(node, partition_keys, selected, self.instance, tags)
        fn = node.node_def.compute_fn.decorated_fn
        kwargs = self.arguments(fn, node, context, inputs)
        started = time.perf_counter()
        result = fn(**kwargs)
        if not inspect.isgenerator(result):
            result = [Output(result, output_name=node.get_output_name_for_asset_key(node.key))]
        for item in result:  # asset check results are computed by the body and dropped here
            if isinstance(item, Output):
                self.handle_output(node, item, output_keys)
        return time.perf_counter() - started

    def arguments(self, fn, node, context, inputs: dict) -> dict:
        """The body's arguments as Dagster passes them: context, config (its defaults), resources, inputs."""
        parameters = inspect.signature(fn).parameters
        hints = typing.get_type_hints(fn) if "config" in parameters else {}
        kwargs, rest = {}, dict(inputs)
        for name, param in parameters.items():
            if name == "context":
                kwargs[name] = context
            elif name == "config":
                kwargs[name] = hints[name]()  # a launch without run config: every field's default
            elif name in node.node_def.required_resource_keys:
                kwargs[name] = self.resources[name]
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            else:
                kwargs[name] = rest.pop(name)
        return {**kwargs, **rest}

    def load_input(self, node, name: str, upstream, subset):
        """What the input's IO manager hands the body, over the upstream partitions Dagster maps to the run."""
        from dagster._core.definitions.partitions.utils.mapping import infer_partition_mapping

        upstream_def = self.graph.get(upstream).partitions_def
        keys = None
        if upstream_def is not None:
            mapping = infer_partition_mapping(node.get_partition_mapping_for_dep(upstream), node.partitions_def, upstream_def)
            mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(subset, node.partitions_def, upstream_def)
            keys = list(mapped.partitions_subset.get_partition_keys())
        input_def = node.node_def.input_def_named(name)
        manager_key = input_def.input_manager_key or self.nodes[upstream].get_io_manager_key_for_asset_key(upstream)
        context = SimpleNamespace(upstream_output=SimpleNamespace(asset_key=upstream), asset_key=upstream,
                                  definition_metadata=input_def.metadata, has_asset_partitions=keys is not None,
                                  asset_partitions_def=upstream_def, asset_partition_keys=keys)
        return self.resources[manager_key].load_input(context)

    def handle_output(self, node, output, partition_keys: list) -> None:
        key = node.keys_by_output_name[output.output_name]
        manager = self.resources[node.node_def.output_def_named(output.output_name).io_manager_key]
        context = SimpleNamespace(asset_key=key, has_asset_partitions=node.partitions_def is not None,
                                  asset_partitions_def=node.partitions_def, asset_partition_keys=partition_keys,
                                  add_output_metadata=lambda *args, **kwargs: None)
        manager.handle_output(context, output.value)


def plain_python(root: Path, plan, names: list[str], first: dt.date, last: dt.date) -> tuple[list[dict[str, float]], float, float]:
    """(b) after an untimed warm-up; (seconds per op per stage, CPU seconds, warm-up seconds)."""
    from partitions import PARTITIONS_START_DATE

    started = time.perf_counter()
    PlainPipeline(root / "warmup_data", symbols(2)).run_plan(plan, PARTITIONS_START_DATE, last_day(PARTITIONS_START_DATE, 2))
    warmup = time.perf_counter() - started
    pipeline = PlainPipeline(root / "plain_data", names)
    cpu = time.process_time()
    stages = pipeline.run_plan(plan, first, last)
    return stages, time.process_time() - cpu, warmup


# --------------------------------------------------------------------------- (a) == (b)?


def stored_files(root: Path) -> dict[str, Path]:
    from factor_core.partition_store import PART_FILE

    files = {p.relative_to(root).as_posix(): p for p in root.rglob(PART_FILE)}
    files.update({p.relative_to(root).as_posix(): p for p in (root / "reports").glob("*.html")})
    return files


def warehouse_tables(root: Path) -> dict:
    import duckdb

    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        names = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {name: con.execute(f'SELECT * FROM "{name}"').fetchdf() for name in names}


def compare_outputs(a: Path, b: Path) -> tuple[list[str], dict[str, list[int]]]:
    """Mismatches between the stores of (a) and (b), and per asset [files, identical bytes, equal tables only]."""
    import pyarrow.parquet as pq

    files_a, files_b = stored_files(a), stored_files(b)
    problems = [f"only in (a): {p}" for p in sorted(set(files_a) - set(files_b))[:20]]
    problems += [f"only in (b): {p}" for p in sorted(set(files_b) - set(files_a))[:20]]
    per_asset: dict[str, list[int]] = {}
    for rel in sorted(set(files_a) & set(files_b)):
        counts = per_asset.setdefault(rel.split("/")[0], [0, 0, 0])
        counts[0] += 1
        if files_a[rel].read_bytes() == files_b[rel].read_bytes():
            counts[1] += 1
        elif rel.endswith(".parquet") and pq.read_table(files_a[rel]).equals(pq.read_table(files_b[rel])):
            counts[2] += 1
        else:
            problems.append(f"differs: {rel}")
    tables_a, tables_b = warehouse_tables(a), warehouse_tables(b)
    if set(tables_a) != set(tables_b):
        problems.append(f"warehouse tables differ: (a) {sorted(tables_a)}, (b) {sorted(tables_b)}")
    for name in sorted(set(tables_a) & set(tables_b)):
        if not tables_a[name].equals(tables_b[name]):
            problems.append(f"warehouse table {name} differs")
    per_asset["warehouse tables"] = [len(tables_a), sum(tables_a[n].equals(tables_b.get(n)) for n in tables_a), 0]
    leftovers = [p for root in (a, b) for p in root.rglob(".*.tmp")]
    problems += [f"temporary file left: {p}" for p in leftovers[:10]]
    return problems, per_asset


# --------------------------------------------------------------------------- report


def print_stages(plan, a_stages, a_runs, startup, b_stages, c_runs, c_report) -> None:
    print("per stage, seconds (wall; 'in run' = run start to end as the instance recorded it):")
    print(f"  {'stage':<58} {'(a) wall':>9} {'in run':>7} {'(b) plain':>9} {'(c) wall':>9} {'in run':>7}")
    print(f"  {'factor-pipeline backfill start-up (plan)':<58} {startup:9.1f}")
    for i, (kind, keys) in enumerate(plan):
        print(f"  {stage_label(kind, keys):<58} {a_stages[i]:9.1f} {a_runs[i]:7.1f} {sum(b_stages[i].values()):9.1f} "
              f"{c_runs[i].elapsed:9.1f} {c_report.run_seconds[i]:7.1f}")


def print_steps(steps_a: dict, steps_b: dict, steps_c: dict) -> None:
    print("per step, seconds ((a), (c): STEP_START to STEP_SUCCESS; (b): the node's function and its outputs):")
    print(f"  {'step':<24} {'(a) pipeline':>12} {'(b) plain':>10} {'(c) no-op':>10}")
    for step in sorted(set(steps_a) | set(steps_b) | set(steps_c)):
        cells = [d.get(step, float("nan")) for d in (steps_a, steps_b, steps_c)]
        print(f"  {step:<24} {cells[0]:12.2f} {cells[1]:10.2f} {cells[2]:10.2f}")


def print_comparison(problems: list[str], per_asset: dict[str, list[int]]) -> None:
    summary = ", ".join(f"{asset} {n}" + (f" ({same} identical, {tables} equal tables)" if same != n else "")
                        for asset, (n, same, tables) in per_asset.items())
    print(f"(a) vs (b) stored outputs: {sum(v[0] for v in per_asset.values())} files/tables in both: {summary}")
    if problems:
        print("!" * 100)
        print(f"MISMATCH: (a) and (b) did not store the same outputs ({len(problems)} problem(s)):")
        for problem in problems[:40]:
            print(f"  {problem}")
        print("!" * 100)
    else:
        print("(a) and (b) stored the same partition files with the same contents, and the same DuckDB tables: OK")


def memory_bench(root: Path, plan, n_symbols: int, ranges: list[int], first: dt.date) -> dict[str, float]:
    """Peak RSS of the per-symbol stage over each range size (stages before it run first, unmeasured)."""
    upto = next(i for i, (kind, _) in enumerate(plan) if kind == "per-symbol")
    out = {}
    for days in ranges:
        instance = Instance(root, f"memory{days}", symbols(n_symbols))
        commands = stage_commands(plan[:upto + 1], instance.names, first, last_day(first, days), REAL_MODULE)
        run = materialize_stages(instance, commands)[-1]
        print(f"memory: per-symbol layers ({len(plan[upto][1])} assets) over {n_symbols} x {days} = "
              f"{n_symbols * days} partitions in one run: peak RSS {run.peak_rss_kib / 1024:.0f} MiB ({run.elapsed:.0f} s)",
              flush=True)
        out[f"peak_rss_mib_{n_symbols}x{days}"] = run.peak_rss_kib / 1024
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=START)
    parser.add_argument("--memory-symbols", type=int, default=5)
    parser.add_argument("--memory-days", type=int, nargs=2, default=[20, 80])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instances and data roots")
    args = parser.parse_args(argv)
    s, d, first = args.symbols, args.days, args.start
    last, names = last_day(first, d), symbols(args.symbols)

    root = Path(tempfile.mkdtemp(prefix="bench_backfill_"))
    os.environ.pop("OPENAI_API_KEY", None)  # the offline scorer, as in `make demo`
    os.environ.update(pipeline_env(root / "unused_data", names))  # before the code location is imported here
    try:
        from bench import noop_graph
        from factor_assets.cli import run_plan

        problems = noop_graph.mismatches()
        if problems:
            raise SystemExit("FAILED: bench/noop_graph.py does not mirror factor_assets.defs:\n  " + "\n  ".join(problems))
        plan = run_plan()
        print(f"{s} symbols x {d} days ({first} .. {last}) = {s * d} (day, symbol) partitions; {len(plan)} stages; "
              f"{os.cpu_count()} cores; data under {root}", flush=True)

        real = Instance(root, "dagster", names)
        run_a, lines_a, a_stages, startup = backfill_through_cli(real, first, d)
        a = run_a.elapsed
        print(f"(a) factor-pipeline backfill:         {a:7.1f} s", flush=True)

        os.sched_setaffinity(0, USER_CPUS[:1])
        b_stages, b_cpu, warmup = plain_python(root, plan, names, first, last)
        os.sched_setaffinity(0, USER_CPUS)
        b = sum(sum(stage.values()) for stage in b_stages)
        print(f"(b) plain Python, one core:           {b:7.1f} s  (CPU {b_cpu:.1f} s; untimed warm-up {warmup:.1f} s)", flush=True)

        commands = stage_commands(plan, names, first, last, NOOP_MODULE)
        expected = [printed(c) for c in stage_commands(plan, names, first, last, REAL_MODULE)]
        if expected != lines_a:
            raise SystemExit("FAILED: the stage commands of (c) are not the ones the backfill ran:\n  "
                             + "\n  ".join(lines_a) + "\nexpected:\n  " + "\n  ".join(expected))
        floor = Instance(root, "noop", names)
        print("(c) the backfill's stage commands on bench/noop_graph.py:\n  " + "\n  ".join(printed(c) for c in commands))
        c_runs = materialize_stages(floor, commands)
        c = sum(r.elapsed for r in c_runs)
        print(f"(c) Dagster floor (no-op graph):      {c:7.1f} s", flush=True)

        ratio = a / (b + c)
        print(f"ratio a / (b + c) = {a:.1f} / ({b:.1f} + {c:.1f}) = {ratio:.2f}  [target <= 1.3] "
              f"{'OK' if ratio <= 1.3 else 'MISSED'}")
        report_a, report_c = real.report(), floor.report()
        print_stages(plan, a_stages, report_a.run_seconds, startup, b_stages, c_runs, report_c)
        steps_b = {op: t for stage in b_stages for op, t in stage.items()}
        print_steps(report_a.steps, steps_b, report_c.steps)
        print(f"runs: (a) {report_a.runs}, (c) {report_c.runs}")
        bench_rss = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss
        print(f"peak RSS: (a) largest process of the backfill {real.peak_rss_kib / 1024:.0f} MiB, "
              f"(b) this process {bench_rss / 1024:.0f} MiB, (c) {floor.peak_rss_kib / 1024:.0f} MiB")
        problems, per_asset = compare_outputs(real.data, root / "plain_data")
        print_comparison(problems, per_asset)

        result = {
            "symbols": s, "days": d, "start": first.isoformat(), "a_s": a, "b_s": b, "c_s": c, "ratio": ratio,
            "b_cpu_s": b_cpu, "warmup_s": warmup, "runs_a": report_a.runs, "runs_c": report_c.runs,
            "stages": [{"stage": f"{kind}:{','.join(keys)}", "a_s": a_stages[i], "a_run_s": report_a.run_seconds[i],
                        "b_s": sum(b_stages[i].values()), "c_s": c_runs[i].elapsed, "c_run_s": report_c.run_seconds[i]}
                       for i, (kind, keys) in enumerate(plan)],
            "cli_startup_s": startup, "steps_a": report_a.steps, "steps_b": steps_b, "steps_c": report_c.steps,
            "peak_rss_mib_a": real.peak_rss_kib / 1024, "peak_rss_mib_c": floor.peak_rss_kib / 1024,
            "outputs_match": not problems,
        }
        if not args.skip_memory:
            result.update(memory_bench(root, plan, args.memory_symbols, args.memory_days, first))
        print(json.dumps(result))
        return 1 if problems else 0
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
