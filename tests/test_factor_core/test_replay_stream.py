"""The replay stream without a server: every message equals the stored rows, in the documented order, checked on the way."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factor_core.partition_store import PartitionStore
from factor_core.replay import ReplayCatalog, ReplayNotFoundError, StoredDataError, parse_options
from factor_core.replay.encode import NDJSON, WEBSOCKET, EncodingSource, chunk_of, encode_trades, unframe
from factor_core.replay.blocks import TradeBlock
from tests.test_factor_core.replay_data import (
    book_rows, reference_messages, write_simulated, write_table, write_window,
)

DAYS = ["2024-01-02", "2024-01-03"]


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory):
    store = PartitionStore(tmp_path_factory.mktemp("replay") / "data")
    write_simulated(store, ["BTCUSDT", "ETHUSDT", "SOLUSDT"], DAYS, trades_per_minute=4)
    return store


def replay(store, options: dict, *, batch_rows: int = 65_536, mode: int = NDJSON, registered=None) -> list[dict]:
    catalog = ReplayCatalog(store, registered_symbols=registered)
    plan = catalog.plan(parse_options(json.dumps(options)))
    cursor = plan.open(batch_rows=batch_rows, wrap=lambda s: EncodingSource(s, "binance", mode))
    out = []
    try:
        while (batch := cursor.next_batch()) is not None:
            out.extend(json.loads(m) for m in unframe(chunk_of(batch).data, mode))
    finally:
        cursor.close()
    return out


def test_every_message_equals_the_stored_rows_in_time_order_across_symbols_and_days(sim_store):
    options = {"symbols": ["SOLUSDT", "BTCUSDT", "ETHUSDT"], "from": "2024-01-02T20:00:00Z",
               "to": "2024-01-03T04:00:00Z", "dataTypes": ["trade", "book_snapshot_5_0ms"]}
    messages = replay(sim_store, options)
    expected = reference_messages(sim_store.root, options["symbols"], options["from"], options["to"], options["dataTypes"])
    assert len(messages) == len(expected) > 3 * 8 * 60
    assert messages == expected  # order, values (floats bit for bit), timestamps, levels
    assert {m["symbol"] for m in messages} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


def test_small_batches_and_websocket_framing_give_the_same_messages(sim_store, tmp_path):
    store = PartitionStore(tmp_path)  # the 20 minutes around midnight only: tiny batches are slow on whole days
    write_window(store, sim_store, ["BTCUSDT", "ETHUSDT"], "2024-01-02", "2024-01-02T23:50:00Z", "2024-01-03")
    write_window(store, sim_store, ["BTCUSDT", "ETHUSDT"], "2024-01-03", "2024-01-03", "2024-01-03T00:10:00Z")
    options = {"symbols": ["BTCUSDT", "ETHUSDT"], "from": "2024-01-02T23:50:00Z", "to": "2024-01-03T00:10:00Z",
               "dataTypes": ["trade", "book_snapshot_10_0ms", "quote"]}
    reference = replay(store, options)
    # 7 rows a batch: every snapshot (20 rows) is split across batches, runs of equal times span blocks.
    assert replay(store, options, batch_rows=7) == reference
    assert replay(store, options, batch_rows=7, mode=WEBSOCKET) == reference
    assert reference == reference_messages(store.root, options["symbols"], options["from"], options["to"],
                                           options["dataTypes"])
    assert {m["timestamp"][:10] for m in reference} == {"2024-01-02", "2024-01-03"}


def test_book_snapshots_are_sampled_per_interval_bucket_and_cut_to_the_depth(sim_store):
    options = {"symbols": ["BTCUSDT"], "from": "2024-01-02T00:00:30Z", "to": "2024-01-02T01:00:00Z",
               "dataTypes": ["book_snapshot_3_2m"]}
    messages = replay(sim_store, options)
    minutes = [pd.Timestamp(m["timestamp"]).minute for m in messages]
    # 00:00 is before `from`, so 00:01 is the first snapshot of its bucket in the range; then one every 2 minutes.
    assert minutes == [1, *range(2, 60, 2)]
    assert all(len(m["bids"]) == 3 and len(m["asks"]) == 3 and m["interval"] == 120_000 for m in messages)
    assert all(m["bids"][0]["price"] > m["bids"][1]["price"] and m["asks"][0]["price"] < m["asks"][1]["price"]
               for m in messages)


def test_ties_go_by_symbol_then_trades_before_books_then_stored_order(tmp_path):
    store = PartitionStore(tmp_path)
    day = "2024-01-02"
    base = pd.Timestamp("2024-01-02T10:00:00Z")
    n = 300  # three trades a microsecond for 100 microseconds, in each of three symbols: 9-way ties an unstable sort scrambles
    stamps = [base + pd.Timedelta(microseconds=k // 3) for k in range(n)] + [base + pd.Timedelta(nanoseconds=100_001)]
    for symbol in ("CCCUSDT", "AAAUSDT", "BBBUSDT"):
        write_table(store, "raw_trades", symbol, day, pd.DataFrame(
            {"trade_id": [*range(n, 0, -1), 0], "ts": stamps, "price": 10.0, "qty": 1.0, "is_buyer_maker": True}))
        write_table(store, "raw_book", symbol, day, pd.DataFrame(book_rows(base, [(9.0, 1.0)], [(13.0, 1.0)])))
    messages = replay(store, {"symbols": ["CCCUSDT", "BBBUSDT", "AAAUSDT"], "from": day, "to": "2024-01-03",
                              "dataTypes": ["book_snapshot_1_0ms", "trade"]}, batch_rows=64)
    order = [(m["symbol"], m["type"], m.get("id")) for m in messages]
    symbols = ("AAAUSDT", "BBBUSDT", "CCCUSDT")
    expected = []
    for u in range(n // 3):
        for symbol in symbols:
            expected += [(symbol, "trade", str(n - k)) for k in range(3 * u, 3 * u + 3)]  # stored order, not id order
            if u == 0:
                expected.append((symbol, "book_snapshot", None))  # after the trades of its time
    expected += [(symbol, "trade", "0") for symbol in symbols]  # 100 us + 1 ns: same microsecond stamp, later in time
    assert order == expected
    assert messages[-1]["timestamp"] == messages[-3]["timestamp"] == "2024-01-02T10:00:00.000100Z"


def test_prices_and_amounts_parse_back_to_the_stored_float64_exactly():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.random(500) * 1e5, np.round(rng.random(500) * 1e4, 2), 10.0 ** rng.integers(-12, 12, 200),
                             [5e-324, 1.7976931348623157e308, 0.1, 100.0, 1e21, 1e-7]])
    n = len(values)
    block = TradeBlock(np.arange(n, dtype=np.int64) * 1_000_123_456 - 86_400_000_000_000 * 3, np.arange(n) - 5,
                       values, values[::-1].copy(), np.resize(np.array([1, -1, 0], np.int8), n))
    messages = [json.loads(m) for m in unframe(encode_trades(block, "BTCUSDT", "binance", WEBSOCKET).data, WEBSOCKET)]
    assert [m["price"] for m in messages] == values.tolist()
    assert [m["amount"] for m in messages] == values[::-1].tolist()
    assert [m["id"] for m in messages] == [str(i) for i in range(-5, n - 5)]
    assert [m["side"] for m in messages] == (["buy", "sell", "unknown"] * n)[:n]
    expected_ts = [pd.Timestamp(int(v), unit="ns", tz="UTC").floor("us").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                   for v in block.ts]
    assert [m["timestamp"] for m in messages] == expected_ts  # 1969-12-29 onwards: before and after the epoch
    raw = unframe(encode_trades(block, "BTCUSDT", "binance", NDJSON).data, NDJSON)
    assert '"price":0.1,' in raw[-4] and '"price":100,' in raw[-3] and '"price":1e+21,' in raw[-2]


def test_short_decimals_are_written_fixed_point_and_non_finite_values_as_null():
    values = np.array([34878.61, 0.00012, -2.5, 1234567.0, 1e-20, np.nan, np.inf, -0.0])
    n = len(values)
    block = TradeBlock(np.zeros(n, np.int64), np.arange(n), values, np.ones(n), np.ones(n, np.int8))
    prices = [m.split('"price":')[1].split(",")[0] for m in unframe(encode_trades(block, "X1", "binance", NDJSON).data, NDJSON)]
    assert prices == ["34878.61", "0.00012", "-2.5", "1234567", "1e-20", "null", "null", "-0"]


def test_iso_timestamps_match_python_across_leap_years_and_centuries():
    days = np.array([dt.date(y, m, d).toordinal() - dt.date(1970, 1, 1).toordinal()
                     for y, m, d in [(2000, 2, 29), (2024, 2, 29), (2100, 3, 1), (1999, 12, 31), (2024, 12, 31)]])
    ts = days * 86_400_000_000_000 + 86_399_999_999_999
    block = TradeBlock(ts.astype(np.int64), np.zeros(len(ts), np.int64), np.ones(len(ts)), np.ones(len(ts)),
                       np.ones(len(ts), np.int8))
    stamps = [json.loads(m)["timestamp"] for m in unframe(encode_trades(block, "X1", "binance", NDJSON).data, NDJSON)]
    assert stamps == ["2000-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999999Z", "2100-03-01T23:59:59.999999Z",
                      "1999-12-31T23:59:59.999999Z", "2024-12-31T23:59:59.999999Z"]


def test_a_crossed_book_snapshot_in_the_stored_data_is_reported_not_replayed(tmp_path):
    store = PartitionStore(tmp_path)
    day = "2024-01-02"
    rows = (book_rows("2024-01-02T00:00:00Z", [(100.0, 1.0)], [(101.0, 1.0)])
            + book_rows("2024-01-02T00:01:00Z", [(101.5, 1.0), (100.0, 2.0)], [(101.0, 1.0)]))
    write_table(store, "raw_book", "BTCUSDT", day, pd.DataFrame(rows))  # bypasses no check: stored as if it passed
    with pytest.raises(StoredDataError) as caught:
        replay(store, {"symbols": ["BTCUSDT"], "from": day, "to": "2024-01-03", "dataTypes": ["book_snapshot_5_0ms"]})
    message = caught.value.message
    assert "raw_book partition 2024-01-02|BTCUSDT" in message and "2024-01-02T00:01:00.000000Z is crossed" in message
    assert "best bid 101.5 >= best ask 101.0" in message and "re-materialize" in message
    assert caught.value.close_code == 4422


@pytest.mark.parametrize("bids, asks, words", [
    ([(100.0, 1.0), (100.5, 1.0)], [(101.0, 1.0)], "crossed bid levels: level 1 at 100.0, level 2 at 100.5"),
    ([(100.0, 1.0)], [(101.0, 1.0), (100.8, 1.0)], "crossed ask levels"),
    ([(100.0, 1.0)], [(100.0, 1.0)], "is crossed: best bid 100.0 >= best ask 100.0"),
])
def test_snapshots_whose_levels_cross_each_other_are_refused(tmp_path, bids, asks, words):
    store = PartitionStore(tmp_path)
    write_table(store, "raw_book", "BTCUSDT", "2024-01-02", pd.DataFrame(book_rows("2024-01-02T00:00:00Z", bids, asks)))
    with pytest.raises(StoredDataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        replay(store, {"symbols": ["BTCUSDT"], "from": "2024-01-02", "to": "2024-01-03", "dataTypes": ["book_snapshot_5_0ms"]})


def test_rows_out_of_time_order_are_refused_naming_the_file(tmp_path):
    store = PartitionStore(tmp_path)
    path = write_table(store, "raw_trades", "BTCUSDT", "2024-01-02", pd.DataFrame(
        {"trade_id": [1, 2], "ts": ["2024-01-02T00:00:02Z", "2024-01-02T00:00:01Z"], "price": [1.0, 1.0], "qty": [1.0, 1.0],
         "is_buyer_maker": [True, True]}), checked=False)
    with pytest.raises(StoredDataError) as caught:
        replay(store, {"symbols": ["BTCUSDT"], "from": "2024-01-02", "to": "2024-01-03", "dataTypes": ["trade"]})
    assert str(path) in caught.value.message and "not in time order" in caught.value.message


def test_partitions_never_materialized_are_named_before_anything_is_streamed(sim_store):
    with pytest.raises(ReplayNotFoundError) as caught:
        replay(sim_store, {"symbols": ["BTCUSDT", "ETHUSDT"], "from": "2024-01-03T12:00:00Z", "to": "2024-01-05T01:00:00Z",
                           "dataTypes": ["trade", "book_snapshot_5_0ms"]})
    message = caught.value.message
    assert "raw_trades: 2024-01-04|BTCUSDT, 2024-01-04|ETHUSDT, 2024-01-05|BTCUSDT, 2024-01-05|ETHUSDT" in message
    assert "raw_book: 2024-01-04|BTCUSDT" in message and "dagster asset materialize" in message
    assert caught.value.close_code == 4404


def test_an_unregistered_symbol_is_refused_listing_the_registered_ones(sim_store):
    with pytest.raises(ReplayNotFoundError) as caught:
        replay(sim_store, {"symbols": ["DOGEUSDT"], "from": "2024-01-02", "to": "2024-01-03", "dataTypes": ["trade"]},
               registered=lambda: ["BTCUSDT", "ETHUSDT"])
    assert "['DOGEUSDT'] are not registered (registered: BTCUSDT, ETHUSDT)" in caught.value.message
    assert "factor-pipeline symbols add DOGEUSDT" in caught.value.message


def test_quarantined_partitions_and_depth_bands_are_refused_before_streaming(tmp_path):
    store = PartitionStore(tmp_path)
    trades = pd.DataFrame({"trade_id": [1], "ts": ["2024-01-02T00:00:01Z"], "price": [1.0], "qty": [1.0],
                           "is_buyer_maker": [False]})
    write_table(store, "raw_trades", "BTCUSDT", "2024-01-02", trades, failed=["trades_in_day"])
    with pytest.raises(StoredDataError, match=r"2024-01-02\|BTCUSDT: it failed blocking quality check\(s\) \['trades_in_day'\]"):
        replay(store, {"symbols": ["BTCUSDT"], "from": "2024-01-02", "to": "2024-01-03", "dataTypes": ["trade"]})
    bands = pd.DataFrame({"ts": ["2024-01-02T00:00:00Z"] * 2, "side": ["bid", "ask"], "level": [1, 1],
                          "price": [np.nan, np.nan], "qty": [5.0, 6.0], "band_pct": [1.0, 1.0]})
    write_table(store, "raw_book", "ETHUSDT", "2024-01-02", bands)
    with pytest.raises(StoredDataError, match="holds depth bands"):
        replay(store, {"symbols": ["ETHUSDT"], "from": "2024-01-02", "to": "2024-01-03", "dataTypes": ["book_snapshot_5_0ms"]})


def test_a_source_holds_about_a_batch_of_a_file_not_its_whole_row_group(tmp_path):
    store = PartitionStore(tmp_path)
    write_simulated(store, ["BTCUSDT"], ["2024-01-02"], trades_per_minute=360)  # one row group of ~500k trades
    plan = ReplayCatalog(store).plan(parse_options(json.dumps(
        {"symbols": ["BTCUSDT"], "from": "2024-01-02", "to": "2024-01-03", "dataTypes": ["trade"]})))
    path = plan.sources[0].files[0].path
    decoded = pq.read_table(path).nbytes
    pool = pa.default_memory_pool()
    before = pool.bytes_allocated()
    cursor = plan.open(batch_rows=1000)
    first = cursor.next_batch()
    held = pool.bytes_allocated() - before
    assert len(first) <= 1000 and cursor.sources[0].rows_read <= 1000 < pq.ParquetFile(path).metadata.num_rows
    # Page buffers only (~1 MB a column); reading the row group whole would hold it compressed plus decoded pages.
    assert held < decoded / 2, (held, decoded)
    cursor.close()
