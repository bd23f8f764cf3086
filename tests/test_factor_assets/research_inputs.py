"""Inputs and runs of the research layer through Dagster.

The per-symbol layers upstream of the research layer are expensive through Dagster
(the raw simulator at full detail, liquidity, factors), and the research tests need
many symbols. So the tests store ``factor_bars`` and ``raw_funding`` partitions made
by the same pure functions their assets call (``simulate_day`` at cheap settings,
``minute_liquidity``, ``compute_factor_bars``), then materialize the research assets
through Dagster over them. ``planted_signal`` is materialized by its own asset, from
the same simulator configuration.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetKey, AssetSpec, BackfillPolicy, asset, materialize

from factor_assets.factors import factor_bars
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.raw import build_raw_assets
from factor_assets.research_layer import research_assets
from factor_assets.universe import UNIVERSE_ASSETS
from factor_core.factors import compute_factor_bars
from factor_core.liquidity import minute_liquidity
from factor_core.partition_store import PartitionStore
from factor_core.simulator import SimulatorConfig, simulate_day
from partitions import DAY_SYMBOL
from resources.market_data import SyntheticMarketData

SEED = 11
#: Stands in for the sentiment layer where a test runs the research layer without it.
SENTIMENT_HOURLY = AssetSpec("sentiment_hourly", partitions_def=DAY_SYMBOL)
DAILY_STEP = ["hourly_closes", "factor_panel", "factor_ic", "factor_correlation", "backtest_daily", "backtest_hourly"]
SUMMARY_STEP = ["factor_report", "factor_correlation_overall", "backtest_summary", "rebalance_signals"]


def symbols(n: int) -> list[str]:
    return [f"S{i:02d}USDT" for i in range(n)]


def days(start: str, n: int) -> list[str]:
    first = dt.date.fromisoformat(start)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(n)]


def simulator_config(signal_ic: float) -> SimulatorConfig:
    """Cheap settings (one trade a minute, one book snapshot an hour); the planted signal depends on the seed only."""
    return SimulatorConfig(seed=SEED, signal_ic=signal_ic, trades_per_minute=1.0, book_interval_s=3600, book_levels=1)


def market_data(signal_ic: float) -> SyntheticMarketData:
    return SyntheticMarketData(seed=SEED, signal_ic=signal_ic, trades_per_minute=1.0)


def store_factor_inputs(root: Path, syms: list[str], day_list: list[str], *, signal_ic: float = 0.0,
                        only: dict[str, list[str]] | None = None) -> None:
    """Store factor_bars and raw_funding of ``syms`` x ``day_list`` (``only``: symbol -> its days)."""
    config = simulator_config(signal_ic)
    store = PartitionStore(Path(root))
    staged = []
    for symbol in syms:
        simulated = [simulate_day(symbol, dt.date.fromisoformat(d), config) for d in day_list]
        minutes = pd.concat([s.klines for s in simulated], ignore_index=True)
        funding = pd.concat([s.funding for s in simulated], ignore_index=True)
        liquidity = pd.concat([minute_liquidity(s.book, s.trades, s.klines) for s in simulated], ignore_index=True)
        bars = compute_factor_bars(minutes, funding=funding, liquidity=liquidity)
        for day, sim in zip(day_list, simulated, strict=True):
            if only is not None and day not in only.get(symbol, day_list):
                continue
            dims = {"date": day, "symbol": symbol}
            staged.append(store.stage_frame("factor_bars", dims, bars[bars["ts"].dt.strftime("%Y-%m-%d") == day]))
            staged.append(store.stage_frame("raw_funding", dims, sim.funding))
    store.publish(staged)


@asset(name="sentiment_hourly", partitions_def=DAY_SYMBOL, io_manager_key="parquet_io_manager",
       backfill_policy=BackfillPolicy.single_run())
def test_sentiment_hourly(context) -> None:
    """Test-only stand-in for the sentiment layer's asset; tests write its partitions themselves."""


def all_assets(sentiment=None) -> list:
    return [build_raw_assets("synthetic"), *LIQUIDITY_ASSETS, factor_bars, *UNIVERSE_ASSETS,
            sentiment if sentiment is not None else SENTIMENT_HOURLY, *research_assets("synthetic")]


def _range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def run_planted(instance, resources, syms: list[str], day_list: list[str]):
    return materialize(all_assets(), instance=instance, resources=resources, selection=["planted_signal"],
                       tags=_range_tags(f"{day_list[0]}|{syms[0]}", f"{day_list[-1]}|{syms[-1]}"))


def run_daily(instance, resources, day_list: list[str], selection=DAILY_STEP, run_config=None, sentiment=None,
              raise_on_error: bool = True):
    return materialize(all_assets(sentiment), instance=instance, resources=resources, selection=list(selection),
                       tags=_range_tags(day_list[0], day_list[-1]), run_config=run_config,
                       raise_on_error=raise_on_error)


def run_summary(instance, resources, selection=SUMMARY_STEP, run_config=None):
    return materialize(all_assets(), instance=instance, resources=resources, selection=list(selection),
                       run_config=run_config)


def read_daily(root: Path, asset_name: str, day_list: list[str] | None = None) -> pd.DataFrame:
    """Stored partitions of a daily asset read back with pyarrow (not through the IO manager)."""
    base = Path(root) / asset_name
    paths = sorted(base.glob("date=*/part-0.parquet")) if day_list is None else \
        [base / f"date={d}" / "part-0.parquet" for d in day_list]
    frames = [pq.read_table(p).to_pandas().assign(date=p.parent.name.removeprefix("date=")) for p in paths]
    return pd.concat(frames, ignore_index=True)


def materialized(instance, asset_name: str) -> set[str]:
    return set(instance.get_materialized_partitions(AssetKey(asset_name)))
