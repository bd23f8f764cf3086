"""MARKET_DATA_SOURCE=landing through Dagster: users' own files, bars-only users first-class, bad files refused clearly."""

import hashlib

import pyarrow.parquet as pq
import pytest
from dagster import materialize

from factor_assets.chunks import ChunkFailure
from factor_assets.factors import factor_bars
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.raw import build_raw_assets
from partitions import register_symbols
from resources.market_data import LandingMarketData
from tests.binance_replica import kline_rows, klines_csv, make_zip
from tests.conftest import partition_metadata

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAYS = ["2024-03-01", "2024-03-02"]
RAW = build_raw_assets("landing")
PER_SYMBOL = [RAW, *LIQUIDITY_ASSETS, factor_bars]
RANGE = {"dagster/asset_partition_range_start": f"{DAYS[0]}|{SYMBOLS[0]}",
         "dagster/asset_partition_range_end": f"{DAYS[-1]}|{SYMBOLS[-1]}"}


@pytest.fixture
def landing(tmp_path):
    root = tmp_path / "landing"
    root.mkdir()
    for i, symbol in enumerate(SYMBOLS):
        for j, day in enumerate(DAYS):
            # zipped and not, with and without a header row, as users download them
            csv = klines_csv(kline_rows(day, seed=10 * i + j), header=bool(j))
            name = f"{symbol}-1m-{day}"
            if i:
                (root / f"{name}.zip").write_bytes(make_zip(f"{name}.csv", csv))
            else:
                (root / f"{name}.csv").write_bytes(csv)
    return root


def test_bars_only_users_get_every_layer_and_metadata_says_what_is_null(instance, pipeline_resources, landing, data_root):
    register_symbols(instance, SYMBOLS)
    resources = pipeline_resources(LandingMarketData(landing_dir=str(landing)))
    result = materialize(PER_SYMBOL, instance=instance, resources=resources, tags=RANGE,
                         selection=[*(k.path[-1] for k in RAW.keys), "liquidity_metrics", "liquidity_daily", "factor_bars"])
    assert result.success
    trades = partition_metadata(result, "raw_trades")
    assert all(m["rows"] == 0 and "no trades file landed" in m["note"] for m in trades.values())
    liquidity = partition_metadata(result, "liquidity_daily")
    for key, values in liquidity.items():
        assert "amihud_per_musd" in values and "cs_spread_bps" in values, key  # bar-only measures computed
        assert "effective_spread_bps" in values["null_reasons"] and "quoted_spread_bps" in values["null_reasons"]
        assert sorted(values["empty_inputs"]) == ["raw_book", "raw_quotes", "raw_trades"]
    bars = pq.read_table(data_root / "factor_bars" / "symbol=ETHUSDT" / f"date={DAYS[-1]}" / "part-0.parquet").to_pandas()
    assert len(bars) == 24 and bars["close"].notna().all() and bars["liq_quoted_spread_bps"].isna().all()
    provenance = partition_metadata(result, "raw_klines")
    assert provenance[f"{DAYS[0]}|ETHUSDT"]["file"].endswith("ETHUSDT-1m-2024-03-01.zip")
    assert provenance[f"{DAYS[0]}|BTCUSDT"]["file"].endswith("BTCUSDT-1m-2024-03-01.csv")


def test_a_truncated_zip_fails_naming_the_file_and_keeps_what_was_stored(instance, pipeline_resources, landing, data_root):
    register_symbols(instance, SYMBOLS)
    resources = pipeline_resources(LandingMarketData(landing_dir=str(landing)))
    assert materialize([RAW], instance=instance, resources=resources, tags=RANGE).success
    stored = data_root / "raw_klines" / "symbol=ETHUSDT" / f"date={DAYS[0]}" / "part-0.parquet"
    before = hashlib.sha256(stored.read_bytes()).hexdigest()
    bad = landing / f"ETHUSDT-1m-{DAYS[0]}.zip"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])  # a download cut in half
    with pytest.raises(ChunkFailure) as raised:
        materialize([RAW], instance=instance, resources=resources, tags=RANGE)
    assert f"ETHUSDT-1m-{DAYS[0]}.zip" in str(raised.value) and "klines 2024-03-01|ETHUSDT" in str(raised.value)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == before
