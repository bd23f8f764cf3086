"""Market-data resources: one small resource per source, behind one interface.

``definitions.py`` binds exactly one of them to the ``market_data`` key,
chosen by ``MARKET_DATA_SOURCE``:

* :class:`SyntheticMarketData` (the default): the deterministic simulator, so
  the demo and the tests run with no network;
* :class:`BinanceMarketData`: the public archive and REST API;
* :class:`LandingMarketData`: files users drop into the landing folder.

Each resource only holds configuration and builds a picklable
``factor_core.market_sources`` source, which is what chunk workers use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from dagster import ConfigurableResource

from factor_core.binance import BinanceUrls
from factor_core.binance.source import BinanceSourceConfig
from factor_core.market_sources import BinanceSource, LandingSource, MarketSource, SimulatorSource
from factor_core.simulator import SimulatorConfig

#: Steps that call the exchange share this concurrency pool (one shared rate limit).
BINANCE_POOL = "binance_api"


class MarketDataResource(ConfigurableResource, ABC):
    """Where raw market data comes from; ``source()`` is what the raw step fetches through."""

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def source(self) -> MarketSource: ...


class SyntheticMarketData(MarketDataResource):
    """The deterministic market simulator (``factor_core.simulator``)."""

    seed: int = 7
    signal_ic: float = 0.0
    trades_per_minute: float = 12.0

    @property
    def name(self) -> str:
        return "synthetic"

    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(seed=self.seed, signal_ic=self.signal_ic, trades_per_minute=self.trades_per_minute)

    def source(self) -> SimulatorSource:
        return SimulatorSource(self.simulator_config())


class BinanceMarketData(MarketDataResource):
    """Binance's public archive for history, its REST API for days not published yet."""

    archive_url: str = "https://data.binance.vision"
    api_url: str = "https://api.binance.com"
    fapi_url: str = "https://fapi.binance.com"
    book_source: Literal["futures_depth", "collector"] = "futures_depth"
    max_wait_s: float = 120.0
    book_interval_s: int = 60
    book_levels: int = 20
    #: Where the live book collector lands snapshots.
    collector_root: str = "./data/_landing"

    @property
    def name(self) -> str:
        return "binance"

    def source_config(self) -> BinanceSourceConfig:
        return BinanceSourceConfig(
            urls=BinanceUrls(self.archive_url, self.api_url, self.fapi_url),
            book_source=self.book_source,
            landing_root=self.collector_root,
            book_interval_s=self.book_interval_s,
            max_wait_s=self.max_wait_s,
        )

    def source(self) -> BinanceSource:
        return BinanceSource(self.source_config())


class LandingMarketData(MarketDataResource):
    """Files users drop into the landing folder (formats: docs/landing.md); ``landing_sensor`` notices them."""

    landing_dir: str = "./data/landing"

    @property
    def name(self) -> str:
        return "landing"

    def source(self) -> LandingSource:
        return LandingSource(self.landing_dir)
