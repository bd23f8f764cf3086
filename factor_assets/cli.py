"""``factor-pipeline``: the few operations Dagster's own CLI does not cover.

* ``factor-pipeline symbols add BTCUSDT ETHUSDT`` registers symbols as dynamic
  partitions of the instance at ``$DAGSTER_HOME`` (validated first; nothing is
  written if one is invalid). ``symbols list`` shows them.
* ``factor-pipeline partition-range --start 2024-01-01 --days 14`` prints the
  ``--partition-range`` argument covering those days x every registered symbol.
* ``factor-pipeline report`` prints the backtest summary from the warehouse as a
  table (percentages, 3 significant digits, dates) and the tear sheets' paths;
  ``factor-pipeline summary`` is an alias.

Materialization itself goes through ``dagster asset materialize`` so every run
is recorded in the instance and visible in the UI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

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

    commands.add_parser("report", help="print the backtest summary table (from the warehouse)").set_defaults(
        handler=_cmd_report)
    commands.add_parser("summary", help="alias of report").set_defaults(handler=_cmd_report)
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
