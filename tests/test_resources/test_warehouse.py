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


def _write_by_hand(data_root: Path, symbol: str, day: str, table: pa.Table) -> None:
    """A raw_klines file written without the store (as an older version, or another tool, would): nothing recorded."""
    path = data_root / "raw_klines" / f"symbol={symbol}" / f"date={day}" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)


def test_views_expose_the_parquet_tree_with_hive_columns(warehouse, data_root):
    for symbol in ("BTCUSDT", "ETHUSDT"):
        _write_by_hand(data_root, symbol, "2024-01-01", pa.table({"close": [1.0, 2.0]}))
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


def _stage_klines(data_root: Path, days: list[str], columns: dict) -> None:
    from factor_core.partition_store import PartitionStore

    store = PartitionStore(data_root)
    store.publish([store.stage("raw_klines", {"date": day, "symbol": "BTCUSDT"}, pa.table(columns)) for day in days])


def _view_definition(warehouse: DuckDBWarehouse, name: str) -> str:
    with warehouse.connect() as con:
        warehouse.refresh_views(con)
        return con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0]


def test_an_asset_whose_files_share_one_schema_gets_a_view_that_reads_one_footer(warehouse, data_root):
    _stage_klines(data_root, ["2024-01-01", "2024-01-02", "2024-01-03"], {"close": [1.0, 2.0]})
    assert "union_by_name" not in _view_definition(warehouse, "raw_klines")
    frame = warehouse.query("SELECT CAST(date AS VARCHAR) AS date, sum(close) AS s FROM raw_klines GROUP BY ALL ORDER BY date")
    assert frame.to_dict("list") == {"date": ["2024-01-01", "2024-01-02", "2024-01-03"], "s": [3.0, 3.0, 3.0]}


def test_a_schema_change_between_versions_is_reconciled_by_name_until_a_rescan_finds_one_schema(warehouse, data_root):
    from factor_core.partition_store import PartitionStore

    _stage_klines(data_root, ["2024-01-01", "2024-01-02"], {"close": [1.0, 2.0]})
    _stage_klines(data_root, ["2024-01-03"], {"close": [3.0], "volume": [7.0]})  # a newer version adds a column
    assert "union_by_name" in _view_definition(warehouse, "raw_klines")
    frame = warehouse.query("SELECT date, close, volume FROM raw_klines ORDER BY date")
    assert frame["volume"].isna().tolist() == [True, True, True, True, False]

    _stage_klines(data_root, ["2024-01-01", "2024-01-02"], {"close": [1.0], "volume": [5.0]})  # history rewritten
    store = PartitionStore(data_root)
    assert len(store.stored_schemas("raw_klines")) == 2  # the old schema is still recorded: slower, never wrong
    assert len(store.rescan_schemas("raw_klines")) == 1
    assert "union_by_name" not in _view_definition(warehouse, "raw_klines")
    assert warehouse.query("SELECT sum(volume) AS v FROM raw_klines")["v"].tolist() == [17.0]


def test_a_tree_without_recorded_schemas_is_read_with_union_by_name_and_the_cli_rescan_records_them(
        warehouse, data_root, monkeypatch, capsys):
    from factor_assets.cli import main

    for symbol in ("BTCUSDT", "ETHUSDT"):
        _write_by_hand(data_root, symbol, "2024-01-01", pa.table({"close": [1.0, 2.0]}))
    assert "union_by_name" in _view_definition(warehouse, "raw_klines")
    monkeypatch.setenv("FACTOR_DATA_ROOT", str(data_root))
    assert main(["warehouse", "schemas"]) == 0
    assert "raw_klines             0 schema(s) recorded; view: union_by_name" in capsys.readouterr().out
    assert main(["warehouse", "schemas", "--rescan"]) == 0
    assert "raw_klines             1 schema(s) in use; view: fast (one schema)" in capsys.readouterr().out
    assert "union_by_name" not in _view_definition(warehouse, "raw_klines")
    assert main(["warehouse", "schemas", "no_such_asset"]) == 2
    assert "no stored partitions for no_such_asset" in capsys.readouterr().err


def test_files_from_before_schemas_were_recorded_keep_union_by_name_after_new_writes_until_a_rescan(warehouse, data_root):
    from factor_core.partition_store import UNRECORDED, PartitionStore

    _write_by_hand(data_root, "BTCUSDT", "2024-01-01", pa.table({"close": [1.0]}))  # an older version's: a column fewer
    _stage_klines(data_root, ["2024-01-02"], {"close": [2.0], "volume": [7.0]})  # the upgraded version writes
    assert UNRECORDED in PartitionStore(data_root).stored_schemas("raw_klines")
    assert "union_by_name" in _view_definition(warehouse, "raw_klines")
    assert warehouse.query("SELECT count(*) AS n, sum(volume) AS v FROM raw_klines").to_dict("list") == {
        "n": [2], "v": [7.0]}
    assert len(PartitionStore(data_root).rescan_schemas("raw_klines")) == 2  # both schemas really are in use
    assert UNRECORDED not in PartitionStore(data_root).stored_schemas("raw_klines")
    assert "union_by_name" in _view_definition(warehouse, "raw_klines")
