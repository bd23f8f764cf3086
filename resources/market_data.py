"""The market-data interface: one resource, an implementation per source.

``synthetic`` (the default) is the deterministic simulator, so the demo and
the tests run with no network; ``binance`` reads the public archive and REST
API. Every implementation returns frames in the canonical raw schemas of
``factor_core.schemas``, one (dataset, symbol, UTC day) at a time.
"""

import datetime as dt
import functools
from typing import Literal

import pandas as pd
import pyarrow as pa
from dagster import ConfigurableResource

from factor_core import schemas
from factor_core.simulator import SimulatorConfig, simulate_day

Dataset = Literal["klines", "trades", "book", "funding"]
DATASETS: dict[str, pa.Schema] = {
    "klines": schemas.KLINES,
    "trades": schemas.TRADES,
    "book": schemas.BOOK,
    "funding": schemas.FUNDING,
}


@functools.lru_cache(maxsize=8)
def _simulated(symbol: str, day: dt.date, config: SimulatorConfig):
    # The four raw assets of one partition each ask for the same simulated day;
    # within a process it is generated once.
    return simulate_day(symbol, day, config)


class MarketDataSource(ConfigurableResource):
    """Raw market data for one (dataset, symbol, day), from the configured source."""

    source: Literal["synthetic", "binance"] = "synthetic"
    sim_seed: int = 7
    sim_signal_ic: float = 0.0
    sim_trades_per_minute: float = 12.0

    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(
            seed=self.sim_seed,
            signal_ic=self.sim_signal_ic,
            trades_per_minute=self.sim_trades_per_minute,
        )

    def fetch(self, dataset: Dataset, symbol: str, day: dt.date) -> pd.DataFrame:
        schemas.validate_symbol(symbol)
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
        if self.source == "synthetic":
            frame = getattr(_simulated(symbol, day, self.simulator_config()), dataset)
        else:
            raise NotImplementedError(
                "MARKET_DATA_SOURCE=binance is not wired into this build yet; use synthetic"
            )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        what = f"{dataset} {symbol} {day.isoformat()} ({self.source})"
        return schemas.conform(table, DATASETS[dataset], what=what).to_pandas()
