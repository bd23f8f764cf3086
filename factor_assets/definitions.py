"""The code location: every asset, resource and executor of factor-pipeline, assembled here.

Nothing is registered by side effect; this module is what `dagster dev`,
`dagster asset materialize -m factor_assets` and workspace.yaml load.
"""

from __future__ import annotations

from dagster import Definitions, multiprocess_executor

from factor_assets.backtest import BACKTEST_ASSETS
from factor_assets.cross_section import PANEL_ASSETS
from factor_assets.factors import FACTOR_ASSETS
from factor_assets.raw import RAW_ASSETS
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
        ),
    }


# Step processes are forked from a server that has already imported the code
# location (Numba kernels included), which halves per-step start-up on small machines.
EXECUTOR = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["factor_assets"]}}},
    name="preloaded_multiprocess",
)

defs = Definitions(
    assets=[*RAW_ASSETS, *FACTOR_ASSETS, *PANEL_ASSETS, *BACKTEST_ASSETS],
    resources=build_resources(),
    executor=EXECUTOR,
)
