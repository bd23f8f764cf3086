import pyarrow.parquet as pq
from dagster import AssetKey, DagsterInstance

from tests.test_factor_assets.cli_runner import assert_ok, run_cli


def _env(dagster_home, data_root):
    return {"DAGSTER_HOME": str(dagster_home), "FACTOR_DATA_ROOT": str(data_root), "SIM_TRADES_PER_MINUTE": "3"}


def test_symbols_add_refuses_a_bad_symbol_and_registers_nothing(dagster_home, data_root):
    env = _env(dagster_home, data_root)
    result = run_cli(["factor-pipeline", "symbols", "add", "BTCUSDT", "../x"], env=env)
    assert result.returncode == 2
    assert "invalid symbol '../x'" in result.stderr
    assert run_cli(["factor-pipeline", "symbols", "list"], env=env).stdout == ""


def test_materialize_one_partition_with_the_dagster_cli(dagster_home, data_root):
    env = _env(dagster_home, data_root)
    assert "registered 2 new symbol(s): BTCUSDT ETHUSDT" in assert_ok(
        run_cli(["factor-pipeline", "symbols", "add", "BTCUSDT,ETHUSDT"], env=env)
    )
    assert_ok(
        run_cli(
            ["dagster", "asset", "materialize", "-m", "factor_assets", "--select", "raw_klines", "--partition", "2024-01-02|ETHUSDT"],
            env=env,
        )
    )
    table = pq.read_table(data_root / "raw_klines" / "symbol=ETHUSDT" / "date=2024-01-02" / "part-0.parquet")
    assert table.num_rows == 1440
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        events = instance.fetch_materializations(AssetKey("raw_klines"), limit=10).records
    assert [e.partition_key for e in events] == ["2024-01-02|ETHUSDT"]
    metadata = events[0].asset_materialization.metadata
    assert metadata["rows"].value == 1440
    assert metadata["time_min"].value.startswith("2024-01-02 00:00:00")


def test_partition_range_helper_spans_every_registered_symbol(dagster_home, data_root):
    env = _env(dagster_home, data_root)
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", "SOLUSDT"], env=env))
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", "BTCUSDT"], env=env))  # registration order counts
    out = assert_ok(run_cli(["factor-pipeline", "partition-range", "--start", "2024-02-01", "--days", "3"], env=env))
    assert out.strip() == "2024-02-01|SOLUSDT...2024-02-03|BTCUSDT"
    out = assert_ok(run_cli(["factor-pipeline", "partition-range", "--start", "2024-02-01", "--days", "3", "--daily"], env=env))
    assert out.strip() == "2024-02-01...2024-02-03"
