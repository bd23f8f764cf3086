from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetIn, BackfillPolicy, asset, materialize

from partitions import DAILY
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager, sql_identifier

RANGE = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-03",
}


def _daily_asset(value_offset: float, extra_column: bool = False, fail: bool = False):
    @asset(name="daily_table", partitions_def=DAILY, backfill_policy=BackfillPolicy.single_run(), io_manager_key="wh")
    def daily_table(context) -> pd.DataFrame:
        rows = []
        for day in context.partition_keys:
            for hour in range(2):
                row = {"ts": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=hour), "date": day, "x": value_offset + hour}
                if extra_column:
                    row["y"] = 1.5
                rows.append(row)
        if fail:
            rows[-1]["date"] = "2030-01-01"
        return pd.DataFrame(rows)

    return daily_table


@pytest.fixture
def warehouse(data_root: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(data_root=str(data_root), lock_timeout_s=2)


def _table(warehouse: DuckDBWarehouse) -> pd.DataFrame:
    with warehouse.connect(read_only=True) as con:
        return con.execute("SELECT * FROM daily_table ORDER BY ts").fetchdf()


def test_range_store_then_partial_restore_replaces_only_the_run_dates(warehouse, instance):
    resources = {"wh": WarehouseIOManager(warehouse=warehouse)}
    assert materialize([_daily_asset(0.0)], instance=instance, resources=resources, tags=RANGE).success
    assert len(_table(warehouse)) == 6

    assert materialize([_daily_asset(10.0, extra_column=True)], instance=instance, resources=resources, partition_key="2024-01-02").success
    table = _table(warehouse)
    assert len(table) == 6
    by_day = table.groupby(table["date"].astype(str))["x"].sum().to_dict()
    assert by_day == {"2024-01-01": 1.0, "2024-01-02": 21.0, "2024-01-03": 1.0}
    # A column added by newer code joins the table; older rows read it as NULL.
    assert table["y"].notna().sum() == 2


def test_a_failed_store_leaves_previous_rows_in_place(warehouse, instance):
    resources = {"wh": WarehouseIOManager(warehouse=warehouse)}
    materialize([_daily_asset(0.0)], instance=instance, resources=resources, tags=RANGE)
    before = _table(warehouse)
    with pytest.raises(ValueError, match="outside this run"):
        materialize([_daily_asset(5.0, fail=True)], instance=instance, resources=resources, tags=RANGE)
    pd.testing.assert_frame_equal(_table(warehouse), before)


def test_downstream_loads_previous_day_through_the_mapping(warehouse, instance):
    from partitions import previous_days

    @asset(partitions_def=DAILY, io_manager_key="wh", ins={"daily_table": AssetIn(partition_mapping=previous_days(1, include_current=True))})
    def two_days(daily_table: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"days": [",".join(sorted(daily_table["date"].unique()))]})

    resources = {"wh": WarehouseIOManager(warehouse=warehouse)}
    materialize([_daily_asset(0.0)], instance=instance, resources=resources, tags=RANGE)
    assert materialize([_daily_asset(0.0), two_days], instance=instance, resources=resources, partition_key="2024-01-03", selection=[two_days]).success
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT days FROM two_days").fetchone()[0] == "2024-01-02,2024-01-03"


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
