"""``factor-pipeline``: the few operations Dagster's own CLI does not cover.

* ``factor-pipeline symbols add BTCUSDT ETHUSDT`` registers symbols as dynamic
  partitions of the instance at ``$DAGSTER_HOME`` (validated first; nothing is
  written if one is invalid). ``symbols list`` shows them.
* ``factor-pipeline partition-range --start 2024-01-01 --days 14`` prints the
  ``--partition-range`` argument covering those days x every registered symbol.
* ``factor-pipeline summary`` prints the backtest summary from the warehouse.
* ``factor-pipeline celery-worker`` starts a Celery worker for ``FACTOR_EXECUTOR=celery``
  (``dagster-celery worker start``, with a YAML written from the same settings as the launcher's).

Materialization itself goes through ``dagster asset materialize`` so every run
is recorded in the instance and visible in the UI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from factor_core import settings
from factor_core.schemas import InvalidSymbolError


def _instance():
    from dagster import DagsterInstance

    return DagsterInstance.get()


def _cmd_symbols_add(args: argparse.Namespace) -> int:
    from partitions import register_symbols

    raw = list(args.symbols) + ([settings.get("DEMO_SYMBOLS")] if args.demo else [])
    if not raw:
        print("nothing to add: name symbols or pass --demo", file=sys.stderr)
        return 2
    symbols = [s.strip() for arg in raw for s in arg.split(",")]
    added = register_symbols(_instance(), symbols)
    print(f"registered {len(added)} new symbol(s): {' '.join(added) if added else '(none)'}")
    return 0


def _cmd_symbols_list(_: argparse.Namespace) -> int:
    from partitions import registered_symbols

    for symbol in registered_symbols(_instance()):
        print(symbol)
    return 0


def _cmd_partition_range(args: argparse.Namespace) -> int:
    from partitions import SYMBOLS_PARTITION_NAME

    symbols = _instance().get_dynamic_partitions(SYMBOLS_PARTITION_NAME)  # registration order
    if not symbols:
        print("no symbols registered: run `factor-pipeline symbols add ...` first", file=sys.stderr)
        return 2
    start = dt.date.fromisoformat(args.start)
    end = start + dt.timedelta(days=args.days - 1)
    if args.daily:
        print(f"{start.isoformat()}...{end.isoformat()}")
    else:
        print(f"{start.isoformat()}|{symbols[0]}...{end.isoformat()}|{symbols[-1]}")
    return 0


def _format(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.6g}"


def _cmd_summary(_: argparse.Namespace) -> int:
    from resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(data_root=settings.get("FACTOR_DATA_ROOT"))
    with warehouse.connect(read_only=True) as con:
        summary = con.execute("SELECT metric, value FROM backtest_summary").fetchall()
    print("backtest summary (long-short, hourly rebalancing, after costs)")
    for metric, value in summary:
        if metric in ("start", "end"):
            shown = dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        else:
            shown = _format(value)
        print(f"  {metric:<24} {shown}")
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
    prange.add_argument("--start", default=settings.get("DEMO_START"))
    prange.add_argument("--days", type=int, default=settings.get_int("DEMO_DAYS"))
    prange.add_argument("--daily", action="store_true", help="days only (for daily-partitioned assets)")
    prange.set_defaults(handler=_cmd_partition_range)

    commands.add_parser("summary", help="print the backtest summary").set_defaults(handler=_cmd_summary)

    worker = commands.add_parser(
        "celery-worker",
        help="start a Celery worker for FACTOR_EXECUTOR=celery (same CELERY_* settings and environment as the launcher)",
    )
    worker.add_argument("--name", help="worker name (the host name is appended); default: dagster-<random>")
    worker.add_argument("--concurrency", type=int, help="steps this worker runs at once; default: one per core")
    worker.add_argument("celery_args", nargs=argparse.REMAINDER, help="after --: more `celery worker` options")
    worker.set_defaults(handler=_cmd_celery_worker)
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
