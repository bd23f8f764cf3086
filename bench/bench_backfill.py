"""Whole-graph backfill: through Dagster, as plain Python, and Dagster's own floor, in one run.

Run:  .venv/bin/python bench/bench_backfill.py [--symbols 20] [--days 30] [--memory-symbols 5 --memory-days 20 80]

Over S symbols x D days of the simulator it times

(a) the pipeline through Dagster as a user launches it: ``dagster asset materialize
    --partition-range`` on a fresh temporary SQLite instance, one run for the
    per-symbol layers (raw, liquidity, factor_bars), one for the daily layers, one
    for the summary;
(b) the same pure functions as plain Python in this process, on one core, over
    the same partitions, with the same Parquet and DuckDB writes (the chunk
    functions the assets run, called one after the other, then published);
(c) Dagster's floor: ``bench/noop_graph.py``, the same graph shape, partitions,
    mappings, policies and executor with steps that do nothing, materialized over
    the same keys the same way;

and prints the three times, the ratio a / (b + c) (target <= 1.3), a per-step
breakdown, the number of runs, and the peak RSS of the Dagster runs. Then it
materializes the per-symbol layers over two range sizes (``--memory-days``) and
prints their peak RSS: chunked steps hold one chunk per worker, so it must not
grow with the range.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
START = dt.date(2024, 3, 1)
PER_SYMBOL = "raw_klines,raw_trades,raw_book,raw_funding,raw_quotes,liquidity_metrics,liquidity_daily,factor_bars"
DAILY = "factor_panel,backtest_daily"
SUMMARY = "backtest_summary"
#: Prints the peak RSS (KiB) of every process it waited for, the command's own descendants included.
PEAK_RSS = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
)


def symbols(n: int) -> list[str]:
    return [f"B{i:03d}USDT" for i in range(n)]


class Instance:
    """A fresh DAGSTER_HOME + data root, driven through the command line like a user does."""

    def __init__(self, root: Path, name: str, n_symbols: int):
        self.home, self.data = root / f"{name}_home", root / f"{name}_data"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
        self.env = {**os.environ, "DAGSTER_HOME": str(self.home), "FACTOR_DATA_ROOT": str(self.data),
                    "DEMO_SYMBOLS": ",".join(symbols(n_symbols))}
        self.symbols = symbols(n_symbols)
        self.peak_rss_kib = 0
        self.run_cli(["factor-pipeline", "symbols", "add", *self.symbols])

    def run_cli(self, args: list[str]) -> float:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(BIN / args[0]), *args[1:]], cwd=REPO, env=self.env,
                                capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{(result.stdout + result.stderr)[-4000:]}")
        for line in result.stderr.splitlines():
            if line.startswith("PEAK_RSS_KIB"):
                self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        return elapsed

    def materialize(self, module: list[str], select: str, partition_range: str | None) -> float:
        args = ["dagster", "asset", "materialize", *module, "--select", select]
        if partition_range:
            args += ["--partition-range", partition_range]
        return self.run_cli(args)

    def backfill(self, module: list[str], days: int) -> dict[str, float]:
        first, last = START.isoformat(), (START + dt.timedelta(days=days - 1)).isoformat()
        return {
            "per-symbol layers": self.materialize(module, PER_SYMBOL, f"{first}|{self.symbols[0]}...{last}|{self.symbols[-1]}"),
            "daily layers": self.materialize(module, DAILY, f"{first}...{last}"),
            "summary": self.materialize(module, SUMMARY, None),
        }

    def steps(self) -> tuple[int, dict[str, float]]:
        """(runs, {step: seconds from STEP_START to STEP_SUCCESS}) from the instance's event log."""
        os.environ["DAGSTER_HOME"] = str(self.home)
        from dagster import DagsterEventType, DagsterInstance

        with DagsterInstance.from_config(str(self.home)) as instance:
            runs = instance.get_runs()
            out: dict[str, float] = {}
            for run in runs:
                starts = {}
                for record in instance.all_logs(run.run_id):
                    event = record.dagster_event
                    if event is None or not event.step_key:
                        continue
                    if event.event_type == DagsterEventType.STEP_START:
                        starts[event.step_key] = record.timestamp
                    elif event.event_type == DagsterEventType.STEP_SUCCESS:
                        out[event.step_key] = out.get(event.step_key, 0.0) + record.timestamp - starts[event.step_key]
            return len(runs), out


def plain_python(root: Path, n_symbols: int, days: int) -> dict[str, float]:
    """(b): the assets' chunk functions in this process, one after the other, then the same publishes."""
    os.environ["FACTOR_STEP_WORKERS"] = "1"
    from factor_assets.backtest import BacktestChunk, backtest_chunk
    from factor_assets.cross_section import PanelChunk, panel_chunk
    from factor_assets.factors import FactorChunk, factor_chunk
    from factor_assets.liquidity import VPIN_WINDOW_DAYS, LiquidityChunk, liquidity_chunk
    from factor_assets.raw import RawChunk, fetch_chunk
    from factor_core.backtest import BacktestConfig, summarize
    from factor_core.factors import LIQUIDITY_DAILY_LAG_DAYS, WARMUP_DAYS
    from factor_core.market_sources import DATASET_ASSETS, SimulatorSource
    from factor_core.partition_store import PartitionedInput, PartitionStore
    from resources.warehouse import DuckDBWarehouse

    store = PartitionStore(root / "plain_data")
    names = symbols(n_symbols)
    all_days = [(START + dt.timedelta(days=i)).isoformat() for i in range(days)]

    def per_symbol(asset: str, lookback: int = 0, include_current: bool = True) -> PartitionedInput:
        wanted = set()
        for d in all_days:
            for k in range(lookback + 1):
                if k == 0 and not include_current:
                    continue
                day = (dt.date.fromisoformat(d) - dt.timedelta(days=k)).isoformat()
                if day >= all_days[0]:
                    wanted.add(day)
        return PartitionedInput.of(store, asset, [{"date": d, "symbol": s} for d in sorted(wanted) for s in names],
                                   allow_missing=True)

    # Warm-up, not timed: Numba's compile-or-cache-load of the kernels happens once per process
    # (the Dagster steps pay their own, ~1 s each, inside (a)).
    warm = PartitionStore(root / "warmup")
    warm_day = (START - dt.timedelta(days=40)).isoformat()
    fetch_chunk(RawChunk(SimulatorSource(), warm, tuple(DATASET_ASSETS), (("WARMUSDT", warm_day),), False))

    timings = {}
    t = time.perf_counter()
    staged = []
    source = SimulatorSource()
    for symbol in names:
        for i in range(0, days, 8):
            chunk = RawChunk(source, store, tuple(DATASET_ASSETS), tuple((symbol, d) for d in all_days[i:i + 8]), False)
            staged += fetch_chunk(chunk).all_staged()
    store.publish(staged)
    timings["raw"] = time.perf_counter() - t

    t = time.perf_counter()
    inputs = {"raw_book": per_symbol("raw_book"), "raw_quotes": per_symbol("raw_quotes"),
              "raw_trades": per_symbol("raw_trades", 1), "raw_klines": per_symbol("raw_klines", VPIN_WINDOW_DAYS)}
    staged = []
    for symbol in names:
        for i in range(0, days, 16):
            staged += liquidity_chunk(LiquidityChunk(store, inputs, symbol, tuple(all_days[i:i + 16]))).all_staged()
    store.publish(staged)
    timings["liquidity"] = time.perf_counter() - t

    t = time.perf_counter()
    inputs = {"raw_klines": per_symbol("raw_klines", WARMUP_DAYS), "raw_funding": per_symbol("raw_funding", 1),
              "liquidity_metrics": per_symbol("liquidity_metrics"),
              "liquidity_daily": per_symbol("liquidity_daily", LIQUIDITY_DAILY_LAG_DAYS, include_current=False)}
    staged = []
    for symbol in names:
        staged += factor_chunk(FactorChunk(store, inputs, symbol, tuple(all_days))).all_staged()
    store.publish(staged)
    timings["factor_bars"] = time.perf_counter() - t

    t = time.perf_counter()
    bars = per_symbol("factor_bars")
    staged = panel_chunk(PanelChunk(store, bars, {}, tuple(all_days))).all_staged()
    store.publish(staged)
    panel = PartitionedInput.of(store, "factor_panel", [{"date": d} for d in all_days], allow_missing=True)
    store.publish(backtest_chunk(BacktestChunk(store, panel, BacktestConfig(), tuple(all_days))).all_staged())
    timings["daily layers"] = time.perf_counter() - t

    t = time.perf_counter()
    daily = PartitionedInput.of(store, "backtest_daily", [{"date": d} for d in all_days])
    summary = summarize(daily.frame(daily.dims))
    warehouse = DuckDBWarehouse(data_root=str(store.root))
    with warehouse.connect() as con:
        con.register("incoming", summary)
        con.execute('CREATE OR REPLACE TABLE "backtest_summary" AS SELECT * FROM incoming')
        warehouse.refresh_views(con)
    timings["summary"] = time.perf_counter() - t
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--memory-symbols", type=int, default=5)
    parser.add_argument("--memory-days", type=int, nargs=2, default=[20, 80])
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    s, d = args.symbols, args.days

    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as tmp:
        root = Path(tmp)
        print(f"{s} symbols x {d} days = {s * d} (day, symbol) partitions; {os.cpu_count()} cores", flush=True)

        plain = plain_python(root, s, d)
        b = sum(plain.values())
        print(f"(b) plain Python, one core:        {b:7.1f} s   " + ", ".join(f"{k} {v:.1f}" for k, v in plain.items()), flush=True)

        floor = Instance(root, "noop", s)
        floor_times = floor.backfill(["-f", str(REPO / "bench" / "noop_graph.py")], d)
        c = sum(floor_times.values())
        print(f"(c) Dagster floor (no-op graph):   {c:7.1f} s   " + ", ".join(f"{k} {v:.1f}" for k, v in floor_times.items()), flush=True)

        real = Instance(root, "dagster", s)
        real_times = real.backfill(["-m", "factor_assets"], d)
        a = sum(real_times.values())
        print(f"(a) through Dagster (CLI):         {a:7.1f} s   " + ", ".join(f"{k} {v:.1f}" for k, v in real_times.items()), flush=True)
        ratio = a / (b + c)
        print(f"ratio a / (b + c) = {a:.1f} / ({b:.1f} + {c:.1f}) = {ratio:.2f}  [target <= 1.3] {'OK' if ratio <= 1.3 else 'MISSED'}")

        runs_a, steps_a = real.steps()
        runs_c, steps_c = floor.steps()
        print(f"runs: (a) {runs_a}, (c) {runs_c}")
        print("per step (seconds, STEP_START to STEP_SUCCESS):   (a) pipeline    (c) no-op floor")
        for step in sorted(set(steps_a) | set(steps_c)):
            print(f"  {step:<24} {steps_a.get(step, float('nan')):14.1f} {steps_c.get(step, float('nan')):14.1f}")
        print(f"peak RSS of any process of the Dagster runs: (a) {real.peak_rss_kib / 1024:.0f} MiB, "
              f"(c) {floor.peak_rss_kib / 1024:.0f} MiB")
        result = {"symbols": s, "days": d, "a_s": a, "b_s": b, "c_s": c, "ratio": ratio, "runs": runs_a,
                  "steps_a": steps_a, "steps_c": steps_c, "plain": plain, "peak_rss_mib": real.peak_rss_kib / 1024}

        if not args.skip_memory:
            ms = args.memory_symbols
            for days in args.memory_days:
                memory = Instance(root, f"memory{days}", ms)
                first, last = START.isoformat(), (START + dt.timedelta(days=days - 1)).isoformat()
                elapsed = memory.materialize(["-m", "factor_assets"], PER_SYMBOL,
                                             f"{first}|{memory.symbols[0]}...{last}|{memory.symbols[-1]}")
                print(f"memory: per-symbol layers over {ms} x {days} = {ms * days} partitions in one run: "
                      f"peak RSS {memory.peak_rss_kib / 1024:.0f} MiB ({elapsed:.0f} s)", flush=True)
                result[f"peak_rss_mib_{ms}x{days}"] = memory.peak_rss_kib / 1024
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
