"""Tick-level strategy runs: the configured event-driven strategies replayed over each UTC day's ticks.

``tick_strategies`` (one step, daily partitions) reads ``raw_trades`` and
``raw_book`` of the day for every symbol listed that day (point-in-time
universe from ``symbol_universe``), replays them in the replay server's merge
order and runs every configured strategy side by side
(``factor_core.replay.engine``). Each day is an independent session: every
strategy starts flat with its initial cash, and open positions are marked, not
closed, at the end of the day. Three daily Parquet assets, DuckDB views of the
same names:

* ``strategy_runs``: one summary row per strategy (PnL, fees, turnover, max drawdown,
  fill ratio, ...); its materialization shows the day's equity curves as a picture;
* ``strategy_fills``: every fill; ``strategy_equity``: the equity curves (one sample a minute).

Strategies: ``tick_strategies.yaml`` at the repository root, or the run's
config (``strategies`` replaces the file's list). Days run in parallel chunks
(``factor_assets.chunks``), all or nothing.
"""

from dataclasses import dataclass
from typing import Any, Optional

from dagster import AssetExecutionContext, AssetIn, AssetOut, BackfillPolicy, Config, MetadataValue, Output, multi_asset

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, ChunkRunner
from factor_assets.partition_keys import run_days
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_core.replay.catalog import ReplayCatalog
from factor_core.replay.engine import (
    DEFAULT_FILE, Engine, StrategyRunConfig, equity_frame, equity_markdown, equity_png, file_events, fills_frame,
    load_strategy_config, summary_frame,
)
from factor_core.replay.engine.config import spec_from_mapping
from factor_core.replay.options import ReplayRequest, parse_data_type
from factor_core.timeutil import NS_PER_US, day_bounds_ns
from factor_core.universe import Listings, is_listed, listings_of
from partitions import DAILY
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions

TICK_GROUP = "ticks"
OUTPUTS = ("strategy_runs", "strategy_fills", "strategy_equity")


class TickStrategyConfig(Config):
    """One strategy (mirrors ``factor_core.replay.engine.StrategySpec`` field by field)."""

    name: str
    kind: str
    symbols: list[str] = []
    params: dict[str, Any] = {}
    taker_fee_bps: float = 5.0
    maker_fee_bps: float = 2.0
    max_position_usd: Optional[float] = 10_000.0  # noqa: UP045 (Dagster config reads the annotation)
    initial_cash_usd: float = 100_000.0


class StrategyRunsConfig(Config):
    """Which strategies run; empty fields take ``tick_strategies.yaml``'s values."""

    strategies_file: str = ""  # empty = tick_strategies.yaml at the repository root
    strategies: list[TickStrategyConfig] = []  # given = replaces the file's strategies
    book_levels: Optional[int] = None  # noqa: UP045
    equity_interval_s: Optional[int] = None  # noqa: UP045

    def resolve(self) -> StrategyRunConfig:
        base = load_strategy_config(self.strategies_file or DEFAULT_FILE)
        specs = base.strategies
        if self.strategies:
            specs = tuple(spec_from_mapping(s.model_dump(), where="run config") for s in self.strategies)
        return StrategyRunConfig(specs, self.book_levels or base.book_levels,
                                 self.equity_interval_s or base.equity_interval_s)


@dataclass(frozen=True)
class StrategyDayChunk:
    store: PartitionStore
    raw_trades: PartitionedInput
    raw_book: PartitionedInput
    listings: Listings
    config: StrategyRunConfig
    day: str

    @property
    def partitions(self) -> list[str]:
        return [self.day]


def universe_listings(symbol_universe: PartitionedInput) -> Listings:
    """``{symbol: (listed_on, delisted_on)}`` from ``symbol_universe``; {} (every symbol listed) if not materialized."""
    table = symbol_universe.table({})
    return {} if table is None else listings_of(table.to_pandas())


def _listed_symbols(chunk: StrategyDayChunk) -> list[str]:
    mapped = {d["symbol"] for d in chunk.raw_trades.dims if d["date"] == chunk.day}
    return sorted(s for s in mapped if is_listed(chunk.listings, s, chunk.day))


def strategy_day_chunk(chunk: StrategyDayChunk) -> ChunkResult:
    """Every strategy over one day (runs in a worker process); stages the three outputs of the day."""
    listed = _listed_symbols(chunk)
    specs, not_listed = [], {}
    for spec in chunk.config.strategies:
        wanted = spec.symbols or tuple(listed)
        specs.append(spec.with_symbols(tuple(s for s in wanted if s in listed)))
        missing = sorted(set(wanted) - set(listed))
        if missing:
            not_listed[spec.name] = missing
    symbols = sorted({s for spec in specs for s in spec.symbols})
    for symbol in symbols:
        for name, inp in (("raw_trades", chunk.raw_trades), ("raw_book", chunk.raw_book)):
            if not inp.covers({"date": chunk.day, "symbol": symbol}):
                raise ValueError(f"strategy_runs {chunk.day}: {name} {chunk.day}|{symbol} is not among the step's inputs")
    start_ns, end_ns = day_bounds_ns(chunk.day)
    engine = Engine(specs, start_us=start_ns // NS_PER_US, end_us=end_ns // NS_PER_US,
                    equity_interval_us=chunk.config.equity_interval_s * 1_000_000)
    if symbols:
        request = ReplayRequest(tuple(symbols), start_ns, end_ns,
                                tuple(sorted(parse_data_type(t) for t in chunk.config.data_types)))
        plan = ReplayCatalog(chunk.store, registered_symbols=lambda: symbols).plan(request)
        results = engine.run(file_events(plan))
    else:
        results = engine.finish()
    dims = {"date": chunk.day}
    summary, fills, equity = summary_frame(results), fills_frame(results), equity_frame(results)
    staged = {
        "strategy_runs": [chunk.store.stage_frame("strategy_runs", dims, summary)],
        "strategy_fills": [chunk.store.stage_frame("strategy_fills", dims, fills)],
        "strategy_equity": [chunk.store.stage_frame("strategy_equity", dims, equity)],
    }
    shown = summary[["strategy", "pnl_usd", "fees_usd", "turnover_usd", "max_drawdown_usd", "fill_ratio", "fills"]]
    runs_md = {
        "strategies": MetadataValue.int(len(summary)),
        "symbols": MetadataValue.json(symbols),
        "pnl_usd": MetadataValue.json({r.name: round(r.summary["pnl_usd"], 2) for r in results}),
        "summary": MetadataValue.md(shown.to_markdown(index=False, floatfmt=".4g")),
        "equity_curve": MetadataValue.md(equity_markdown(equity_png(results, title=f"{chunk.day}: PnL after fees"))),
    }
    if not_listed:
        runs_md["symbols_not_listed"] = MetadataValue.json(not_listed)
    metadata = {
        "strategy_runs": {chunk.day: runs_md},
        "strategy_fills": {chunk.day: {"rows": MetadataValue.int(len(fills))}},
        "strategy_equity": {chunk.day: {"rows": MetadataValue.int(len(equity))}},
    }
    return ChunkResult(staged=staged, metadata=metadata)


_FRESH = keep_fresh(listed_symbols=["raw_trades", "raw_book"], ignore_updates_of=["symbol_universe"], per_symbol=False)


@multi_asset(
    name="tick_strategies",
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    outs={
        "strategy_runs": AssetOut(
            io_manager_key="parquet_io_manager", group_name=TICK_GROUP, kinds={"parquet", "duckdb"},
            automation_condition=_FRESH,
            description=(
                "Per UTC day and configured event-driven strategy (tick_strategies.yaml): PnL after fees, realized "
                "and unrealized PnL, fees, turnover, max drawdown, fill ratio, over that day's raw_trades and raw_book "
                "(factor_core.replay.engine; each day starts flat). The materialization shows the equity curves."
            ),
        ),
        "strategy_fills": AssetOut(
            io_manager_key="parquet_io_manager", group_name=TICK_GROUP, kinds={"parquet", "duckdb"},
            automation_condition=_FRESH, description="Every fill of every tick strategy that day (price, qty, fee, liquidity).",
        ),
        "strategy_equity": AssetOut(
            io_manager_key="parquet_io_manager", group_name=TICK_GROUP, kinds={"parquet", "duckdb"},
            automation_condition=_FRESH, description="Equity curve of every tick strategy that day, one sample a minute.",
        ),
    },
    ins={
        "raw_trades": AssetIn(),
        "raw_book": AssetIn(),
        "symbol_universe": AssetIn(metadata={"allow_missing_partitions": True}),
    },
)
def tick_strategies(
    context: AssetExecutionContext,
    config: StrategyRunsConfig,
    partition_store: PartitionStoreResource,
    raw_trades: PartitionedInput,
    raw_book: PartitionedInput,
    symbol_universe: PartitionedInput,
):
    run_config = config.resolve()
    listings = universe_listings(symbol_universe)
    chunks = [StrategyDayChunk(partition_store.store, raw_trades, raw_book, listings, run_config, day)
              for day in run_days(context)]
    staged: dict[str, list] = {name: [] for name in OUTPUTS}
    for result in ChunkRunner("strategy_runs").run(strategy_day_chunk, chunks):
        for name in OUTPUTS:
            staged[name].extend(result.staged[name])
            for day, metadata in result.metadata[name].items():
                context.add_asset_metadata(metadata, asset_key=name, partition_key=day)
    for name in OUTPUTS:
        yield Output(StagedPartitions(staged[name]), output_name=name)


STRATEGY_RUN_ASSETS = [tick_strategies]
