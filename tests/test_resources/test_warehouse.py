from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import asset, materialize

from partitions import DAILY
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager, sql_identifier

def _summary_asset(values, name="summary_table"):
    @asset(name=name, io_manager_key="wh")
    def summary_table() -> pd.DataFrame:
        if values is None:
            return pd.DataFrame()  # DuckDB refuses a frame without columns
        return pd.DataFrame({"metric": [f"m{i}" for i in range(len(values))], "value": values})

    return summary_table


@pytest.fixture
def warehouse(data_root: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(data_root=str(data_root), lock_timeout_s=2)


def _table(warehouse: DuckDBWarehouse) -> pd.DataFrame:
    with warehouse.connect(read_only=True) as con:
        return con.execute("SELECT * FROM summary_table ORDER BY metric").fetchdf()


def test_an_unpartitioned_table_is_replaced_whole(warehouse, instance):
    resources = {"wh": WarehouseIOManager(warehouse=warehouse)}
    assert materialize([_summary_asset([1.0, 2.0, 3.0])], instance=instance, resources=resources).success
    assert materialize([_summary_asset([5.0])], instance=instance, resources=resources).success
    assert _table(warehouse).to_dict("list") == {"metric": ["m0"], "value": [5.0]}


def test_a_failed_store_leaves_the_previous_table_in_place(warehouse, instance):
    resources = {"wh": WarehouseIOManager(warehouse=warehouse)}
    materialize([_summary_asset([1.0, 2.0])], instance=instance, resources=resources)
    before = _table(warehouse)
    with pytest.raises(duckdb.InvalidInputException):
        materialize([_summary_asset(None)], instance=instance, resources=resources)
    pd.testing.assert_frame_equal(_table(warehouse), before)


def test_partitioned_assets_are_refused_by_the_warehouse(warehouse, instance):
    @asset(partitions_def=DAILY, io_manager_key="wh")
    def daily_table() -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    with pytest.raises(ValueError, match="stores unpartitioned tables only"):
        materialize([daily_table], instance=instance, resources={"wh": WarehouseIOManager(warehouse=warehouse)},
                    partition_key="2024-01-02")


def test_views_expose_the_parquet_tree_with_hive_columns(warehouse, data_root):
    for symbol in ("BTCUSDT", "ETHUSDT"):
        path = data_root / "raw_klines" / f"symbol={symbol}" / "date=2024-01-01" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table({"close": [1.0, 2.0]}), path)
    frame = warehouse.query("SELECT symbol, count(*) AS n, sum(close) AS s FROM raw_klines GROUP BY ALL ORDER BY symbol")
    assert frame.to_dict("list") == {"symbol": ["BTCUSDT", "ETHUSDT"], "n": [2, 2], "s": [3.0, 3.0]}


def test_a_locked_file_is_retried_then_fails_with_the_lock_error(warehouse, tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)", str(warehouse.database_path)],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(duckdb.IOException, match="lock"):
            with warehouse.connect():
                pass
    finally:
        holder.kill()
        holder.wait()
    with warehouse.connect() as con:  # released: opens at once
        assert con.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("name", ["raw_klines; DROP TABLE x", "Upper", "a-b", ""])
def test_table_names_are_checked_before_reaching_sql(name):
    with pytest.raises(ValueError, match="not a valid warehouse table name"):
        sql_identifier(name)
