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
    Steps (STEP_START to STEP_SUCCESS, and their worker processes' start) and run times come from the
    instance. Peak RSS and CPU seconds: ``getrusage(RUSAGE_CHILDREN)`` of a wrapper process that is a
    child subreaper, so the step processes (children of the executor's fork server, which nobody
    waits for) are counted too; the wrapper of the earlier version of this bench saw only the run's
    own process.
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

Printed: the three times, the ratio a / (b + c) (target <= 1.3), the same ratio of CPU seconds (robust
to other jobs on the machine), the breakdown per stage and per step, the number of runs, peak memory,
and whether (a) and (b) stored the same partition files with the same bytes (else equal tables) and the
same DuckDB tables: any mismatch is listed and the exit status is 1.
Then, unless --skip-memory, the stages up to the per-symbol layers run on fresh instances over
--memory-symbols x each --memory-days, and the per-symbol run's peak RSS is printed: chunked steps hold
one chunk per worker, so it must not grow with the range. The last line is JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
START = dt.date(2024, 3, 1)
REAL_MODULE, NOOP_MODULE = "factor_assets", "bench.noop_graph"
#: The environment and cores as the user gave them, before this process pins itself for (b).
USER_ENV = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
USER_CPUS = sorted(os.sched_getaffinity(0))
#: Runs a command on the user's cores and prints the peak RSS (KiB) of the largest process of its tree
#: and the CPU seconds (user + system) of the whole tree.
#: The wrapper is a child subreaper and reaps every orphan before asking: Dagster's step processes are
#: children of the executor's fork server, which nobody waits for once the run exits, so without it
#: ``RUSAGE_CHILDREN`` would only see the run's own process, never a step.
PEAK_RSS = """
import ctypes, os, resource, subprocess, sys, time
os.sched_setaffinity(0, [int(c) for c in sys.argv[1].split(",")])
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
code = subprocess.run(sys.argv[2:]).returncode
deadline = time.monotonic() + 120
while time.monotonic() < deadline:  # orphans re-parented here: the fork server exits with its run
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.05)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print("PEAK_RSS_KIB", usage.ru_maxrss, "CPU_S", usage.ru_utime + usage.ru_stime, file=sys.stderr, flush=True)
sys.exit(code)
"""
from bench.plain_pipeline import PlainResult, last_day, partition_ranges, pipeline_env, plain_python, symbols  # noqa: E402

STAGE_LINE = "+ dagster asset materialize"
#: Largest relative growth of the per-symbol run's peak RSS from the small range to the large one still read as flat.
MEMORY_TOLERANCE = 0.10


# --------------------------------------------------------------------------- the plan and its commands


def stage_label(kind: str, keys: list[str]) -> str:
    shown = ",".join(keys) if len(keys) <= 2 else f"{keys[0]},... ({len(keys)} assets)"
    return f"{kind}: {shown}"


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
    cpu_s: float  # user + system, every process of the command


@dataclass
class InstanceReport:
    runs: int
    run_seconds: list[float]  # per run, in start order: start to end as the instance recorded them
    steps: dict[str, float]  # step key: seconds from STEP_START to STEP_SUCCESS, summed over runs
    worker_starts: dict[str, float]  # step key: seconds from STEP_WORKER_STARTING to STEP_WORKER_STARTED


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
        usage = next((line.split() for _, line in reversed(lines) if line.startswith("PEAK_RSS_KIB")), None)
        if usage is None:
            raise SystemExit(f"FAILED: {' '.join(args)}: the wrapper printed no PEAK_RSS_KIB line")
        peak, cpu = int(usage[1]), float(usage[3])
        self.peak_rss_kib = max(self.peak_rss_kib, peak)
        return CliRun(elapsed, lines, peak, cpu)

    def report(self) -> InstanceReport:
        os.environ["DAGSTER_HOME"] = str(self.home)
        from dagster import DagsterEventType, DagsterInstance

        with DagsterInstance.from_config(str(self.home)) as instance:
            records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
            spans = {(DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS): {},
                     (DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_WORKER_STARTED): {}}
            for record in records:
                starts = {}
                for entry in instance.all_logs(record.dagster_run.run_id):
                    event = entry.dagster_event
                    if event is None or not event.step_key:
                        continue
                    for (begin, end), seconds in spans.items():
                        if event.event_type == begin:
                            starts[begin, event.step_key] = entry.timestamp
                        elif event.event_type == end:
                            seconds[event.step_key] = (seconds.get(event.step_key, 0.0) + entry.timestamp
                                                       - starts[begin, event.step_key])
            run_seconds = [(r.end_time or 0.0) - (r.start_time or 0.0) for r in records]
            return InstanceReport(len(records), run_seconds, *spans.values())


@dataclass
class DagsterResult:
    """(a) or (c): wall seconds per stage (and before the first), what the instance recorded, peak RSS."""

    stages: list[float]
    startup: float
    report: InstanceReport
    peak_rss_kib: int
    cpu_s: float
    data: Path

    @property
    def total(self) -> float:
        return self.startup + sum(self.stages)


def checked_report(instance: Instance, stages: int) -> InstanceReport:
    report = instance.report()
    if report.runs != stages:
        raise SystemExit(f"FAILED: {instance.home} recorded {report.runs} runs for {stages} stage commands")
    return report


def through_dagster(root: Path, names: list[str], first: dt.date, days: int) -> tuple[DagsterResult, list[str]]:
    """(a): ``factor-pipeline backfill`` on a fresh instance; also the stage commands it printed."""
    instance = Instance(root, "dagster", names)
    run = instance.run(["factor-pipeline", "backfill", "--start", first.isoformat(), "--days", str(days)])
    marks = [(t, line) for t, line in run.lines if line.startswith(STAGE_LINE)]
    if not marks:
        raise SystemExit("FAILED: factor-pipeline backfill printed no stage command")
    ends = [t for t, _ in marks[1:]] + [run.elapsed]
    stages = [end - t for (t, _), end in zip(marks, ends, strict=True)]
    result = DagsterResult(stages, marks[0][0], checked_report(instance, len(stages)), instance.peak_rss_kib, run.cpu_s,
                           instance.data)
    return result, [line for _, line in marks]


def dagster_floor(root: Path, plan, names: list[str], first: dt.date, last: dt.date, lines_a: list[str]) -> DagsterResult:
    """(c): the backfill's stage commands (checked against what (a) printed) on the no-op graph."""
    expected = [printed(c) for c in stage_commands(plan, names, first, last, REAL_MODULE)]
    if expected != lines_a:
        raise SystemExit("FAILED: the backfill ran other stage commands than the bench derives from its plan:\n  "
                         + "\n  ".join(lines_a) + "\nderived:\n  " + "\n  ".join(expected))
    commands = stage_commands(plan, names, first, last, NOOP_MODULE)
    print("(c) runs the backfill's stage commands on the no-op graph:\n  " + "\n  ".join(printed(c) for c in commands),
          flush=True)
    instance = Instance(root, "noop", names)
    runs = [instance.run(command) for command in commands]
    return DagsterResult([r.elapsed for r in runs], 0.0, checked_report(instance, len(runs)), instance.peak_rss_kib,
                         sum(r.cpu_s for r in runs), instance.data)


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


def differing_columns(a, b) -> str:
    if a.schema.names != b.schema.names:
        return f"columns {a.schema.names} vs {b.schema.names}"
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} vs {b.num_rows} rows"
    return "values of " + ", ".join(n for n in a.schema.names if not a.column(n).equals(b.column(n)))


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
        elif not rel.endswith(".parquet"):
            problems.append(f"differs: {rel}")
        elif (table_a := pq.read_table(files_a[rel])).equals(table_b := pq.read_table(files_b[rel])):
            counts[2] += 1
        else:
            problems.append(f"differs: {rel}: {differing_columns(table_a, table_b)}")
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


def print_stages(plan, a: DagsterResult, b: PlainResult, c: DagsterResult) -> None:
    print("per stage, seconds (wall; 'in run': run start to end as the instance recorded it):")
    print(f"  {'stage':<48} {'(a) wall':>9} {'in run':>7} {'(b) plain':>9} {'(c) wall':>9} {'in run':>7}")
    print(f"  {'factor-pipeline backfill start-up (its plan)':<48} {a.startup:9.1f}")
    for i, (kind, keys) in enumerate(plan):
        print(f"  {stage_label(kind, keys):<48} {a.stages[i]:9.1f} {a.report.run_seconds[i]:7.1f} "
              f"{sum(b.stages[i].values()):9.1f} {c.stages[i]:9.1f} {c.report.run_seconds[i]:7.1f}")
    print(f"  {'total':<48} {a.total:9.1f} {sum(a.report.run_seconds):7.1f} {b.total:9.1f} {c.total:9.1f} "
          f"{sum(c.report.run_seconds):7.1f}")


def print_steps(a: DagsterResult, b: PlainResult, c: DagsterResult) -> None:
    print("per step, seconds: (a), (c) 'step' = STEP_START to STEP_SUCCESS, 'worker' = its process starting "
          "(STEP_WORKER_STARTING to _STARTED, outside the step); (b) the node's function and its outputs, and "
          "its warm-up (first calls in this process, 2 symbols x 2 days):")
    columns = {"(a) step": a.report.steps, "(a) worker": a.report.worker_starts, "(b) plain": b.steps,
               "(b) warm-up": b.warmup_steps, "(c) step": c.report.steps, "(c) worker": c.report.worker_starts}
    print(f"  {'step':<20}" + "".join(f"{name:>12}" for name in columns))
    for step in sorted(set(a.report.steps) | set(b.steps) | set(c.report.steps)):
        print(f"  {step:<20}" + "".join(f"{seconds.get(step, float('nan')):12.2f}" for seconds in columns.values()))


def print_comparison(problems: list[str], per_asset: dict[str, list[int]]) -> None:
    summary = ", ".join(f"{asset} {n}" + (f" ({same} identical, {tables} equal tables)" if same != n else "")
                        for asset, (n, same, tables) in per_asset.items())
    print(f"(a) vs (b) stored outputs, {sum(v[0] for v in per_asset.values())} files and tables in both: {summary}")
    if problems:
        print("!" * 100)
        print(f"MISMATCH: (a) and (b) did not store the same outputs ({len(problems)} problem(s)):")
        for problem in problems[:40]:
            print(f"  {problem}")
        print("!" * 100)
    else:
        print("(a) and (b) stored the same partition files with the same bytes, and the same DuckDB tables: OK")


def memory_bench(root: Path, plan, n_symbols: int, ranges: list[int], first: dt.date) -> dict[str, float]:
    """Peak RSS of the per-symbol stage over each range size (the stages before it run first, unmeasured)."""
    upto = next(i for i, (kind, _) in enumerate(plan) if kind == "per-symbol")
    out = {}
    for i, days in enumerate(ranges):
        instance = Instance(root, f"memory{i}_{days}", symbols(n_symbols))
        commands = stage_commands(plan[:upto + 1], instance.names, first, last_day(first, days), REAL_MODULE)
        run = [instance.run(command) for command in commands][-1]
        print(f"memory: per-symbol layers ({len(plan[upto][1])} assets) over {n_symbols} x {days} = "
              f"{n_symbols * days} partitions in one run: peak RSS {run.peak_rss_kib / 1024:.0f} MiB ({run.elapsed:.0f} s)",
              flush=True)
        out[f"peak_rss_mib_{n_symbols}x{days}"] = run.peak_rss_kib / 1024
    small, large = (out[f"peak_rss_mib_{n_symbols}x{days}"] for days in ranges)
    growth = (large - small) / small
    print(f"memory: {ranges[1]} days vs {ranges[0]}: peak RSS {growth:+.0%} [must not grow with the range, "
          f"within {MEMORY_TOLERANCE:.0%}] {'OK' if growth <= MEMORY_TOLERANCE else 'GROWS'}")
    return {**out, "memory_growth": growth}


def summary_json(plan, args, a: DagsterResult, b: PlainResult, c: DagsterResult, ratio: float, matched: bool) -> dict:
    stages = [{"stage": f"{kind}:{','.join(keys)}", "a_s": a.stages[i], "a_run_s": a.report.run_seconds[i],
               "b_s": sum(b.stages[i].values()), "c_s": c.stages[i], "c_run_s": c.report.run_seconds[i]}
              for i, (kind, keys) in enumerate(plan)]
    return {
        "symbols": args.symbols, "days": args.days, "start": args.start.isoformat(),
        "a_s": a.total, "b_s": b.total, "c_s": c.total, "ratio": ratio,
        "a_cpu_s": a.cpu_s, "b_cpu_s": b.cpu_s, "c_cpu_s": c.cpu_s,
        "warmup_s": sum(b.warmup_steps.values()), "runs_a": a.report.runs, "runs_c": c.report.runs,
        "cli_startup_s": a.startup, "stages": stages,
        "steps_a": a.report.steps, "worker_starts_a": a.report.worker_starts, "steps_b": b.steps, "steps_c": c.report.steps,
        "worker_starts_c": c.report.worker_starts, "warmup_steps": b.warmup_steps,
        "peak_rss_mib_a": a.peak_rss_kib / 1024, "peak_rss_mib_c": c.peak_rss_kib / 1024, "outputs_match": matched,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=START, help="first day (default 2024-03-01)")
    parser.add_argument("--memory-symbols", type=int, default=5)
    parser.add_argument("--memory-days", type=int, nargs=2, default=[20, 80])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instances and data roots")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, root: Path) -> int:
    names, first, last = symbols(args.symbols), args.start, last_day(args.start, args.days)
    os.environ.pop("OPENAI_API_KEY", None)  # the offline scorer, as in `make demo` (children get USER_ENV, without it)
    # The tear sheets of a short range draw legends with nothing in them; (a) logs that warning in its steps.
    warnings.filterwarnings("ignore", message="No artists with labels found")
    os.environ.update(pipeline_env(root / "unused_data", names))  # before the code location is imported here
    from bench import noop_graph
    from factor_assets.cli import run_plan

    problems = noop_graph.mismatches()
    if problems:
        raise SystemExit("FAILED: bench/noop_graph.py does not mirror factor_assets.defs:\n  " + "\n  ".join(problems))
    plan = run_plan()
    print(f"{args.symbols} symbols x {args.days} days ({first} .. {last}) = {args.symbols * args.days} (day, symbol) "
          f"partitions; {len(plan)} stages; {os.cpu_count()} cores; data under {root}", flush=True)

    a, lines_a = through_dagster(root, names, first, args.days)
    print(f"(a) factor-pipeline backfill:    {a.total:7.1f} s", flush=True)
    os.sched_setaffinity(0, USER_CPUS[:1])
    b = plain_python(root, plan, names, first, last)
    os.sched_setaffinity(0, USER_CPUS)
    print(f"(b) plain Python, one core:      {b.total:7.1f} s  (CPU {b.cpu_s:.1f} s; untimed warm-up "
          f"{sum(b.warmup_steps.values()):.1f} s; every node called in this process, none through dagster.materialize)",
          flush=True)
    c = dagster_floor(root, plan, names, first, last, lines_a)
    print(f"(c) Dagster floor (no-op graph): {c.total:7.1f} s", flush=True)

    ratio = a.total / (b.total + c.total)
    print(f"ratio a / (b + c) = {a.total:.1f} / ({b.total:.1f} + {c.total:.1f}) = {ratio:.2f}  [target <= 1.3] "
          f"{'OK' if ratio <= 1.3 else 'MISSED'}")
    print(f"CPU seconds, every process (robust to a shared machine): (a) {a.cpu_s:.1f}, (b) {b.cpu_s:.1f}, "
          f"(c) {c.cpu_s:.1f}; a / (b + c) = {a.cpu_s / (b.cpu_s + c.cpu_s):.2f}")
    print_stages(plan, a, b, c)
    print_steps(a, b, c)
    print(f"runs: (a) {a.report.runs}, (c) {c.report.runs}")
    print(f"peak RSS: (a) largest process of the backfill {a.peak_rss_kib / 1024:.0f} MiB, (b) this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, (c) {c.peak_rss_kib / 1024:.0f} MiB")
    mismatches, per_asset = compare_outputs(a.data, b.data)
    print_comparison(mismatches, per_asset)

    result = summary_json(plan, args, a, b, c, ratio, not mismatches)
    if not args.skip_memory:
        result.update(memory_bench(root, plan, args.memory_symbols, args.memory_days, first))
    print(json.dumps(result))
    return 1 if mismatches else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench_backfill_"))
    try:
        return run(args, root)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
