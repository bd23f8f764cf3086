"""Dagster's own floor for bench_backfill.py: the pipeline's graph shape with steps that do nothing.

Same partitions definitions, the same multi-assets (raw: five outputs;
liquidity: two), the same partition mappings and single-run backfill
policies as ``factor_assets``, and the same preloaded multiprocess executor;
every step returns at once and writes nothing. Materializing it over the same
keys costs what Dagster costs: run and step start-up, planning, and one event
per partition of every asset.
"""

from dagster import (
    AssetDep,
    AssetSpec,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    asset,
    multi_asset,
    multiprocess_executor,
)

from factor_core.factors import LIQUIDITY_DAILY_LAG_DAYS, WARMUP_DAYS
from partitions import DAILY, DAY_SYMBOL, previous_days, previous_days_of_same_symbol

SINGLE = BackfillPolicy.single_run()
RAW = ["raw_klines", "raw_trades", "raw_book", "raw_funding", "raw_quotes"]


@multi_asset(specs=[AssetSpec(name, partitions_def=DAY_SYMBOL) for name in RAW], backfill_policy=SINGLE, can_subset=True)
def raw_market_data(context):
    for key in context.selected_asset_keys:
        yield MaterializeResult(asset_key=key)


_LIQUIDITY_DEPS = [
    AssetDep("raw_book"),
    AssetDep("raw_quotes"),
    AssetDep("raw_trades", partition_mapping=previous_days_of_same_symbol(1, include_current=True)),
    AssetDep("raw_klines", partition_mapping=previous_days_of_same_symbol(6, include_current=True)),
]


@multi_asset(
    specs=[AssetSpec(name, partitions_def=DAY_SYMBOL, deps=_LIQUIDITY_DEPS) for name in ("liquidity_metrics", "liquidity_daily")],
    backfill_policy=SINGLE,
)
def liquidity(context):
    for key in context.selected_asset_keys:
        yield MaterializeResult(asset_key=key)


@asset(
    partitions_def=DAY_SYMBOL,
    backfill_policy=SINGLE,
    deps=[
        AssetDep("raw_klines", partition_mapping=previous_days_of_same_symbol(WARMUP_DAYS, include_current=True)),
        AssetDep("raw_funding", partition_mapping=previous_days_of_same_symbol(1, include_current=True)),
        AssetDep("liquidity_metrics"),
        AssetDep("liquidity_daily", partition_mapping=previous_days_of_same_symbol(LIQUIDITY_DAILY_LAG_DAYS, include_current=False)),
    ],
)
def factor_bars() -> None:
    return None


@asset(partitions_def=DAILY, backfill_policy=SINGLE, deps=["factor_bars", "symbol_universe"])
def factor_panel() -> None:
    return None


@asset(partitions_def=DAILY, backfill_policy=SINGLE,
       deps=[AssetDep("factor_panel", partition_mapping=previous_days(1, include_current=True))])
def backtest_daily() -> None:
    return None


@asset(deps=["backtest_daily"])
def backtest_summary() -> None:
    return None


@asset
def symbol_universe() -> None:
    return None


defs = Definitions(
    assets=[symbol_universe, raw_market_data, liquidity, factor_bars, factor_panel, backtest_daily, backtest_summary],
    executor=multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": ["bench.noop_graph"]}}}, name="preloaded_multiprocess"
    ),
)
