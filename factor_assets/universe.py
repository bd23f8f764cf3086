"""Universe layer: which symbols exist, when they were listed and delisted, and the sensor that grows the partitions.

``universe_sensor`` (running by default) observes the universe: the universe
file if one is configured, else a fixed list, else the exchange's
``exchangeInfo`` (Binance), the symbols of the landed files (landing) or the
demo symbols (synthetic). It registers every symbol with history as a dynamic
``symbol`` partition and requests a ``symbol_universe`` run whenever the
observation changed. Delisted symbols keep their partitions and history:
nothing is ever removed.

``symbol_universe`` is an input of the cross-sectional layer (point-in-time
membership), and its materializations carry the listing intervals that the
automation conditions and the ingestion schedule read.
"""

import datetime as dt
import hashlib
import json

import pandas as pd
from dagster import (
    AddDynamicPartitionsRequest,
    AssetExecutionContext,
    AssetKey,
    ConfigurableResource,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)

from factor_assets.automation import LISTINGS_METADATA_KEY
from factor_core import landing, universe
from factor_core.binance.rest import fetch_exchange_info_sync
from partitions import SYMBOLS_PARTITION_NAME
from resources.market_data import BinanceMarketData, LandingMarketData, MarketDataResource
from resources.parquet_io_manager import PartitionStoreResource

UNIVERSE_GROUP = "universe"
UNIVERSE_SENSOR_INTERVAL_S = 3600


class UniverseResource(ConfigurableResource):
    """Where the universe comes from (see the module docstring); empty fields fall through to the next source."""

    universe_file: str = ""
    fixed_symbols: str = ""  # comma separated
    quote_asset: str = "USDT"
    demo_symbols: str = "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT"

    def observe(self, market_data: MarketDataResource, today: dt.date) -> dict[str, dict]:
        """``{symbol: {status, base_asset, quote_asset[, listed_on, delisted_on]}}`` as seen now."""
        if self.universe_file:
            return universe.from_file(self.universe_file, today)
        fixed = [s.strip() for s in self.fixed_symbols.split(",") if s.strip()]
        if fixed:
            return universe.from_fixed_list(fixed)
        if isinstance(market_data, BinanceMarketData):
            entries = fetch_exchange_info_sync(api_url=market_data.api_url, max_wait_s=market_data.max_wait_s)
            return universe.from_exchange_info(entries, self.quote_asset or None)
        if isinstance(market_data, LandingMarketData):
            return universe.from_fixed_list(sorted({f.symbol for f in landing.scan(market_data.landing_dir).files}))
        return universe.from_fixed_list(s.strip() for s in self.demo_symbols.split(",") if s.strip())


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@asset(
    group_name=UNIVERSE_GROUP,
    io_manager_key="parquet_io_manager",
    kinds={"parquet"},
    description=(
        "Every symbol ever observed, with status, listing and delisting dates (from the universe file, or as "
        "first observed). Symbols are never dropped, so past cross-sections keep delisted names."
    ),
)
def symbol_universe(
    context: AssetExecutionContext,
    market_data: MarketDataResource,
    universe_source: UniverseResource,
    partition_store: PartitionStoreResource,
) -> pd.DataFrame:
    # The previous version of this same asset is its memory of past listings.
    store = partition_store.store
    previous = store.read("symbol_universe", {}).to_pandas() if store.exists("symbol_universe", {}) else None
    table = universe.update_universe(previous, universe_source.observe(market_data, _today()), _today())
    context.add_output_metadata(
        {
            "symbols": MetadataValue.int(len(table)),
            "trading": MetadataValue.int(int((table["status"] == universe.TRADING).sum())),
            "delisted": MetadataValue.int(int(table["delisted_on"].notna().sum())),
            "table": MetadataValue.md(table.head(50).to_markdown(index=False)),
            # Read by the automation conditions and the schedules: point-in-time membership.
            LISTINGS_METADATA_KEY: MetadataValue.json({s: list(p) for s, p in universe.listings_of(table).items()}),
        }
    )
    return table


def _fingerprint(current: dict[str, dict]) -> str:
    state = {s: [i["status"], i.get("listed_on"), i.get("delisted_on")] for s, i in sorted(current.items())}
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]


@sensor(
    minimum_interval_seconds=UNIVERSE_SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers new symbols as partitions and refreshes symbol_universe when the universe changes.",
)
def universe_sensor(context: SensorEvaluationContext, market_data: MarketDataResource, universe_source: UniverseResource):
    current = universe_source.observe(market_data, _today())
    fingerprint = _fingerprint(current)
    if fingerprint == context.cursor:
        return SkipReason(f"universe unchanged ({len(universe.trading(current))} trading symbols)")
    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
    new = [s for s in universe.with_history(current) if s not in known]
    return SensorResult(
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(SYMBOLS_PARTITION_NAME, new)] if new else [],
        run_requests=[RunRequest(run_key=f"universe-{fingerprint}", asset_selection=[AssetKey("symbol_universe")])],
        cursor=fingerprint,
    )


UNIVERSE_ASSETS = [symbol_universe]
UNIVERSE_SENSORS = [universe_sensor]
