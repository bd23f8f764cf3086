"""``factor-pipeline``: the few operations Dagster's own CLI does not cover.

* ``factor-pipeline symbols add BTCUSDT ETHUSDT`` registers symbols as dynamic
  partitions of the instance at ``$DAGSTER_HOME`` (validated first; nothing is
  written if one is invalid). ``symbols list`` shows them.
* ``factor-pipeline partition-range [--start 2024-01-01] [--days 14]`` prints the
  ``--partition-range`` argument covering those days x every registered symbol
  (by default the last ``DEMO_DAYS`` complete UTC days).
* ``factor-pipeline assets --layer per-symbol|daily|summary`` prints the
  ``--select`` argument of one layer (what ``make demo`` materializes).
* ``factor-pipeline check-partition "2024-01-02|BTCUSDT"`` says whether a
  partition key is valid and, if not, which part is wrong and why.
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
    from partitions import SYMBOLS_PARTITION_NAME

    start, end = demo_window(args.start, args.days)
    if args.daily:
        print(f"{start.isoformat()}...{end.isoformat()}")
        return 0
    symbols = _instance().get_dynamic_partitions(SYMBOLS_PARTITION_NAME)  # registration order
    if not symbols:
        print("no symbols registered: run `factor-pipeline symbols add ...` first", file=sys.stderr)
        return 2
    print(f"{start.isoformat()}|{symbols[0]}...{end.isoformat()}|{symbols[-1]}")
    return 0


def layer_assets(layer: str) -> list[str]:
    """The asset keys of one layer of the code location: per-symbol (day x symbol), daily, or summary."""
    from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition

    from factor_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    out = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        kind = ("per-symbol" if isinstance(node.partitions_def, MultiPartitionsDefinition)
                else "daily" if isinstance(node.partitions_def, DailyPartitionsDefinition)
                else "summary" if node.partitions_def is None and key.path[-1] != "symbol_universe" else "universe")
        if kind == layer:
            out.append(key.to_user_string())
    return sorted(out)


def _cmd_assets(args: argparse.Namespace) -> int:
    print(",".join(layer_assets(args.layer)))
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

    assets = commands.add_parser("assets", help="print the --select argument of one layer")
    assets.add_argument("--layer", choices=["universe", "per-symbol", "daily", "summary"], required=True)
    assets.set_defaults(handler=_cmd_assets)

    check = commands.add_parser("check-partition", help="explain what is wrong with a partition key")
    check.add_argument("key", help='e.g. "2024-01-02|BTCUSDT" (day x symbol) or "2024-01-02" (daily)')
    check.set_defaults(handler=_cmd_check_partition)

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
