import datetime as dt

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance

from factor_assets.cli import UsageError, demo_window, explain_partition_key
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


TODAY = dt.date(2026, 12, 1)  # a pinned clock: the last complete UTC day is 2026-11-30


@pytest.mark.parametrize(
    ("start", "days", "message"),
    [
        ("", 0, "--days 0: give a number of days of at least 1"),
        ("", -3, "--days -3: give a number of days of at least 1"),
        ("2023-12-01", 3, "--start 2023-12-01 is before the first partition day 2024-01-01"),
        ("2024-02-30", 3, "--start '2024-02-30' is not a calendar day in YYYY-MM-DD form"),
        ("2026-11-30", 2, "--start 2026-11-30 --days 2 ends on 2026-12-01, after the last complete UTC day 2026-11-30"),
    ],
)
def test_the_range_flags_are_checked_and_the_message_names_the_flag(start, days, message):
    with pytest.raises(UsageError) as raised:
        demo_window(start, days, today=TODAY)
    assert message in str(raised.value)


def test_without_a_start_the_window_is_the_last_complete_days():
    assert demo_window("", 14, today=TODAY) == (dt.date(2026, 11, 17), dt.date(2026, 11, 30))


def test_a_bad_flag_exits_2_with_the_message_and_prints_no_range(dagster_home, data_root):
    result = run_cli(["factor-pipeline", "partition-range", "--days", "0"], env=_env(dagster_home, data_root))
    assert result.returncode == 2 and result.stdout == ""
    assert "--days 0: give a number of days of at least 1" in result.stderr


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("2024-02-30|BTCUSDT", "date part '2024-02-30' is not a calendar day"),
        ("BTCUSDT|2024-01-02", "(did you put the symbol first? the date comes first)"),
        ("2024-01-02|btcusdt", "symbol part 'btcusdt' does not match"),
        ("2024-01-02|DOGEUSDT", "symbol part 'DOGEUSDT' is not registered: `factor-pipeline symbols add DOGEUSDT`"),
        ("2023-06-01|BTCUSDT", "is before the first partition day 2024-01-01"),
        ("2026-12-01|BTCUSDT", "is not a partition yet: the last complete UTC day is 2026-11-30"),
        ("2024-01-02|BTCUSDT|X", "is not a partition key: use DATE|SYMBOL"),
    ],
)
def test_a_partition_key_is_explained_part_by_part(key, message):
    problems = explain_partition_key(key, ["BTCUSDT"], today=TODAY)
    assert any(message in p for p in problems), problems
    assert explain_partition_key("2024-01-02|BTCUSDT", ["BTCUSDT"], today=TODAY) == []


def test_check_partition_reports_through_the_command_line(dagster_home, data_root):
    env = _env(dagster_home, data_root)
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", "BTCUSDT"], env=env))
    result = run_cli(["factor-pipeline", "check-partition", "2024-01-02|DOGEUSDT"], env=env)
    assert result.returncode == 2 and "symbol part 'DOGEUSDT' is not registered" in result.stderr
    assert "a valid partition key" in assert_ok(run_cli(["factor-pipeline", "check-partition", "2024-01-02|BTCUSDT"], env=env))


def test_a_reversed_range_fails_with_a_message_naming_the_range(dagster_home, data_root):
    env = _env(dagster_home, data_root)
    assert_ok(run_cli(["factor-pipeline", "symbols", "add", "BTCUSDT", "ETHUSDT"], env=env))
    result = run_cli(["dagster", "asset", "materialize", "-m", "factor_assets", "--select", "raw_klines",
                      "--partition-range", "2024-01-04|BTCUSDT...2024-01-02|ETHUSDT"], env=env)
    assert result.returncode != 0
    assert "the partition range 2024-01-04|BTCUSDT...2024-01-02|ETHUSDT selects no partition" in result.stdout + result.stderr
    assert not (data_root / "raw_klines").exists()
