"""``factor-pipeline``: the few operations Dagster's own CLI does not cover.

* ``factor-pipeline symbols add BTCUSDT ETHUSDT`` registers symbols as dynamic
  partitions of the instance at ``$DAGSTER_HOME`` (validated first; nothing is
  written if one is invalid). ``symbols list`` shows them.
* ``factor-pipeline partition-range [--start 2024-01-01] [--days 14]`` prints the
  ``--partition-range`` argument covering those days x every registered symbol
  (by default the last ``DEMO_DAYS`` complete UTC days).
* ``factor-pipeline backfill [--start ...] [--days N]`` materializes every asset
  over the window through ``dagster asset materialize``, one recorded run per
  stage of the graph (``factor-pipeline assets`` prints the stages).
* ``factor-pipeline check-partition "2024-01-02|BTCUSDT"`` says whether a
  partition key is valid and, if not, which part is wrong and why.
* ``factor-pipeline report`` prints the backtest summary from the warehouse as a
  table (percentages, 3 significant digits, dates) and the tear sheets' paths;
  ``factor-pipeline summary`` is an alias.
* ``factor-pipeline celery-worker`` starts a Celery worker for ``FACTOR_EXECUTOR=celery``
  (``dagster-celery worker start``, with a YAML written from the same settings as the launcher's).
* ``factor-pipeline replay serve --host 127.0.0.1 --port 8000`` serves the stored
  ``raw_trades`` / ``raw_book`` partitions with tardis-machine's replay API
  (docs/replay.md): HTTP and WebSocket on ``--port``, and, as tardis-machine
  does, on ``--ws-port`` (default ``--port`` + 1; 0 = not at all).

Materialization itself goes through ``dagster asset materialize`` so every run
is recorded in the instance and visible in the UI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from factor_core import settings
from factor_core.schemas import SYMBOL_PATTERN, InvalidSymbolError


class UsageError(ValueError):
    """A flag or argument the user must correct; the message names it."""


def _instance():
    from dagster import DagsterInstance

    return DagsterInstance.get()


def last_complete_day(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date() - dt.timedelta(days=1)


def demo_window(start: str, days: int, *, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The first and last day of ``days`` days from ``start`` (ISO, or empty for the last complete days), checked."""
    from partitions import PARTITIONS_START_DATE

    last_allowed = (today - dt.timedelta(days=1)) if today else last_complete_day()
    if days < 1:
        raise UsageError(f"--days {days}: give a number of days of at least 1")
    if start:
        try:
            first = dt.date.fromisoformat(start)
        except ValueError as exc:
            raise UsageError(f"--start {start!r} is not a calendar day in YYYY-MM-DD form ({exc})") from exc
    else:
        first = last_allowed - dt.timedelta(days=days - 1)
    end = first + dt.timedelta(days=days - 1)
    if first < PARTITIONS_START_DATE:
        raise UsageError(f"--start {first} is before the first partition day {PARTITIONS_START_DATE} "
                         "(FACTOR_PARTITIONS_START); choose a later start")
    if end > last_allowed:
        raise UsageError(f"--start {first} --days {days} ends on {end}, after the last complete UTC day "
                         f"{last_allowed}; a day becomes a partition once it has ended")
    return first, end


def _cmd_symbols_add(args: argparse.Namespace) -> int:
    from partitions import register_symbols

    raw = list(args.symbols) + ([settings.get("DEMO_SYMBOLS")] if args.demo else [])
    if not raw:
        print("nothing to add: name symbols or pass --demo", file=sys.stderr)
        return 2
    symbols = [s.strip() for arg in raw for s in arg.split(",") if s.strip()]
    added = register_symbols(_instance(), symbols)
    print(f"registered {len(added)} new symbol(s): {' '.join(added) if added else '(none)'}")
    return 0


def _cmd_symbols_list(_: argparse.Namespace) -> int:
    from partitions import SYMBOLS_PARTITION_NAME

    for symbol in _instance().get_dynamic_partitions(SYMBOLS_PARTITION_NAME):  # registration order
        print(symbol)
    return 0


def _cmd_partition_range(args: argparse.Namespace) -> int:
    from partitions import SYMBOLS_PARTITION_NAME, partition_ranges

    start, end = demo_window(args.start, args.days)
    if args.daily:
        print(partition_ranges(start, end)["daily"])
        return 0
    symbols = _instance().get_dynamic_partitions(SYMBOLS_PARTITION_NAME)  # registration order
    if not symbols:
        print("no symbols registered: run `factor-pipeline symbols add ...` first", file=sys.stderr)
        return 2
    print(partition_ranges(start, end, symbols)["per-symbol"])
    return 0


def _kind(partitions_def) -> str:
    from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition

    if isinstance(partitions_def, MultiPartitionsDefinition):
        return "per-symbol"
    if isinstance(partitions_def, DailyPartitionsDefinition):
        return "daily"
    return "unpartitioned"


def run_plan() -> list[tuple[str, list[str]]]:
    """The whole graph as a few runs in dependency order: ``[(kind, asset keys)]``, one kind of partitions each.

    A run may hold only assets of one partitioning (a ``--partition-range`` is of one
    kind), so the graph is cut where the partitioning changes: the universe first, then
    each stage takes every asset of one kind whose upstream assets are done (daily before
    per-symbol when both can go, so the news comes before the sentiment that reads it),
    and the unpartitioned summaries once nothing partitioned is left to run.
    """
    from factor_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    nodes = {k: graph.get(k) for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    done: set = set()
    plan: list[tuple[str, list[str]]] = []
    order = ["unpartitioned", "daily", "per-symbol"]
    while len(done) < len(nodes):
        ready = {k: n for k, n in nodes.items() if k not in done and all(p in done or p == k or p not in nodes
                                                                         for p in n.parent_keys)}
        if not ready:
            raise RuntimeError(f"the asset graph has a cycle among {sorted(k.to_user_string() for k in nodes if k not in done)}")
        kinds = {_kind(n.partitions_def) for n in ready.values()}
        # Unpartitioned assets only once nothing partitioned can go first (the universe excepted: it feeds the rest).
        universe_first = {k for k, n in ready.items() if _kind(n.partitions_def) == "unpartitioned" and not n.parent_keys}
        if universe_first and not plan:
            stage_kind, stage = "unpartitioned", universe_first
        else:
            stage_kind = next(k for k in order[1:] + order[:1] if k in kinds) if kinds - {"unpartitioned"} else "unpartitioned"
            stage = set()
            frontier = {k for k, n in ready.items() if _kind(n.partitions_def) == stage_kind}
            while frontier:  # grow the stage with same-kind assets that depend only on done + stage
                stage |= frontier
                frontier = {k for k, n in nodes.items() if k not in done and k not in stage
                            and _kind(n.partitions_def) == stage_kind
                            and all(p in done or p in stage or p == k or p not in nodes for p in n.parent_keys)}
        plan.append((stage_kind, sorted(k.to_user_string() for k in stage)))
        done |= stage
    return plan


def _cmd_assets(args: argparse.Namespace) -> int:
    for kind, keys in run_plan():
        print(f"{kind}:{','.join(keys)}")
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    """Every asset over the window, through ``dagster asset materialize``: one recorded run per stage."""
    from partitions import SYMBOLS_PARTITION_NAME, partition_ranges

    start, end = demo_window(args.start, args.days)
    symbols = _instance().get_dynamic_partitions(SYMBOLS_PARTITION_NAME)  # registration order
    if not symbols:
        print("no symbols registered: run `factor-pipeline symbols add ...` first", file=sys.stderr)
        return 2
    ranges = partition_ranges(start, end, symbols)
    dagster = str(Path(sys.executable).with_name("dagster"))
    for kind, keys in run_plan():
        command = [dagster, "asset", "materialize", "-m", "factor_assets", "--select", ",".join(keys)]
        if kind in ranges:
            command += ["--partition-range", ranges[kind]]
        print("+ " + " ".join(shlex.quote(c) for c in ["dagster", *command[1:]]), flush=True)
        if subprocess.run(command, env=os.environ.copy()).returncode != 0:
            print(f"factor-pipeline: error: the {kind} run of {', '.join(keys)} failed; see its logs above or in the UI",
                  file=sys.stderr)
            return 1
    return 0


def explain_partition_key(key: str, registered: list[str], *, today: dt.date | None = None) -> list[str]:
    """Every problem with a ``DATE|SYMBOL`` (or ``DATE``) partition key; empty when it is valid."""
    from partitions import PARTITIONS_START_DATE

    last = (today - dt.timedelta(days=1)) if today else last_complete_day()
    parts = key.split("|")
    if len(parts) > 2 or not key:
        return [f"{key!r} is not a partition key: use DATE|SYMBOL (e.g. 2024-01-02|BTCUSDT) or DATE for daily assets"]
    problems = []
    day_text = parts[0]
    try:
        day = dt.date.fromisoformat(day_text)
    except ValueError:
        hint = " (did you put the symbol first? the date comes first)" if SYMBOL_PATTERN.fullmatch(day_text) else ""
        problems.append(f"date part {day_text!r} is not a calendar day in YYYY-MM-DD form{hint}")
    else:
        if day < PARTITIONS_START_DATE:
            problems.append(f"date part {day} is before the first partition day {PARTITIONS_START_DATE} (FACTOR_PARTITIONS_START)")
        elif day > last:
            problems.append(f"date part {day} is not a partition yet: the last complete UTC day is {last}")
    if len(parts) == 2:
        symbol = parts[1]
        if not SYMBOL_PATTERN.fullmatch(symbol):
            problems.append(f"symbol part {symbol!r} does not match {SYMBOL_PATTERN.pattern} (2-30 upper-case letters or digits)")
        elif symbol not in registered:
            problems.append(f"symbol part {symbol!r} is not registered: `factor-pipeline symbols add {symbol}` "
                            f"(registered: {', '.join(registered[:10]) or 'none'})")
    return problems


def _cmd_check_partition(args: argparse.Namespace) -> int:
    from partitions import SYMBOLS_PARTITION_NAME

    registered = list(_instance().get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
    problems = explain_partition_key(args.key, registered)
    if problems:
        for problem in problems:
            print(f"{args.key}: {problem}", file=sys.stderr)
        return 2
    print(f"{args.key}: a valid partition key")
    return 0


def _cmd_report(_: argparse.Namespace) -> int:
    from factor_assets.tearsheets import REPORT_PAGES, report_path
    from factor_core.research.report import format_summary_table
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(data_root=settings.get("FACTOR_DATA_ROOT"))
    with warehouse.connect(read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        summary = con.execute("SELECT * FROM backtest_summary").fetchdf() if "backtest_summary" in tables else None
    print("backtest summary (each strategy after fees, half-spreads and funding; daily net returns)")
    print(format_summary_table(summary))
    for page in REPORT_PAGES:
        path = report_path(warehouse.root_path, page)
        if path.exists():
            print(f"tear sheet: {path}")
    return 0


def _cmd_warehouse_schemas(args: argparse.Namespace) -> int:
    from factor_core.partition_store import UNRECORDED, PartitionStore
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(data_root=settings.get("FACTOR_DATA_ROOT"))
    store = PartitionStore(warehouse.root_path)
    stored = warehouse.parquet_assets()
    assets = args.assets or stored
    unknown = sorted(set(assets) - set(stored))
    if unknown:
        print(f"no stored partitions for {', '.join(unknown)} under {warehouse.root_path}", file=sys.stderr)
        return 2
    for asset in assets:
        fingerprints = store.rescan_schemas(asset) if args.rescan else store.stored_schemas(asset)
        view = "fast (one schema)" if store.has_one_schema(asset) else "union_by_name (reads every footer)"
        known = [f for f in fingerprints if f != UNRECORDED]
        older = " and files of older versions (unrecorded)" if UNRECORDED in fingerprints else ""
        print(f"{asset:<22} {len(known)} schema(s) {'in use' if args.rescan else 'recorded'}{older}; view: {view}")
    return 0


def _cmd_celery_worker(args: argparse.Namespace) -> int:
    import yaml

    from factor_assets.celery_executor import worker_config

    config = worker_config(settings.config_source("CELERY_BROKER_URL"), settings.config_source("CELERY_BACKEND_URL"))
    bin_dir = Path(sys.executable).parent  # dagster-celery runs `celery`, which must be on PATH
    with tempfile.TemporaryDirectory(prefix="factor-celery-") as tmp:
        config_yaml = Path(tmp) / "celery.yaml"
        config_yaml.write_text(yaml.safe_dump(config))
        command = [str(bin_dir / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config_yaml)]
        if args.name:
            command += ["-n", args.name]
        celery_args = [a for a in args.celery_args if a != "--"]
        if args.concurrency:
            celery_args = ["--concurrency", str(args.concurrency), *celery_args]
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        return subprocess.call([*command, "--", *celery_args], env=env)


def _registered_symbols():
    """The instance's symbol partitions, read per request; None (= symbols with stored partitions) without DAGSTER_HOME."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return None
    from partitions import registered_symbols

    instance = _instance()
    return lambda: registered_symbols(instance)


def _cmd_replay_serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    from pathlib import Path

    from factor_core.partition_store import PartitionStore
    from factor_core.replay import ReplayCatalog, serve_forever

    root = Path(settings.get("FACTOR_DATA_ROOT")).expanduser().resolve()
    catalog = ReplayCatalog(PartitionStore(root), registered_symbols=_registered_symbols(), exchange=args.exchange)
    ws_port = args.port + 1 if args.ws_port is None else args.ws_port
    ports = (args.port,) if ws_port == 0 or args.port == 0 else (args.port, ws_port)

    def ready(bound: list[int]) -> None:
        urls = ", ".join(f"http://{args.host}:{p}" for p in bound)
        print(f"replaying {root} ({args.exchange}) on {urls}: /replay-normalized, /ws-replay-normalized", flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly on SIGTERM as on Ctrl-C
    try:
        asyncio.run(serve_forever(catalog, args.host, ports, workers=args.workers, on_ready=ready))
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="factor-pipeline", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    symbols = commands.add_parser("symbols", help="manage the dynamic symbol partitions")
    symbol_commands = symbols.add_subparsers(dest="symbols_command", required=True)
    add = symbol_commands.add_parser("add", help="register symbols (space or comma separated)")
    add.add_argument("symbols", nargs="*")
    add.add_argument("--demo", action="store_true", help="also add the DEMO_SYMBOLS universe")
    add.set_defaults(handler=_cmd_symbols_add)
    symbol_commands.add_parser("list", help="list registered symbols").set_defaults(handler=_cmd_symbols_list)

    prange = commands.add_parser("partition-range", help="print a --partition-range argument")
    prange.add_argument("--start", default=settings.get("DEMO_START"),
                        help="first day, YYYY-MM-DD (default: DEMO_START, or the last --days complete UTC days)")
    prange.add_argument("--days", type=int, default=settings.get_int("DEMO_DAYS"))
    prange.add_argument("--daily", action="store_true", help="days only (for daily-partitioned assets)")
    prange.set_defaults(handler=_cmd_partition_range)

    commands.add_parser("assets", help="print the graph as runs in dependency order (kind:selection)").set_defaults(
        handler=_cmd_assets)

    backfill = commands.add_parser("backfill", help="materialize every asset over a window, one run per stage")
    backfill.add_argument("--start", default=settings.get("DEMO_START"),
                          help="first day, YYYY-MM-DD (default: DEMO_START, or the last --days complete UTC days)")
    backfill.add_argument("--days", type=int, default=settings.get_int("DEMO_DAYS"))
    backfill.set_defaults(handler=_cmd_backfill)

    check = commands.add_parser("check-partition", help="explain what is wrong with a partition key")
    check.add_argument("key", help='e.g. "2024-01-02|BTCUSDT" (day x symbol) or "2024-01-02" (daily)')
    check.set_defaults(handler=_cmd_check_partition)

    commands.add_parser("report", help="print the backtest summary table (from the warehouse)").set_defaults(
        handler=_cmd_report)
    commands.add_parser("summary", help="alias of report").set_defaults(handler=_cmd_report)

    warehouse = commands.add_parser("warehouse", help="the DuckDB views over the Parquet tree")
    warehouse_commands = warehouse.add_subparsers(dest="warehouse_command", required=True)
    schemas = warehouse_commands.add_parser(
        "schemas", help="how many schemas each asset's files have (one: its view reads a single footer)")
    schemas.add_argument("assets", nargs="*", help="asset names (default: every stored asset)")
    schemas.add_argument("--rescan", action="store_true", help="read every footer and record exactly the schemas in "
                         "use (after an upgrade, or for a tree written by an older version; run while nothing writes)")
    schemas.set_defaults(handler=_cmd_warehouse_schemas)

    worker = commands.add_parser(
        "celery-worker",
        help="start a Celery worker for FACTOR_EXECUTOR=celery (same CELERY_* settings and environment as the launcher)",
    )
    worker.add_argument("--name", help="worker name (the host name is appended); default: dagster-<random>")
    worker.add_argument("--concurrency", type=int, help="steps this worker runs at once; default: one per core")
    worker.add_argument("celery_args", nargs=argparse.REMAINDER, help="after --: more `celery worker` options")
    worker.set_defaults(handler=_cmd_celery_worker)

    replay = commands.add_parser("replay", help="tick replay of stored trades and books (tardis-machine API)")
    replay_commands = replay.add_subparsers(dest="replay_command", required=True)
    serve = replay_commands.add_parser("serve", help="serve /replay-normalized and /ws-replay-normalized")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--ws-port", type=int, default=None, help="second port, as tardis-machine's WebSocket port "
                       "(default --port + 1; 0 = none)")
    serve.add_argument("--exchange", default="binance", help="exchange name in messages (default binance)")
    serve.add_argument("--workers", type=int, default=2, help="reader threads shared by all clients")
    serve.set_defaults(handler=_cmd_replay_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (InvalidSymbolError, ValueError, FileNotFoundError) as exc:
        print(f"factor-pipeline: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
