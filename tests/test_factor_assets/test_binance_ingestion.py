"""MARKET_DATA_SOURCE=binance through Dagster, against the replica on 127.0.0.1."""

import hashlib
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import build_sensor_context, materialize

from factor_assets.chunks import ChunkFailure
from factor_assets.raw import build_raw_assets
from factor_assets.universe import symbol_universe, universe_sensor
from factor_core.binance.errors import ChecksumMismatch
from factor_core.binance.source import PartitionFetchError
from partitions import register_symbols, registered_symbols
from resources.market_data import BinanceMarketData
from tests.conftest import partition_metadata
from tests.binance_replica import (
    BinanceReplica,
    agg_trade_rows,
    agg_trades_csv,
    book_depth_csv,
    book_depth_rows,
    funding_csv,
    funding_rows,
    kline_rows,
    klines_csv,
    rest_klines,
)

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAYS = ["2024-03-01", "2024-03-02"]
RANGE = {
    "dagster/asset_partition_range_start": "2024-03-01|BTCUSDT",
    "dagster/asset_partition_range_end": "2024-03-02|ETHUSDT",
}
RAW = build_raw_assets("binance")
RAW_WITHOUT_QUOTES = ["raw_klines", "raw_trades", "raw_book", "raw_funding"]


def _ns(ms_text: str) -> int:
    return int(ms_text) * 1_000_000


def _publish(replica: BinanceReplica) -> dict:
    served = {"klines": {}, "trades": {}, "book": {}, "funding": {}}
    for i, symbol in enumerate(SYMBOLS):
        for j, day in enumerate(DAYS):
            seed = 10 * i + j
            served["klines"][(symbol, day)] = rows = kline_rows(day, seed=seed)
            replica.put_archive("spot", "daily", "klines", symbol, day, klines_csv(rows, header=(j == 1)), interval="1m")
            served["trades"][(symbol, day)] = rows = agg_trade_rows(day, n=500, seed=seed, first_id=1_000_000 * (j + 1))
            replica.put_archive("spot", "daily", "aggTrades", symbol, day, agg_trades_csv(rows))
            served["book"][(symbol, day)] = rows = book_depth_rows(day, snapshots=6, seed=seed)
            replica.put_archive("futures/um", "daily", "bookDepth", symbol, day, book_depth_csv(rows))
        served["funding"][symbol] = rows = funding_rows(2024, 3, seed=i)
        replica.put_archive("futures/um", "monthly", "fundingRate", symbol, "2024-03", funding_csv(rows))
    return served


@pytest.fixture
def replica():
    with BinanceReplica() as server:
        yield server


def _source(replica: BinanceReplica, landing, **overrides) -> BinanceMarketData:
    return BinanceMarketData(
        archive_url=replica.url, api_url=replica.url, fapi_url=replica.url, collector_root=str(landing), **overrides
    )


@pytest.fixture
def resources(replica, data_root, pipeline_resources):
    return pipeline_resources(_source(replica, data_root / "_landing"))


def _stored(data_root, asset, symbol, day):
    return pq.read_table(data_root / asset / f"symbol={symbol}" / f"date={day}" / "part-0.parquet").to_pandas()


def _digests(data_root):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_root.rglob("*.parquet"))}


def test_range_run_stores_exactly_the_served_values(instance, resources, replica, data_root):
    served = _publish(replica)
    register_symbols(instance, SYMBOLS)
    result = materialize([RAW], instance=instance, resources=resources, tags=RANGE, selection=RAW_WITHOUT_QUOTES)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())

    for symbol in SYMBOLS:
        for day in DAYS:
            klines = _stored(data_root, "raw_klines", symbol, day)
            rows = served["klines"][(symbol, day)]
            assert klines["open_time"].astype("int64").tolist() == [_ns(r[0]) for r in rows]
            assert str(klines["open_time"].dt.tz) == "UTC"
            for column, index in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5), ("quote_volume", 7)):
                assert klines[column].tolist() == [float(r[index]) for r in rows], column
            assert klines["trade_count"].tolist() == [int(r[8]) for r in rows]
            assert klines["taker_buy_volume"].tolist() == [float(r[9]) for r in rows]

            trades = _stored(data_root, "raw_trades", symbol, day)
            rows = served["trades"][(symbol, day)]
            assert trades["trade_id"].tolist() == [int(r[0]) for r in rows]
            assert trades["ts"].astype("int64").tolist() == [_ns(r[5]) for r in rows]
            assert trades["price"].tolist() == [float(r[1]) for r in rows]
            assert trades["qty"].tolist() == [float(r[2]) for r in rows]
            assert trades["is_buyer_maker"].tolist() == [r[6] == "True" for r in rows]

            book = _stored(data_root, "raw_book", symbol, day)
            rows = served["book"][(symbol, day)]
            assert len(book) == len(rows)
            assert sorted(book["notional"].round(6)) == sorted(round(float(r[3]), 6) for r in rows)
            assert set(book["side"]) == {"bid", "ask"} and book["price"].isna().all()

            funding = _stored(data_root, "raw_funding", symbol, day)
            start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)
            expected = [r for r in served["funding"][symbol] if start <= int(r[0]) < start + 86_400_000]
            assert funding["ts"].astype("int64").tolist() == [_ns(r[0]) for r in expected]
            assert funding["funding_rate"].tolist() == [float(r[2]) for r in expected]

    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "checksum_verified" and e.asset_key.path == ["raw_klines"])
    assert evaluation.passed and "4 partition(s) checked" in evaluation.description
    metadata = partition_metadata(result, "raw_klines")
    assert sorted(metadata) == sorted(f"{d}|{s}" for d in DAYS for s in SYMBOLS)  # one event per partition
    assert metadata["2024-03-01|BTCUSDT"]["url"].endswith("/BTCUSDT-1m-2024-03-01.zip")
    assert metadata["2024-03-02|ETHUSDT"]["url"].endswith("/ETHUSDT-1m-2024-03-02.zip")  # its own, not the run's
    assert len(metadata["2024-03-01|BTCUSDT"]["sha256"]) == 64
    assert metadata["2024-03-01|BTCUSDT"]["rows"] == 1440


def test_a_checksum_mismatch_fails_the_run_and_leaves_stored_partitions_untouched(instance, resources, replica, data_root):
    served = _publish(replica)
    register_symbols(instance, SYMBOLS)
    assert materialize([RAW], instance=instance, resources=resources, tags=RANGE, selection=["raw_klines"]).success
    before = _digests(data_root)

    # The archive republishes a day, but the zip no longer matches its CHECKSUM.
    path = replica.put_archive(
        "spot", "daily", "klines", "ETHUSDT", "2024-03-02", klines_csv(served["klines"][("ETHUSDT", "2024-03-01")]),
        interval="1m", checksum="wrong",
    )
    with pytest.raises(ChunkFailure) as raised:
        materialize([RAW], instance=instance, resources=resources, tags=RANGE, selection=["raw_klines"])
    message = str(raised.value)
    assert "2024-03-02|ETHUSDT" in message and path.rsplit("/", 1)[-1] in message
    assert isinstance(raised.value.__cause__, PartitionFetchError)
    assert isinstance(raised.value.__cause__.failures[("klines", "ETHUSDT", date(2024, 3, 2))], ChecksumMismatch)
    assert "None of the run's partitions were stored" in message
    assert _digests(data_root) == before


def test_a_day_missing_from_the_archive_comes_from_rest_klines(instance, resources, replica, data_root):
    rows = kline_rows("2024-03-03", seed=99)
    replica.klines["BTCUSDT"] = rest_klines(rows)
    register_symbols(instance, ["BTCUSDT"])
    result = materialize([RAW], instance=instance, resources=resources, partition_key="2024-03-03|BTCUSDT",
                         selection=["raw_klines"])
    assert result.success
    stored = _stored(data_root, "raw_klines", "BTCUSDT", "2024-03-03")
    assert stored["close"].tolist() == [float(r[4]) for r in rows]
    assert len(replica.requests_to("/api/v3/klines")) == 2  # 1440 rows in pages of 1000
    assert partition_metadata(result, "raw_klines")["2024-03-03|BTCUSDT"]["source"] == "binance REST"
    # A REST day cannot be verified: the (non-blocking) check says so instead of passing silently.
    checksum = next(e for e in result.get_asset_check_evaluations() if e.check_name == "checksum_verified")
    assert not checksum.passed and checksum.severity.value == "WARN"
    assert "2024-03-03|BTCUSDT: 2024-03-03: NOT verified: binance REST publishes no checksum" in checksum.description


def test_trades_not_published_yet_is_a_clear_failure_not_an_empty_partition(instance, resources, data_root):
    register_symbols(instance, ["BTCUSDT"])
    with pytest.raises(ChunkFailure, match=r"2024-03-05\|BTCUSDT: .*not published yet"):
        materialize([RAW], instance=instance, resources=resources, partition_key="2024-03-05|BTCUSDT",
                    selection=["raw_trades"])
    assert not (data_root / "raw_trades").exists()


def test_universe_sensor_registers_new_trading_symbols_and_keeps_delisted_ones(instance, replica, data_root, monkeypatch, resources):
    monkeypatch.setenv("UNIVERSE_SYMBOLS", "")
    replica.symbols = [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT"},
        {"symbol": "ETHUSDT", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "USDT"},
        {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC"},
        {"symbol": "LUNAUSDT", "status": "BREAK", "baseAsset": "LUNA", "quoteAsset": "USDT"},
    ]
    with build_sensor_context(instance=instance, resources=resources) as context:
        result = universe_sensor(context)
    # LUNAUSDT is not trading and has no stated history: never a partition.
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["BTCUSDT", "ETHUSDT"]]
    assert len(result.run_requests) == 1
    instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
    assert materialize([symbol_universe], instance=instance, resources=resources).success

    # Unchanged exchange: nothing to do.
    with build_sensor_context(instance=instance, resources=resources, cursor=result.cursor) as context:
        assert universe_sensor(context).skip_message.startswith("universe unchanged")

    # ETHUSDT stops trading, SOLUSDT lists.
    replica.symbols[1]["status"] = "BREAK"
    replica.symbols.append({"symbol": "SOLUSDT", "status": "TRADING", "baseAsset": "SOL", "quoteAsset": "USDT"})
    with build_sensor_context(instance=instance, resources=resources, cursor=result.cursor) as context:
        changed = universe_sensor(context)
    assert [r.partition_keys for r in changed.dynamic_partitions_requests] == [["SOLUSDT"]]
    instance.add_dynamic_partitions("symbols", ["SOLUSDT"])
    assert materialize([symbol_universe], instance=instance, resources=resources).success

    table = pq.read_table(data_root / "symbol_universe" / "part-0.parquet").to_pandas().set_index("symbol")
    today = datetime.now(timezone.utc).date().isoformat()
    # Seen at the first observation: listed before observation began (a member since the start of history).
    assert pd.isna(table.loc["ETHUSDT", "listed_on"]) and table.loc["ETHUSDT", "delisted_on"] == today
    assert table.loc["SOLUSDT", "listed_on"] == today  # appeared later: listed the day it was first seen
    assert table.loc["BTCUSDT", "status"] == "TRADING" and pd.isna(table.loc["BTCUSDT", "delisted_on"])
    assert "ETHBTC" not in table.index
    assert registered_symbols(instance) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # history kept


def test_the_collector_lands_snapshots_and_the_day_is_built_from_them(instance, replica, data_root, pipeline_resources):
    from factor_assets.collection import book_snapshot_job, build_book_snapshot_sensor
    from factor_core.book_landing import write_snapshot

    landing = data_root / "_landing"
    replica.depth["BTCUSDT"] = {
        "lastUpdateId": 7,
        "bids": [[f"{100 - i * 0.1:.1f}", "1.5"] for i in range(20)],
        "asks": [[f"{100.1 + i * 0.1:.1f}", "2.0"] for i in range(20)],
    }
    register_symbols(instance, ["BTCUSDT", "ETHUSDT"])  # ETHUSDT has no book: its failure is isolated
    resources = {"market_data": _source(replica, landing, book_source="collector")}
    sensor = build_book_snapshot_sensor(collecting=True, interval_s=60)
    with build_sensor_context(instance=instance) as context:
        request = sensor(context)
    assert request.run_key.startswith("book-snapshot-")  # the capture is a run, not work inside the tick
    result = book_snapshot_job.execute_in_process(instance=instance, resources=resources)
    assert result.success
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("landed 1 snapshot(s), 1 failed" in m for m in logged)
    assert any("depth snapshot of ETHUSDT failed" in m for m in logged)
    today = datetime.now(timezone.utc).date().isoformat()
    (snapshot,) = (landing / "raw_book" / "symbol=BTCUSDT" / f"date={today}").glob("snap-*.parquet")
    landed = pq.read_table(snapshot).to_pandas()
    assert len(landed) == 40 and landed["price"].max() == pytest.approx(102.0)

    # A closed day with 3 collected snapshots becomes the raw_book partition.
    base = datetime(2024, 3, 1, tzinfo=timezone.utc)
    for minute in (0, 1, 5):
        captured = int(base.timestamp() * 1e9) + minute * 60 * 10**9
        snap = pq.read_table(snapshot)
        stamps = pa.array(np.full(snap.num_rows, captured, dtype=np.int64)).cast(pa.timestamp("ns", tz="UTC"))
        write_snapshot(landing, "BTCUSDT", snap.set_column(0, "ts", stamps))
    run_resources = pipeline_resources(_source(replica, landing, book_source="collector", book_interval_s=60))
    result = materialize([RAW], instance=instance, resources=run_resources, partition_key="2024-03-01|BTCUSDT",
                         selection=["raw_book"])
    assert result.success
    stored = _stored(data_root, "raw_book", "BTCUSDT", "2024-03-01")
    assert len(stored) == 120 and stored["ts"].nunique() == 3
    source = partition_metadata(result, "raw_book")["2024-03-01|BTCUSDT"]
    assert source["snapshots"] == "3" and source["snapshots_expected"] == "1440"
    assert float(source["completeness"]) == pytest.approx(3 / 1440, abs=1e-4)
    assert np.all(stored.groupby("ts")["level"].max() == 20)


def test_odd_symbols_from_the_exchange_never_become_partitions():
    from factor_core.universe import from_exchange_info

    entries = [{"symbol": "BAD/SYM", "status": "TRADING", "quoteAsset": "USDT"}, {"symbol": "OKUSDT", "status": "TRADING", "quoteAsset": "USDT"}]
    assert list(from_exchange_info(entries, "USDT")) == ["OKUSDT"]
