"""The code location: every asset, resource, sensor, schedule and executor of factor-pipeline, assembled here.

Nothing is registered by side effect; this module is what `dagster dev`,
`dagster asset materialize -m factor_assets` and workspace.yaml load. The
environment is read here (through ``factor_core.settings``) and nowhere else
in the Dagster layer: resources receive plain values.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, multiprocess_executor

from factor_assets.automation import AUTOMATION_SENSOR
from factor_assets.backtest import BACKTEST_ASSETS
from factor_assets.collection import book_snapshot_job, build_book_snapshot_sensor
from factor_assets.ingestion import ingestion_triggers
from factor_assets.cross_section import PANEL_ASSETS
from factor_assets.factors import FACTOR_ASSETS
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.raw import build_raw_assets
from factor_assets.strategy_runs import STRATEGY_RUN_ASSETS
from factor_assets.universe import UNIVERSE_ASSETS, UNIVERSE_SENSORS, UniverseResource
from factor_core import settings
from resources.market_data import BinanceMarketData, LandingMarketData, MarketDataResource, SyntheticMarketData
from resources.parquet_io_manager import ParquetIOManager, PartitionStoreResource
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager


def market_data_resource(source: str, data_root: str) -> MarketDataResource:
    if source == "synthetic":
        return SyntheticMarketData(
            seed=settings.get_int("SIM_SEED"),
            signal_ic=settings.get_float("SIM_SIGNAL_IC"),
            trades_per_minute=settings.get_float("SIM_TRADES_PER_MINUTE"),
        )
    if source == "binance":
        return BinanceMarketData(
            archive_url=settings.get("BINANCE_ARCHIVE_URL"),
            api_url=settings.get("BINANCE_API_URL"),
            fapi_url=settings.get("BINANCE_FAPI_URL"),
            book_source=settings.get("BINANCE_BOOK_SOURCE"),
            max_wait_s=settings.get_float("BINANCE_MAX_WAIT_S"),
            book_interval_s=settings.get_int("BOOK_SNAPSHOT_INTERVAL_S"),
            book_levels=settings.get_int("BOOK_SNAPSHOT_LEVELS"),
            collector_root=str(Path(data_root) / "_landing"),
        )
    if source == "landing":
        return LandingMarketData(landing_dir=settings.landing_dir())
    raise ValueError(f"MARKET_DATA_SOURCE={source!r}: expected one of synthetic, binance, landing")


def build_resources(source: str) -> dict:
    data_root = settings.get("FACTOR_DATA_ROOT")
    warehouse = DuckDBWarehouse(data_root=data_root)
    partition_store = PartitionStoreResource(root=data_root)
    return {
        "partition_store": partition_store,
        "parquet_io_manager": ParquetIOManager(partitions=partition_store),
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "warehouse": warehouse,
        "market_data": market_data_resource(source, data_root),
        "universe_source": UniverseResource(
            universe_file=settings.get("UNIVERSE_FILE"),
            fixed_symbols=settings.get("UNIVERSE_SYMBOLS"),
            quote_asset=settings.get("UNIVERSE_QUOTE_ASSET"),
            demo_symbols=settings.get("DEMO_SYMBOLS"),
        ),
    }


# Step processes are forked from a server that has already imported the code
# location (Numba kernels included), which halves per-step start-up on small machines.
EXECUTOR = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["factor_assets"]}}},
    name="preloaded_multiprocess",
)

SOURCE = settings.get("MARKET_DATA_SOURCE")
INGESTION_SENSORS, INGESTION_SCHEDULES = ingestion_triggers(SOURCE)
COLLECTING = SOURCE == "binance" and settings.get("BINANCE_BOOK_SOURCE") == "collector"

defs = Definitions(
    assets=[*UNIVERSE_ASSETS, build_raw_assets(SOURCE), *LIQUIDITY_ASSETS, *FACTOR_ASSETS, *PANEL_ASSETS, *BACKTEST_ASSETS,
            *STRATEGY_RUN_ASSETS],
    jobs=[book_snapshot_job],
    resources=build_resources(SOURCE),
    sensors=[
        AUTOMATION_SENSOR,
        *UNIVERSE_SENSORS,
        *INGESTION_SENSORS,
        build_book_snapshot_sensor(COLLECTING, settings.get_int("BOOK_SNAPSHOT_INTERVAL_S")),
    ],
    schedules=INGESTION_SCHEDULES,
    executor=EXECUTOR,
)
