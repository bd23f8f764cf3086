"""A code location for the pool tests: two DuckDB writers that hold the file for a while and say when they ran."""

import os
import time
from pathlib import Path

import pandas as pd
from dagster import Definitions, asset

from resources.warehouse import DUCKDB_POOL, DuckDBWarehouse, WarehouseIOManager

WAREHOUSE = DuckDBWarehouse(data_root=os.environ["FACTOR_DATA_ROOT"], lock_timeout_s=5)
LOG = Path(os.environ["FACTOR_DATA_ROOT"]) / "writers.log"
HOLD_S = 15.0  # longer than a CLI run takes to reach its step, so without the pool the two would overlap


def _write(name: str) -> pd.DataFrame:
    started = time.time()  # the step began: without the pool the second would begin inside the first
    (LOG.parent / f"{name}.started").touch()
    with WAREHOUSE.connect() as con:
        con.execute(f"CREATE OR REPLACE TABLE {name}_probe AS SELECT 1 AS x")
        time.sleep(HOLD_S)
    with LOG.open("a") as handle:
        handle.write(f"{name} {started} {time.time()}\n")
    return pd.DataFrame({"writer": [name]})


@asset(pool=DUCKDB_POOL, io_manager_key="warehouse_io_manager")
def writer_a() -> pd.DataFrame:
    return _write("writer_a")


@asset(pool=DUCKDB_POOL, io_manager_key="warehouse_io_manager")
def writer_b() -> pd.DataFrame:
    return _write("writer_b")


defs = Definitions(assets=[writer_a, writer_b], resources={"warehouse_io_manager": WarehouseIOManager(warehouse=WAREHOUSE)})
