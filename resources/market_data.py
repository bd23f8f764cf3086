"""The market-data interface: one resource, an implementation per source.

``synthetic`` (the default) is the deterministic simulator, so the demo and
the tests run with no network; ``binance`` reads the public archive and REST
API (``factor_core.binance.source``). Every implementation returns frames in
the canonical raw schemas of ``factor_core.schemas`` with a provenance record
(source, URL, checksum) per partition.
"""

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import pyarrow as pa
from dagster import ConfigurableResource

from factor_core import schemas
from factor_core.binance import BinanceUrls
from factor_core.binance.source import BinanceSourceConfig, fetch_partitions
from factor_core.simulator import SimulatorConfig, simulate_day

Dataset = Literal["klines", "trades", "book", "funding"]
DATASETS: dict[str, pa.Schema] = {
    "klines": schemas.KLINES,
    "trades": schemas.TRADES,
    "book": schemas.BOOK,
    "funding": schemas.FUNDING,
}
#: Steps that call the exchange share this concurrency pool (one shared rate limit).
BINANCE_POOL = "binance_api"


@dataclass(frozen=True)
class Partition:
    """One fetched partition: canonical frame plus where it came from."""

    frame: pd.DataFrame
    provenance: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _simulated(symbol: str, day: dt.date, config: SimulatorConfig):
    # The four raw assets of one partition each ask for the same simulated day;
    # within a process it is generated once.
    return simulate_day(symbol, day, config)


class MarketDataSource(ConfigurableResource):
    """Raw market data for (dataset, symbol, day) partitions, from the configured source."""

    source: Literal["synthetic", "binance"] = "synthetic"
    sim_seed: int = 7
    sim_signal_ic: float = 0.0
    sim_trades_per_minute: float = 12.0
    binance_archive_url: str = "https://data.binance.vision"
    binance_api_url: str = "https://api.binance.com"
    binance_fapi_url: str = "https://fapi.binance.com"
    binance_book_source: Literal["futures_depth", "collector"] = "futures_depth"
    binance_max_wait_s: float = 120.0
    book_interval_s: int = 60
    #: Where the live book collector lands snapshots (``<data root>/_landing``).
    landing_root: str = "./data/_landing"

    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(
            seed=self.sim_seed,
            signal_ic=self.sim_signal_ic,
            trades_per_minute=self.sim_trades_per_minute,
        )

    def binance_config(self) -> BinanceSourceConfig:
        return BinanceSourceConfig(
            urls=BinanceUrls(self.binance_archive_url, self.binance_api_url, self.binance_fapi_url),
            book_source=self.binance_book_source,
            landing_root=self.landing_root,
            book_interval_s=self.book_interval_s,
            max_wait_s=self.binance_max_wait_s,
        )

    def fetch_many(self, dataset: Dataset, pairs: list[tuple[str, dt.date]]) -> dict[tuple[str, dt.date], Partition]:
        """Every (symbol, day) of ``pairs``, or an error naming each partition that failed."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
        for symbol, _ in pairs:
            schemas.validate_symbol(symbol)
        if self.source == "synthetic":
            raw = {
                (s, d): (pa.Table.from_pandas(getattr(_simulated(s, d, self.simulator_config()), dataset), preserve_index=False),
                         {"source": "synthetic", "seed": str(self.sim_seed), "checksum_verified": "n/a"})
                for s, d in pairs
            }
        elif self.source == "binance":
            fetched = fetch_partitions(dataset, pairs, self.binance_config())
            raw = {pair: (f.table, f.provenance) for pair, f in fetched.items()}
        else:
            raise ValueError(f"unknown market data source {self.source!r}")
        out = {}
        for (symbol, day), (table, provenance) in raw.items():
            what = f"{dataset} {day.isoformat()}|{symbol} ({self.source})"
            frame = schemas.conform(table, DATASETS[dataset], what=what).to_pandas()
            out[(symbol, day)] = Partition(frame, provenance)
        return out

    def fetch(self, dataset: Dataset, symbol: str, day: dt.date) -> pd.DataFrame:
        """One partition's canonical frame."""
        return self.fetch_many(dataset, [(symbol, day)])[(symbol, day)].frame
