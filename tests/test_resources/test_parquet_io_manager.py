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

from factor_core.partition_store import PartitionedInput, PartitionFileError, PartitionStore, partition_path
from partitions import DAY_SYMBOL, partition_dimensions, previous_days_of_same_symbol, register_symbols
from resources.parquet_io_manager import ParquetIOManager, PartitionStoreResource, StagedPartitions

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2024-01-01|BTCUSDT",
    "dagster/asset_partition_range_end": "2024-01-04|ETHUSDT",
}


def _value(day: str, symbol: str) -> float:
    return int(day[-2:]) * 100 + SYMBOLS.index(symbol)


def _frame(day: str, symbol: str) -> pd.DataFrame:
    return pd.DataFrame({"ts": [pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=h) for h in range(3)],
                         "value": [float(_value(day, symbol) + h) for h in range(3)]})


@asset(partitions_def=DAY_SYMBOL, backfill_policy=BackfillPolicy.single_run(), io_manager_key="io")
def prices(context, store: PartitionStoreResource) -> StagedPartitions:
    staged = []
    for key in context.partition_keys:
        dims = partition_dimensions(DAY_SYMBOL, key)
        staged.append(store.store.stage_frame("prices", dims, _frame(dims["date"], dims["symbol"])))
    return StagedPartitions(staged)


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
def seen_history(context, prices: PartitionedInput) -> pd.DataFrame:
    frame = prices.frame(prices.dims)
    return pd.DataFrame(
        {"days_seen": [",".join(sorted(set(frame["date"])))], "symbols_seen": [",".join(sorted(set(frame["symbol"])))],
         "mapped": [",".join(prices.days_of())]}
    )


@pytest.fixture
def resources(data_root: Path) -> dict:
    store = PartitionStoreResource(root=str(data_root))
    return {"io": ParquetIOManager(partitions=store), "store": store}


@pytest.fixture
def registered(instance):
    register_symbols(instance, SYMBOLS)
    return instance


def _history(resources, registered, data_root, key):
    result = materialize([prices.to_source_asset(), seen_history], instance=registered, resources=resources,
                         partition_key=key, selection=[seen_history])
    assert result.success
    day, symbol = key.split("|")
    return pq.read_table(partition_path(data_root, "seen_history", {"date": day, "symbol": symbol})).to_pandas()


def test_range_run_publishes_one_hive_file_per_partition(resources, registered, data_root):
    result = materialize([prices], instance=registered, resources=resources, tags=RANGE_TAGS)
    assert result.success
    for day in DAYS:
        for symbol in SYMBOLS:
            table = pq.read_table(data_root / "prices" / f"symbol={symbol}" / f"date={day}" / "part-0.parquet")
            assert table.column_names == ["ts", "value"]  # partition columns live in the path
            assert table.column("value").to_pylist() == [_value(day, symbol) + h for h in range(3)]
    assert len(result.get_asset_materialization_events()) == 8  # one per partition, from one step


def test_lookback_mapping_gives_previous_days_of_the_same_symbol_only(resources, registered, data_root):
    materialize([prices], instance=registered, resources=resources, tags=RANGE_TAGS)
    frame = _history(resources, registered, data_root, "2024-01-04|ETHUSDT")
    assert frame["days_seen"].item() == "2024-01-02,2024-01-03,2024-01-04"
    assert frame["symbols_seen"].item() == "ETHUSDT"


def test_lookback_before_the_first_day_is_clipped_not_an_error(resources, registered, data_root):
    materialize([prices], instance=registered, resources=resources, tags=RANGE_TAGS)
    frame = _history(resources, registered, data_root, "2024-01-01|BTCUSDT")
    assert frame["days_seen"].item() == "2024-01-01"


def test_missing_history_partitions_are_skipped_when_allowed(resources, registered, data_root):
    materialize([prices], instance=registered, resources=resources, partition_key="2024-01-04|BTCUSDT")
    frame = _history(resources, registered, data_root, "2024-01-04|BTCUSDT")
    assert frame["mapped"].item() == "2024-01-02,2024-01-03,2024-01-04"  # what the mapping selected...
    assert frame["days_seen"].item() == "2024-01-04"  # ...and what exists


def test_missing_required_partition_names_asset_partition_and_the_command(resources, registered):
    @asset(partitions_def=DAY_SYMBOL, io_manager_key="io")
    def needs_prices(prices: PartitionedInput) -> pd.DataFrame:
        return prices.frame(prices.dims)

    with pytest.raises(PartitionFileError, match=r"prices partition 2024-01-03\|BTCUSDT has not been materialized.*"
                                                 r'dagster asset materialize -m factor_assets --select prices --partition "2024-01-03\|BTCUSDT"'):
        materialize([prices.to_source_asset(), needs_prices], instance=registered, resources=resources,
                    partition_key="2024-01-03|BTCUSDT", selection=[needs_prices])


def test_rematerializing_replaces_the_partition(resources, registered, data_root):
    materialize([prices], instance=registered, resources=resources, partition_key="2024-01-02|BTCUSDT")
    path = data_root / "prices" / "symbol=BTCUSDT" / "date=2024-01-02" / "part-0.parquet"
    first = path.read_bytes()
    materialize([prices], instance=registered, resources=resources, partition_key="2024-01-02|BTCUSDT")
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["part-0.parquet"]


def test_staged_files_that_do_not_match_the_run_are_discarded_and_nothing_is_published(resources, registered, data_root):
    materialize([prices], instance=registered, resources=resources, partition_key="2024-01-02|BTCUSDT")
    path = data_root / "prices" / "symbol=BTCUSDT" / "date=2024-01-02" / "part-0.parquet"
    before = path.read_bytes()

    @asset(name="prices", partitions_def=DAY_SYMBOL, backfill_policy=BackfillPolicy.single_run(), io_manager_key="io")
    def stray_prices(store: PartitionStoreResource) -> StagedPartitions:
        return StagedPartitions([
            store.store.stage_frame("prices", {"date": "2024-01-02", "symbol": "BTCUSDT"}, _frame("2024-01-05", "BTCUSDT")),
            store.store.stage_frame("prices", {"date": "2024-01-09", "symbol": "BTCUSDT"}, _frame("2024-01-09", "BTCUSDT")),
        ])

    with pytest.raises(RuntimeError, match=r"do not match the run's partitions .*date=2024-01-01.*date=2024-01-09"):
        materialize([stray_prices], instance=registered, resources=resources, tags={
            "dagster/asset_partition_range_start": "2024-01-01|BTCUSDT",
            "dagster/asset_partition_range_end": "2024-01-02|BTCUSDT",
        })
    assert path.read_bytes() == before
    assert not list((data_root / "prices" / "symbol=BTCUSDT" / "date=2024-01-09").iterdir())
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]  # the staged file is gone too


def test_a_file_of_the_wrong_schema_fails_on_read_naming_file_column_types_and_command(tmp_path):
    store = PartitionStore(tmp_path)
    dims = {"date": "2024-01-02", "symbol": "BTCUSDT"}
    path = store.path("raw_klines", dims)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"open_time": pa.array([1, 2], pa.int64()), "close": [1.0, 2.0]}), path)
    from factor_core.schemas import STORED_COLUMNS

    with pytest.raises(PartitionFileError) as raised:
        store.read("raw_klines", dims, expect=STORED_COLUMNS["raw_klines"])
    message = str(raised.value)
    assert str(path) in message
    assert "column 'open_time' has type int64, expected timestamp[ns, tz=UTC]" in message
    assert 'dagster asset materialize -m factor_assets --select raw_klines --partition "2024-01-02|BTCUSDT"' in message


def test_a_corrupt_file_fails_on_read_with_the_command_that_rebuilds_it(tmp_path):
    store = PartitionStore(tmp_path)
    dims = {"date": "2024-01-02", "symbol": "BTCUSDT"}
    path = store.path("raw_trades", dims)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(PartitionFileError, match=r"is not a readable Parquet file .*corrupt.*--select raw_trades --partition"):
        store.read("raw_trades", dims)


def test_a_quarantined_partition_is_kept_but_refused(tmp_path):
    store = PartitionStore(tmp_path)
    dims = {"date": "2024-01-02", "symbol": "BTCUSDT"}
    store.publish([store.stage("raw_klines", dims, pa.table({"x": [1]}), failed=["klines_complete"])])
    assert pq.read_table(store.path("raw_klines", dims)).column("x").to_pylist() == [1]
    with pytest.raises(PartitionFileError, match=r"failed blocking quality check\(s\) \['klines_complete'\]"):
        store.read("raw_klines", dims)


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
