import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetIn, BackfillPolicy, asset, materialize

from partitions import DAY_SYMBOL, previous_days_of_same_symbol, register_symbols
from resources.parquet_io_manager import ParquetIOManager, PartitionDataError, partition_path

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2024-01-01|BTCUSDT",
    "dagster/asset_partition_range_end": "2024-01-04|ETHUSDT",
}


def _value(day: str, symbol: str) -> float:
    return int(day[-2:]) * 100 + SYMBOLS.index(symbol)


@asset(partitions_def=DAY_SYMBOL, backfill_policy=BackfillPolicy.single_run(), io_manager_key="io")
def prices(context) -> pd.DataFrame:
    rows = []
    for key in context.partition_keys:
        day, symbol = key.keys_by_dimension["date"], key.keys_by_dimension["symbol"]
        for hour in range(3):
            rows.append(
                {
                    "ts": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=hour),
                    "value": _value(day, symbol) + hour,
                    "date": day,
                    "symbol": symbol,
                }
            )
    return pd.DataFrame(rows)


@asset(
    partitions_def=DAY_SYMBOL,
    io_manager_key="io",
    ins={
        "prices": AssetIn(
            partition_mapping=previous_days_of_same_symbol(2, include_current=True),
            metadata={"allow_missing_partitions": True},
        )
    },
)
def seen_history(context, prices: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"days_seen": [",".join(sorted(set(prices["date"])))], "symbols_seen": [",".join(sorted(set(prices["symbol"])))]}
    )


@pytest.fixture
def io(data_root: Path) -> ParquetIOManager:
    return ParquetIOManager(root=str(data_root))


@pytest.fixture
def registered(instance):
    register_symbols(instance, SYMBOLS)
    return instance


def test_range_run_writes_one_hive_file_per_partition(io, registered, data_root):
    result = materialize([prices], instance=registered, resources={"io": io}, tags=RANGE_TAGS)
    assert result.success
    for day in DAYS:
        for symbol in SYMBOLS:
            path = data_root / "prices" / f"symbol={symbol}" / f"date={day}" / "part-0.parquet"
            table = pq.read_table(path)
            assert table.column_names == ["ts", "value"]  # partition columns live in the path
            assert table.column("value").to_pylist() == [_value(day, symbol) + h for h in range(3)]
    assert len(result.get_asset_materialization_events()) == 8  # one per partition, from one step


def test_lookback_mapping_loads_previous_days_of_the_same_symbol_only(io, registered):
    materialize([prices], instance=registered, resources={"io": io}, tags=RANGE_TAGS)
    result = materialize(
        [prices.to_source_asset(), seen_history],
        instance=registered,
        resources={"io": io},
        partition_key="2024-01-04|ETHUSDT",
        selection=[seen_history],
    )
    assert result.success
    frame = pq.read_table(partition_path(io.root_path, ["seen_history"], {"date": "2024-01-04", "symbol": "ETHUSDT"})).to_pandas()
    assert frame["days_seen"].item() == "2024-01-02,2024-01-03,2024-01-04"
    assert frame["symbols_seen"].item() == "ETHUSDT"


def test_lookback_before_the_first_day_is_clipped_not_an_error(io, registered):
    materialize([prices], instance=registered, resources={"io": io}, tags=RANGE_TAGS)
    result = materialize(
        [prices.to_source_asset(), seen_history],
        instance=registered,
        resources={"io": io},
        partition_key="2024-01-01|BTCUSDT",
        selection=[seen_history],
    )
    assert result.success
    frame = pq.read_table(partition_path(io.root_path, ["seen_history"], {"date": "2024-01-01", "symbol": "BTCUSDT"})).to_pandas()
    assert frame["days_seen"].item() == "2024-01-01"


def test_missing_required_partition_names_asset_and_partition(io, registered):
    @asset(partitions_def=DAY_SYMBOL, io_manager_key="io")
    def needs_prices(prices: pd.DataFrame) -> pd.DataFrame:
        return prices

    with pytest.raises(PartitionDataError, match=r"2024-01-03.*BTCUSDT.*prices.*has not been materialized"):
        materialize(
            [prices.to_source_asset(), needs_prices],
            instance=registered,
            resources={"io": io},
            partition_key="2024-01-03|BTCUSDT",
            selection=[needs_prices],
        )


def test_rematerializing_replaces_the_partition(io, registered, data_root):
    materialize([prices], instance=registered, resources={"io": io}, partition_key="2024-01-02|BTCUSDT")
    path = data_root / "prices" / "symbol=BTCUSDT" / "date=2024-01-02" / "part-0.parquet"
    first = path.read_bytes()
    materialize([prices], instance=registered, resources={"io": io}, partition_key="2024-01-02|BTCUSDT")
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["part-0.parquet"]


def test_rows_outside_the_run_are_refused_and_nothing_is_written(io, registered, data_root):
    materialize([prices], instance=registered, resources={"io": io}, partition_key="2024-01-02|BTCUSDT")
    path = data_root / "prices" / "symbol=BTCUSDT" / "date=2024-01-02" / "part-0.parquet"
    before = path.read_bytes()

    @asset(name="prices", partitions_def=DAY_SYMBOL, backfill_policy=BackfillPolicy.single_run(), io_manager_key="io")
    def stray_prices() -> pd.DataFrame:
        return pd.DataFrame({"value": [1.0, 2.0], "date": ["2024-01-02", "2024-01-09"], "symbol": ["BTCUSDT", "BTCUSDT"]})

    with pytest.raises(PartitionDataError, match="outside this run"):
        materialize(
            [stray_prices],
            instance=registered,
            resources={"io": io},
            tags={
                "dagster/asset_partition_range_start": "2024-01-01|BTCUSDT",
                "dagster/asset_partition_range_end": "2024-01-02|BTCUSDT",
            },
        )
    assert path.read_bytes() == before
    assert not (data_root / "prices" / "symbol=BTCUSDT" / "date=2024-01-01").exists()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
    from factor_core.atomic_files import write_files_atomically

    target = Path(sys.argv[1])
    table = pa.Table.from_pandas(pd.DataFrame({"value": range(200_000)}))

    def slow_writer(handle):
        pq.write_table(table, handle)   # the new content is half-way to disk...
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)                  # ...when the process is killed

    write_files_atomically([(target, slow_writer)])
    """
)


def test_a_writer_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "asset" / "symbol=BTCUSDT" / "date=2024-01-01" / "part-0.parquet"
    target.parent.mkdir(parents=True)
    pq.write_table(pa.table({"value": [1, 2, 3]}), target)
    old = target.read_bytes()

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdout=subprocess.PIPE,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    try:
        assert proc.stdout.readline().strip() == b"writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert target.read_bytes() == old
    assert pq.read_table(target).column("value").to_pylist() == [1, 2, 3]
    leftovers = [p.name for p in target.parent.iterdir() if p.name != "part-0.parquet"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".part-0.parquet.")  # hidden, not *.parquet
    assert list(target.parent.glob("*.parquet")) == [target]

    # The next writer publishes its file and sweeps the dead writer's temp file.
    from factor_core.atomic_files import write_files_atomically

    write_files_atomically([(target, lambda h: h.write(b"new"))])
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]
