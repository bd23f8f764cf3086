from dataclasses import dataclass

import pyarrow as pa
import pytest
from dagster import AssetKey, materialize

from factor_assets.factors import factor_bars
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.raw import build_raw_assets
from factor_core.market_sources import SimulatorSource
from factor_core.partition_data import PartitionData
from factor_assets.chunks import ChunkFailure
from partitions import register_symbols
from resources.market_data import SyntheticMarketData

RAW = build_raw_assets("synthetic")
RAW_ASSETS = [RAW]


@dataclass(frozen=True)
class CorruptingSimulator(SimulatorSource):
    """The simulator, with the klines of one day damaged the way a bad archive would be."""

    corrupt_day: str = ""

    def fetch(self, datasets, pairs):
        fetched = super().fetch(datasets, pairs)
        for (symbol, day), data in fetched.get("klines", {}).items():
            if day.isoformat() == self.corrupt_day:
                frame = data.table.to_pandas().drop(index=range(600, 660)).reset_index(drop=True)  # 10:00-10:59 missing
                frame.loc[5, "high"] = frame.loc[5, "low"] - 1.0  # high below low
                fetched["klines"][(symbol, day)] = PartitionData(pa.Table.from_pandas(frame, preserve_index=False), data.provenance)
        return fetched


class CorruptingMarketData(SyntheticMarketData):
    corrupt_day: str

    def source(self):
        return CorruptingSimulator(self.simulator_config(), corrupt_day=self.corrupt_day)


@pytest.fixture
def resources(pipeline_resources):
    return pipeline_resources(CorruptingMarketData(corrupt_day="2024-01-02", trades_per_minute=2))


def _check_results(result):
    return {(e.check_name, e.passed): e for e in result.get_asset_check_evaluations()}


def test_clean_partitions_pass_every_check(instance, resources):
    register_symbols(instance, ["BTCUSDT"])
    result = materialize([RAW], instance=instance, resources=resources, partition_key="2024-01-01|BTCUSDT",
                         selection=["raw_klines"])
    evaluations = result.get_asset_check_evaluations()
    # The simulator publishes no checksum, so there is no checksum check to pass vacuously.
    assert {e.check_name for e in evaluations} == {"klines_complete", "timestamps", "ohlc_consistent", "volumes_non_negative"}
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
    assert not [e for e in result.get_asset_materialization_events()
                if e.step_materialization_data.materialization.asset_key == AssetKey("factor_bars")]
    # ...the bad partition is kept for inspection...
    assert (data_root / "raw_klines" / "symbol=BTCUSDT" / "date=2024-01-02" / "part-0.parquet").exists()
    # ...and a later run refuses to consume it, naming partition and checks.
    with pytest.raises(ChunkFailure, match=r"raw_klines partition 2024-01-02\|BTCUSDT failed blocking quality check\(s\) \['klines_complete', 'ohlc_consistent'\]"):
        materialize(
            [*RAW_ASSETS, *LIQUIDITY_ASSETS, factor_bars],
            instance=instance,
            resources=resources,
            partition_key="2024-01-02|BTCUSDT",
            selection=[*LIQUIDITY_ASSETS, factor_bars],
        )


def test_rematerializing_a_fixed_partition_clears_the_quarantine(instance, resources, data_root):
    register_symbols(instance, ["BTCUSDT"])
    materialize([RAW], instance=instance, resources=resources, partition_key="2024-01-02|BTCUSDT", raise_on_error=False,
                selection=["raw_klines"])
    fixed = {**resources, "market_data": CorruptingMarketData(corrupt_day="1999-01-01", trades_per_minute=2)}
    result = materialize([*RAW_ASSETS, *LIQUIDITY_ASSETS, factor_bars], instance=instance, resources=fixed, partition_key="2024-01-02|BTCUSDT")
    assert result.success
    assert instance.get_latest_materialization_event(AssetKey("factor_bars")) is not None
