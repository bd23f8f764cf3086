"""Event-driven strategy engine over replayed trades and book snapshots (pure code, no Dagster).

Run strategies over stored partitions::

    from factor_core.partition_store import PartitionStore
    from factor_core.replay import ReplayCatalog, parse_options
    from factor_core.replay.engine import Engine, StrategySpec, stored_events, summary_frame

    request = parse_options('{"symbols":["BTCUSDT"],"from":"2024-01-02","to":"2024-01-03",'
                            '"dataTypes":["trade","book_snapshot_10_0ms"]}')
    specs = [StrategySpec("mm", "simple_market_maker", ("BTCUSDT",))]
    engine = Engine(specs, start_us=request.start_ns // 1000, end_us=request.end_ns // 1000)
    results = engine.run(stored_events(ReplayCatalog(PartitionStore(root)), request))
    print(summary_frame(results))

or over a replay server: ``await engine.run_async(server_events(url, options))``;
both give identical results. Fill model: :mod:`.matching`; accounting:
:mod:`.orders`; what a result holds: :mod:`.results`; example strategies:
:mod:`.examples`; the YAML configuration: :mod:`.config`.
"""

from factor_core.replay.engine import examples  # noqa: F401  (registers the example kinds)
from factor_core.replay.engine.config import DEFAULT_FILE, StrategyRunConfig, load_strategy_config
from factor_core.replay.engine.engine import Engine, StrategyContext
from factor_core.replay.engine.events import BookSnapshot, MessageDecoder, Timer, Trade
from factor_core.replay.engine.feeds import file_events, server_events, stored_events
from factor_core.replay.engine.orders import Fill, Order, OrderError
from factor_core.replay.engine.results import (
    StrategyResult, equity_frame, equity_markdown, equity_png, fills_frame, max_drawdown, summary_frame,
)
from factor_core.replay.engine.strategy import STRATEGY_KINDS, Strategy, StrategyConfigError, StrategySpec, register

__all__ = [
    "BookSnapshot", "DEFAULT_FILE", "Engine", "Fill", "MessageDecoder", "Order", "OrderError", "STRATEGY_KINDS",
    "Strategy", "StrategyConfigError", "StrategyContext", "StrategyResult", "StrategyRunConfig", "StrategySpec",
    "Timer", "Trade", "equity_frame", "equity_markdown", "equity_png", "file_events", "fills_frame",
    "load_strategy_config", "max_drawdown", "register", "server_events", "stored_events", "summary_frame",
]
