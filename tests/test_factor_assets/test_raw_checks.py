import pytest
from dagster import AssetKey, materialize

from factor_assets.factors import factor_bars
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.raw import RAW_ASSETS, raw_klines
from partitions import register_symbols
from resources.market_data import MarketDataSource, Partition
from resources.parquet_io_manager import ParquetIOManager, PartitionDataError


class CorruptingSource(MarketDataSource):
    """The simulator, with the klines of one day damaged the way a bad archive would be."""

    corrupt_day: str

    def fetch_many(self, dataset, pairs):
        fetched = super().fetch_many(dataset, pairs)
        for (symbol, day), partition in fetched.items():
            if dataset == "klines" and day.isoformat() == self.corrupt_day:
                frame = partition.frame.drop(index=range(600, 660)).reset_index(drop=True)  # 10:00-10:59 missing
                frame.loc[5, "high"] = frame.loc[5, "low"] - 1.0  # high below low
                fetched[(symbol, day)] = Partition(frame, partition.provenance)
        return fetched


@pytest.fixture
def resources(data_root):
    return {
        "parquet_io_manager": ParquetIOManager(root=str(data_root)),
        "market_data": CorruptingSource(corrupt_day="2024-01-02", sim_trades_per_minute=2),
    }


def _check_results(result):
    return {(e.check_name, e.passed): e for e in result.get_asset_check_evaluations()}


def test_clean_partitions_pass_every_check(instance, resources):
    register_symbols(instance, ["BTCUSDT"])
    result = materialize([raw_klines], instance=instance, resources=resources, partition_key="2024-01-01|BTCUSDT")
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "klines_complete", "timestamps", "ohlc_consistent", "volumes_non_negative", "checksum_verified"
    }
    assert all(e.passed for e in evaluations)


def test_a_failed_blocking_check_stops_downstream_now_and_later(instance, resources, data_root):
    register_symbols(instance, ["BTCUSDT"])
    result = materialize(
        [*RAW_ASSETS, *LIQUIDITY_ASSETS, factor_bars],
        instance=instance,
        resources=resources,
        partition_key="2024-01-02|BTCUSDT",
        raise_on_error=False,
    )
    checks = _check_results(result)
    complete = checks[("klines_complete", False)]
    assert "10:00" in complete.description and "10:59" in complete.description
    assert complete.metadata["partitions_failed"].value == ["2024-01-02|BTCUSDT"]
    assert ("ohlc_consistent", False) in checks
    # Blocking: factor_bars did not run in this run...
    assert not result.asset_materializations_for_node("factor_bars")
    # ...the bad partition is kept for inspection...
    assert (data_root / "raw_klines" / "symbol=BTCUSDT" / "date=2024-01-02" / "part-0.parquet").exists()
    # ...and a later run refuses to consume it, naming partition and checks.
    with pytest.raises(PartitionDataError, match=r"2024-01-02\|BTCUSDT of asset raw_klines failed blocking quality check\(s\) \['klines_complete', 'ohlc_consistent'\]"):
        materialize(
            [*RAW_ASSETS, *LIQUIDITY_ASSETS, factor_bars],
            instance=instance,
            resources=resources,
            partition_key="2024-01-02|BTCUSDT",
            selection=[*LIQUIDITY_ASSETS, factor_bars],
        )


def test_rematerializing_a_fixed_partition_clears_the_quarantine(instance, resources, data_root):
    register_symbols(instance, ["BTCUSDT"])
    materialize([raw_klines], instance=instance, resources=resources, partition_key="2024-01-02|BTCUSDT", raise_on_error=False)
    fixed = {**resources, "market_data": CorruptingSource(corrupt_day="1999-01-01", sim_trades_per_minute=2)}
    result = materialize([*RAW_ASSETS, *LIQUIDITY_ASSETS, factor_bars], instance=instance, resources=fixed, partition_key="2024-01-02|BTCUSDT")
    assert result.success
    assert instance.get_latest_materialization_event(AssetKey("factor_bars")) is not None
