"""A real universe: 200 registered symbols x 730 days of partitions, and what it costs to look at it.

Run:  .venv/bin/python bench/bench_scale.py [--symbols 200] [--days 730] [--filled-days 30] [--year-days 365]
          [--workdir DIR]

``--workdir DIR`` keeps the instance and data tree in DIR (instead of a temporary
folder) and reuses them on the next run with the same shape, so the measurements
can be repeated without the ~25 min build.

Builds a fresh instance whose daily dimension spans ``--days`` days and whose
symbol dimension holds ``--symbols`` symbols (146,000 (day, symbol) partitions
per asset by default), then fills the last ``--filled-days`` days of every
symbol, plus ``--year-days`` days of one symbol, through the per-symbol layers
with the assets' own chunk functions on every core, and records one
materialization per partition and asset in the instance (what a backfill of
that size records; the backfill's own cost is bench_backfill.py's subject).
Then it measures, each against its target:

* the GraphQL partition-status query of ``factor_bars`` through a running
  dagster-webserver (target <= 5 s);
* an automation tick over the whole graph, with one new raw day pending
  (target <= 5 s);
* DuckDB queries through the warehouse views: one symbol x one year, and one
  day x all symbols (target <= 1 s each), with the number of files the views read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
PER_SYMBOL = ["raw_klines", "raw_trades", "raw_book", "raw_funding", "raw_quotes", "liquidity_metrics",
              "liquidity_daily", "factor_bars"]
STATUS_QUERY = """{ assetNodes(assetKeys: [{path: ["factor_bars"]}]) { assetPartitionStatuses {
  ... on MultiPartitionStatuses { primaryDimensionName ranges { primaryDimStartKey primaryDimEndKey
    secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str) -> tuple[float, dict]:
    body = json.dumps({"query": query}).encode()
    started = time.perf_counter()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        payload = json.loads(response.read())
    return time.perf_counter() - started, payload


def fill(store_root: Path, pairs: list[tuple[str, str]], workers: int) -> int:
    """Raw -> liquidity -> factor_bars for ``pairs`` with the assets' chunk functions; returns files written."""
    from factor_assets.chunks import ChunkRunner
    from factor_assets.day_ranges import consecutive_runs, shift_day
    from factor_assets.factors import FactorChunk, factor_chunk
    from factor_assets.liquidity import VPIN_WINDOW_DAYS, LiquidityChunk, liquidity_chunk
    from factor_assets.raw import RawChunk, fetch_chunk
    from factor_core.factors import WARMUP_DAYS
    from factor_core.market_sources import DATASET_ASSETS, SimulatorSource
    from factor_core.partition_store import PartitionedInput, PartitionStore

    store = PartitionStore(store_root)
    by_symbol: dict[str, list[str]] = {}
    for symbol, day in pairs:
        by_symbol.setdefault(symbol, []).append(day)

    def mapped(asset: str, lookback: int) -> PartitionedInput:
        keys = {(shift_day(d, -k), s) for s, d in pairs for k in range(lookback + 1)}
        return PartitionedInput.of(store, asset, [{"date": d, "symbol": s} for d, s in sorted(keys)], allow_missing=True)

    runner = ChunkRunner("fill", workers=workers)
    raw = [RawChunk(SimulatorSource(), store, tuple(DATASET_ASSETS), tuple((s, d) for d in run), False)
           for s, days in by_symbol.items() for run in consecutive_runs(days, 8)]
    staged = [f for r in runner.run(fetch_chunk, raw) for f in r.all_staged()]
    store.publish(staged)
    liquidity_inputs = {"raw_book": mapped("raw_book", 0), "raw_quotes": mapped("raw_quotes", 0),
                        "raw_trades": mapped("raw_trades", 1), "raw_klines": mapped("raw_klines", VPIN_WINDOW_DAYS)}
    liquidity = [LiquidityChunk(store, liquidity_inputs, s, run) for s, days in by_symbol.items()
                 for run in consecutive_runs(days, 16)]
    staged2 = [f for r in runner.run(liquidity_chunk, liquidity) for f in r.all_staged()]
    store.publish(staged2)
    factor_inputs = {"raw_klines": mapped("raw_klines", WARMUP_DAYS), "raw_funding": mapped("raw_funding", 1),
                     "liquidity_metrics": mapped("liquidity_metrics", 0), "liquidity_daily": mapped("liquidity_daily", 1)}
    factors = [FactorChunk(store, factor_inputs, s, run) for s, days in by_symbol.items() for run in consecutive_runs(days, 64)]
    staged3 = [f for r in runner.run(factor_chunk, factors) for f in r.all_staged()]
    store.publish(staged3)
    return len(staged) + len(staged2) + len(staged3)


def automation_ticks(instance, new_partition: str) -> dict[str, tuple[float, float, int]]:
    """Ticks of ``keep_fresh_sensor`` as the daemon's code server runs them, and of Dagster's own conditions on
    the same graph: ``{label: (first tick s, tick s, partitions requested)}``.

    Per variant: a first tick (it stores the initial state of every partition in the cursor, once), a settled
    tick, then ``new_partition`` of every raw asset is re-reported and the measured tick evaluates it. The
    floor: the built-in part of ``keep_fresh`` (without its two custom conditions). ``eager()``, Dagster's default,
    for reference: it looks only at the latest day (it would miss late corrections) and tracks newly missing
    partitions, whose state for every partition it carries in the cursor.
    """
    from dagster import AssetMaterialization, AutomationCondition, build_sensor_context

    from factor_assets.automation import AUTOMATION_SENSOR, keep_fresh
    from factor_assets.definitions import defs

    logging.disable(logging.INFO)  # the sensor logs every asset's result at INFO
    builtin = keep_fresh(per_symbol=False)  # nothing custom: updated since handled, nothing in progress

    def with_condition(condition):
        return defs.map_asset_specs(func=lambda spec: spec.replace_attributes(automation_condition=condition)
                                    if spec.automation_condition is not None else spec)

    def tick(variant, cursor):
        started = time.perf_counter()
        result = AUTOMATION_SENSOR(build_sensor_context(instance=instance, definitions=variant, cursor=cursor))
        return time.perf_counter() - started, result

    variants = {"keep_fresh": defs, "built-in part of keep_fresh": with_condition(builtin),
                "eager()": with_condition(AutomationCondition.eager())}
    out = {}
    for label, variant in variants.items():
        first_tick, result = tick(variant, None)
        _, result = tick(variant, result.cursor)
        for asset in PER_SYMBOL[:5]:
            instance.report_runless_asset_event(AssetMaterialization(asset_key=asset, partition=new_partition))
        seconds, result = tick(variant, result.cursor)
        requested = sum(r.asset_graph_subset.num_partitions_and_non_partitioned_assets if r.asset_graph_subset
                        else len(r.asset_selection or ()) for r in result.run_requests or [])
        out[label] = (first_tick, seconds, requested)
        print(f"  tick {label}: {seconds:.2f} s (first {first_tick:.2f} s), {requested} partition(s) requested", flush=True)
    logging.disable(logging.NOTSET)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--filled-days", type=int, default=30)
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the built instance and data here")
    args = parser.parse_args(argv)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
            return run(args, Path(tmp))
    args.workdir.mkdir(parents=True, exist_ok=True)
    return run(args, args.workdir.resolve())


def run(args: argparse.Namespace, root: Path) -> int:

    shape = {"symbols": args.symbols, "days": args.days, "filled_days": args.filled_days, "year_days": args.year_days}
    built_marker = root / "built.json"
    built = json.loads(built_marker.read_text()) if built_marker.exists() else None
    if built is not None and {k: built[k] for k in shape} != shape:
        raise SystemExit(f"{root} holds a build of another shape ({built}); use another --workdir")
    last = dt.date.fromisoformat(built["last"]) if built else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=args.days - 1)
    home, data = root / "home", root / "data"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    os.environ.update({"DAGSTER_HOME": str(home), "FACTOR_DATA_ROOT": str(data),
                       "FACTOR_PARTITIONS_START": first.isoformat()})
    from dagster import AssetMaterialization, DagsterInstance

    from partitions import register_symbols
    from resources.warehouse import DuckDBWarehouse

    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    filled = [(last - dt.timedelta(days=i)).isoformat() for i in reversed(range(args.filled_days))]
    year = [(last - dt.timedelta(days=i)).isoformat() for i in reversed(range(args.year_days))]
    pairs = sorted({(s, d) for s in symbols for d in filled} | {(symbols[0], d) for d in year})
    print(f"{args.symbols} symbols x {args.days} days = {args.symbols * args.days:,} (day, symbol) partitions per "
          f"asset; {len(pairs):,} of them filled", flush=True)

    if built is None:
        started = time.perf_counter()
        files = fill(data, pairs, args.workers)
        print(f"filled: {files:,} files on {args.workers} worker(s) in {time.perf_counter() - started:.0f} s", flush=True)
        with DagsterInstance.get() as instance:
            register_symbols(instance, symbols)
            started = time.perf_counter()
            for asset in PER_SYMBOL:
                for symbol, day in pairs:
                    instance.report_runless_asset_event(AssetMaterialization(asset_key=asset, partition=f"{day}|{symbol}"))
            print(f"recorded {len(pairs) * len(PER_SYMBOL):,} materializations in {time.perf_counter() - started:.0f} s",
                  flush=True)
        built_marker.write_text(json.dumps({**shape, "last": last.isoformat()}))
    else:
        print(f"reusing the build in {root}", flush=True)

    with DagsterInstance.get() as instance:
        ticks = automation_ticks(instance, f"{last}|{symbols[1]}")

        port = _free_port()
        web = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    _graphql(url, "{ version }")
                    break
                except OSError:
                    time.sleep(1)
            cold, payload = _graphql(url, STATUS_QUERY)
            warm, _ = _graphql(url, STATUS_QUERY)
            assert "errors" not in payload, payload
            ranges = payload["data"]["assetNodes"][0]["assetPartitionStatuses"]["ranges"]
        finally:
            web.terminate()
            web.wait(timeout=60)

        warehouse = DuckDBWarehouse(data_root=str(data))
        with warehouse.connect() as con:
            warehouse.refresh_views(con)
        n_files = sum(1 for _ in (data / "factor_bars").rglob("part-0.parquet"))
        queries = {
            "one symbol x one year": (f"SELECT count(*), avg(close) FROM factor_bars WHERE symbol = '{symbols[0]}' "
                                      f"AND date BETWEEN '{year[0]}' AND '{year[-1]}'"),
            "one day x all symbols": f"SELECT count(*), count(DISTINCT symbol) FROM factor_bars WHERE date = '{last}'",
        }
        timings = {}
        with warehouse.connect(read_only=True) as con:
            for name, sql in queries.items():
                started = time.perf_counter()
                rows = con.execute(sql).fetchall()
                timings[name] = (time.perf_counter() - started, rows[0])

        def verdict(value: float, target: float) -> str:
            return f"[target <= {target:g} s] {'OK' if value <= target else 'MISSED'}"

        print(f"GraphQL partition status of factor_bars: {cold:.2f} s cold, {warm:.2f} s warm "
              f"({len(ranges)} day range(s) returned) {verdict(warm, 5)}")
        for label, (first_tick, tick, requested) in ticks.items():
            target = {"keep_fresh": f" {verdict(tick, 5)}", "eager()": " (Dagster's default condition, for reference: "
                      "it tracks the missing state of every partition)"}.get(label, " (Dagster's floor)")
            print(f"automation tick, {label}: {tick:.2f} s with one new raw partition ({requested} partition(s) "
                  f"requested); first tick {first_tick:.2f} s (once: it records every partition's initial state){target}")
        for name, (seconds, row) in timings.items():
            print(f"DuckDB {name}: {seconds:.3f} s over {n_files:,} factor_bars files -> {row} {verdict(seconds, 1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
