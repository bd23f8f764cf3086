"""The code location: every asset, resource, sensor, schedule and executor of factor-pipeline, assembled here.

Nothing is registered by side effect; this module is what `dagster dev`,
`dagster asset materialize -m factor_assets` and workspace.yaml load.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, multiprocess_executor

from factor_assets.backtest import BACKTEST_ASSETS
from factor_assets.cross_section import PANEL_ASSETS
from factor_assets.factors import FACTOR_ASSETS
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.collection import COLLECTION_SCHEDULES, COLLECTION_SENSORS
from factor_assets.raw import RAW_ASSETS
from factor_assets.universe import UNIVERSE_ASSETS, UNIVERSE_SENSORS
from factor_core import settings
from resources.market_data import MarketDataSource
from resources.parquet_io_manager import ParquetIOManager
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager


def build_resources() -> dict:
    data_root = settings.get("FACTOR_DATA_ROOT")
    warehouse = DuckDBWarehouse(data_root=data_root)
    return {
        "parquet_io_manager": ParquetIOManager(root=data_root),
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "warehouse": warehouse,
        "market_data": MarketDataSource(
            source=settings.get("MARKET_DATA_SOURCE"),
            sim_seed=settings.get_int("SIM_SEED"),
            sim_signal_ic=settings.get_float("SIM_SIGNAL_IC"),
            sim_trades_per_minute=settings.get_float("SIM_TRADES_PER_MINUTE"),
            binance_archive_url=settings.get("BINANCE_ARCHIVE_URL"),
            binance_api_url=settings.get("BINANCE_API_URL"),
            binance_fapi_url=settings.get("BINANCE_FAPI_URL"),
            binance_book_source=settings.get("BINANCE_BOOK_SOURCE"),
            binance_max_wait_s=settings.get_float("BINANCE_MAX_WAIT_S"),
            book_interval_s=settings.get_int("BOOK_SNAPSHOT_INTERVAL_S"),
            landing_root=str(Path(data_root) / "_landing"),
        ),
    }


# Step processes are forked from a server that has already imported the code
# location (Numba kernels included), which halves per-step start-up on small machines.
EXECUTOR = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["factor_assets"]}}},
    name="preloaded_multiprocess",
)

defs = Definitions(
    assets=[*UNIVERSE_ASSETS, *RAW_ASSETS, *LIQUIDITY_ASSETS, *FACTOR_ASSETS, *PANEL_ASSETS, *BACKTEST_ASSETS],
    resources=build_resources(),
    sensors=[*UNIVERSE_SENSORS, *COLLECTION_SENSORS],
    schedules=COLLECTION_SCHEDULES,
    executor=EXECUTOR,
)
