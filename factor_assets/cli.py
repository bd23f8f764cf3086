"""``factor-pipeline``: the few operations Dagster's own CLI does not cover.

* ``factor-pipeline symbols add BTCUSDT ETHUSDT`` registers symbols as dynamic
  partitions of the instance at ``$DAGSTER_HOME`` (validated first; nothing is
  written if one is invalid). ``symbols list`` shows them.
* ``factor-pipeline partition-range --start 2024-01-01 --days 14`` prints the
  ``--partition-range`` argument covering those days x every registered symbol.
* ``factor-pipeline summary`` prints the backtest summary from the warehouse.
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
import math
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
    prange.add_argument("--start", default=settings.get("DEMO_START"))
    prange.add_argument("--days", type=int, default=settings.get_int("DEMO_DAYS"))
    prange.add_argument("--daily", action="store_true", help="days only (for daily-partitioned assets)")
    prange.set_defaults(handler=_cmd_partition_range)

    commands.add_parser("summary", help="print the backtest summary").set_defaults(handler=_cmd_summary)

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
