"""Landing readers: every format read value for value, and every bad input named with its file."""

from __future__ import annotations

import gzip
import hashlib
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import (  # noqa: E402
    agg_trade_rows,
    agg_trades_csv,
    book_ticker_csv,
    book_ticker_rows,
    checksum_text,
    funding_csv,
    funding_rows,
    kline_rows,
    klines_csv,
    make_zip,
    to_csv,
)

from factor_core.landing import LandingFileError, read_partition, scan  # noqa: E402
from factor_core.schemas import BOOK, FUNDING, KLINES, QUOTES, TRADES  # noqa: E402

DAY = date(2024, 1, 1)
DAY_US = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()) * 10**6
HOUR_US = 3600 * 10**6


@pytest.fixture
def root(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir()
    return landing


def land(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read(root: Path, dataset: str, day: date = DAY, symbol: str = "BTCUSDT"):
    result = scan(root)
    assert result.errors == ()
    return read_partition(result.files, dataset, symbol, day)


def ns(value: str, unit: str = "ms") -> int:
    return int(value) * {"ms": 10**6, "us": 10**3}[unit]


def ts_ns(table: pa.Table, column: str = "ts") -> list[int]:
    return table.column(column).cast(pa.int64()).to_pylist()


# --------------------------------------------------------------------------- Binance format


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("unit", ["ms", "us"])
def test_binance_klines_landed_zipped_or_not_with_or_without_header_in_ms_or_us(root, zipped, header, unit):
    rows = kline_rows(DAY, unit=unit, seed=2)
    csv = klines_csv(rows, header=header)
    name = "BTCUSDT-1m-2024-01-01"
    land(root, f"{name}.zip" if zipped else f"{name}.csv", make_zip(f"{name}.csv", csv) if zipped else csv)
    data = read(root, "klines")
    assert data.table.schema.equals(KLINES) and data.table.num_rows == 1440
    assert ts_ns(data.table, "open_time") == [ns(r[0], unit) for r in rows]
    assert data.table.column("close").to_pylist() == [float(r[4]) for r in rows]
    assert data.table.column("trade_count").to_pylist() == [int(r[8]) for r in rows]
    p = data.provenance
    assert (p["source"], p["time_unit"], p["header"]) == ("landing", unit, str(header))
    assert p["format"] == ("binance-zip" if zipped else "binance-csv") and p["file"].startswith(name)
    assert p["checksum_verified"] == "false"


def test_a_zip_with_a_checksum_beside_it_is_verified_and_a_mismatch_names_the_file(root):
    name = "BTCUSDT-1m-2024-01-01.zip"
    data = make_zip("BTCUSDT-1m-2024-01-01.csv", klines_csv(kline_rows(DAY)))
    land(root, name, data)
    land(root, name + ".CHECKSUM", checksum_text(data, name))
    verified = read(root, "klines")
    assert verified.provenance["checksum_verified"] == "true"
    assert verified.provenance["sha256"] == hashlib.sha256(data).hexdigest()
    land(root, name + ".CHECKSUM", checksum_text(data + b"x", name))
    with pytest.raises(LandingFileError, match="checksum mismatch") as raised:
        read(root, "klines")
    assert raised.value.path == name


def test_a_monthly_klines_file_is_cut_into_its_days(root):
    rows = kline_rows(date(2024, 2, 1), n=1440 * 29, seed=4)  # all of February 2024
    land(root, "ETHUSDT-1m-2024-02.csv", klines_csv(rows, header=True))
    result = scan(root)
    for day in (date(2024, 2, 1), date(2024, 2, 17), date(2024, 2, 29)):
        table = read_partition(result.files, "klines", "ETHUSDT", day).table
        first = (day - date(2024, 2, 1)).days * 1440
        expected = rows[first : first + 1440]
        assert ts_ns(table, "open_time") == [ns(r[0]) for r in expected]
        assert table.column("volume").to_pylist() == [float(r[5]) for r in expected]


def test_a_monthly_funding_file_gives_each_day_its_settlements(root):
    rows = funding_rows(2024, 3, seed=6)
    land(root, "BTCUSDT-fundingRate-2024-03.zip", make_zip("BTCUSDT-fundingRate-2024-03.csv", funding_csv(rows)))
    table = read(root, "funding", date(2024, 3, 15)).table
    start = int(datetime(2024, 3, 15, tzinfo=timezone.utc).timestamp() * 1000)
    expected = [r for r in rows if start <= int(r[0]) < start + 86_400_000]
    assert table.schema.equals(FUNDING) and len(expected) == 3
    assert ts_ns(table) == [ns(r[0]) for r in expected]
    assert table.column("funding_rate").to_pylist() == [float(r[2]) for r in expected]


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_aggtrades_of_spot_8_columns_and_futures_7_columns_both_read(root, market):
    rows = agg_trade_rows(DAY, n=300, seed=7)
    if market == "futures":
        rows = [r[:7] for r in rows]
        csv = to_csv(rows, "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker")
    else:
        csv = agg_trades_csv(rows)
    land(root, "BTCUSDT-aggTrades-2024-01-01.csv", csv)
    data = read(root, "trades")
    assert data.table.schema.equals(TRADES)
    assert data.table.column("trade_id").to_pylist() == [int(r[0]) for r in rows]
    assert data.table.column("is_buyer_maker").to_pylist() == [r[6] == "True" for r in rows]
    assert data.provenance["archive_dataset"] == ("um_aggTrades" if market == "futures" else "aggTrades")


@pytest.mark.parametrize("header", [False, True])
def test_binance_bookticker_becomes_quotes_stamped_at_transaction_time(root, header):
    rows = book_ticker_rows(DAY, n=400, seed=8)
    land(root, "BTCUSDT-bookTicker-2024-01-01.csv", book_ticker_csv(rows, header=header))
    table = read(root, "quotes").table
    assert table.schema.equals(QUOTES)
    assert ts_ns(table) == [ns(r[5]) for r in rows]
    for column, index in (("bid_price", 1), ("bid_qty", 2), ("ask_price", 3), ("ask_qty", 4)):
        assert table.column(column).to_pylist() == [float(r[index]) for r in rows], column


# --------------------------------------------------------------------------- bad Binance-format input


def test_a_truncated_zip_is_named_as_corrupt(root):
    good = make_zip("BTCUSDT-1m-2024-01-01.csv", klines_csv(kline_rows(DAY)))
    land(root, "BTCUSDT-1m-2024-01-01.zip", good[: len(good) // 2])
    with pytest.raises(LandingFileError) as raised:
        read(root, "klines")
    assert raised.value.path == "BTCUSDT-1m-2024-01-01.zip"
    assert "corrupt zip archive" in raised.value.reason and "replace the file" in raised.value.reason


def test_a_csv_with_the_wrong_number_of_columns_names_the_file_and_line(root):
    rows = kline_rows(DAY)
    rows[9] = rows[9][:10]
    land(root, "BTCUSDT-1m-2024-01-01.csv", klines_csv(rows))
    with pytest.raises(LandingFileError) as raised:
        read(root, "klines")
    assert raised.value.path == "BTCUSDT-1m-2024-01-01.csv"
    assert "line 10" in raised.value.reason and "10 columns, expected 12" in raised.value.reason


def test_a_bookticker_file_with_the_wrong_column_count_names_the_file(root):
    rows = [r[:6] for r in book_ticker_rows(DAY, n=50)]
    land(root, "BTCUSDT-bookTicker-2024-01-01.csv", to_csv(rows))
    with pytest.raises(LandingFileError) as raised:
        read(root, "quotes")
    assert raised.value.path == "BTCUSDT-bookTicker-2024-01-01.csv" and "6 columns, expected 7" in raised.value.reason


@pytest.mark.parametrize("name,csv", [
    ("BTCUSDT-1m-2024-01-01.csv", klines_csv([], header=True)),
    ("BTCUSDT-aggTrades-2024-01-01.csv", b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n"),
])
def test_a_header_only_file_says_it_has_no_data_rows(root, name, csv):
    land(root, name, csv)
    with pytest.raises(LandingFileError) as raised:
        read(root, "klines" if "1m" in name else "trades")
    assert raised.value.path == name and "no data rows" in raised.value.reason


# --------------------------------------------------------------------------- Tardis.dev


def tardis(root: Path, data_type: str, header: list[str], rows: list[list], day: str = "2024-01-01",
           exchange: str = "binance-futures") -> str:
    name = f"{exchange}_{data_type}_{day}_BTCUSDT.csv.gz"
    text = "\n".join([",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]) + "\n"
    land(root, name, gzip.compress(text.encode()))
    return name


TRADES_HEADER = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]


def test_tardis_trades_map_the_aggressor_side_and_drop_rows_stamped_before_the_day(root):
    rows = [["binance", "BTCUSDT", DAY_US - 5_000, DAY_US + 2_000, 99, "buy", "42000.5", "0.01"]]  # arrived after midnight
    expected = []
    for i in range(200):
        stamp = DAY_US + i * 400_000_000 + 17  # µs, within the day
        side = "sell" if i % 3 else "buy"
        rows.append(["binance", "BTCUSDT", stamp, stamp + 1_500, 100 + i, side, f"{42000 + i * 0.5:.1f}", f"{0.001 * (i + 1):.3f}"])
        expected.append((100 + i, stamp * 1000, 42000 + i * 0.5, round(0.001 * (i + 1), 3), side == "sell"))
    tardis(root, "trades", TRADES_HEADER, rows, exchange="binance")
    data = read(root, "trades")
    t = data.table
    assert t.schema.equals(TRADES)
    got = list(zip(t.column("trade_id").to_pylist(), ts_ns(t), t.column("price").to_pylist(),
                   t.column("qty").to_pylist(), t.column("is_buyer_maker").to_pylist()))
    assert got == expected
    assert data.provenance["rows_outside_day"] == "1" and data.provenance["time_unit"] == "us"
    assert data.provenance["tardis_data_type"] == "trades" and data.provenance["exchange"] == "binance"


def test_tardis_book_snapshot_5_becomes_long_top_n_rows_skipping_empty_deep_levels(root):
    levels = 5
    header = ["exchange", "symbol", "timestamp", "local_timestamp"] + [
        f"{side}[{i}].{what}" for i in range(levels) for side in ("asks", "bids") for what in ("price", "amount")]
    rows, expected = [], []
    for s in range(4):
        stamp = DAY_US + s * 60_000_000
        row = ["binance-futures", "BTCUSDT", stamp, stamp + 10]
        book = {}
        for i in range(levels):
            for side, sign in (("asks", 1), ("bids", -1)):
                price, qty = 42000 + sign * (0.5 + i), 1.0 + i + s
                if s == 3 and side == "asks" and i == 4:
                    price = qty = None  # a thin book: the deepest ask is missing
                row += [price, qty]
                book[(side, i)] = (price, qty)
        rows.append(row)
        for side in ("bids", "asks"):
            for i in range(levels):
                price, qty = book[(side, i)]
                if price is not None:
                    expected.append({"ts": stamp * 1000, "side": side[:3], "level": i + 1, "price": price, "qty": qty,
                                     "band_pct": None, "notional": price * qty})
    tardis(root, "book_snapshot_5", header, rows)
    table = read(root, "book").table
    assert table.schema.equals(BOOK)
    got = table.to_pylist()
    for record in got:
        record["ts"] = int(record["ts"].timestamp() * 10**6) * 1000
    assert got == expected


def test_tardis_quotes_become_the_canonical_quote_stream(root):
    header = ["exchange", "symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount"]
    rows = [["binance-futures", "BTCUSDT", DAY_US + i * 1_000_000, DAY_US + i * 1_000_000 + 9,
             f"{1 + i / 10:.1f}", f"{42001 + i}", f"{42000 + i}", f"{2 + i / 10:.1f}"] for i in range(50)]
    tardis(root, "quotes", header, rows)
    table = read(root, "quotes").table
    assert table.schema.equals(QUOTES)
    assert ts_ns(table) == [r[2] * 1000 for r in rows]
    assert table.column("bid_price").to_pylist() == [float(r[6]) for r in rows]
    assert table.column("bid_qty").to_pylist() == [float(r[7]) for r in rows]
    assert table.column("ask_price").to_pylist() == [float(r[5]) for r in rows]
    assert table.column("ask_qty").to_pylist() == [float(r[4]) for r in rows]


TICKER_HEADER = ["exchange", "symbol", "timestamp", "local_timestamp", "funding_timestamp", "funding_rate",
                 "predicted_funding_rate", "open_interest", "last_price", "index_price", "mark_price"]


def ticker_rows(day_us: int, start_h: float, end_h: float, rate_of) -> list[list]:
    """A ticker every 10 minutes; funding_timestamp = the next 8-hourly funding time."""
    rows = []
    t = day_us + int(start_h * HOUR_US)
    while t < day_us + int(end_h * HOUR_US):
        next_funding = (t // (8 * HOUR_US) + 1) * 8 * HOUR_US
        rows.append(["binance-futures", "BTCUSDT", t, t + 50, next_funding, rate_of(t, next_funding), None, "100.5",
                     "42000", None, "41999.5"])
        t += 10 * 60 * 10**6
    return rows


def test_tardis_derivative_ticker_yields_the_settlements_whose_funding_time_passed(root):
    def rate_of(t, f):  # the quoted rate drifts within a period; the last quote before f settles
        return f"{(f // HOUR_US) % 97 * 1e-6 + (t % (8 * HOUR_US)) * 1e-18:.12f}"

    prev_day_us = DAY_US - 24 * HOUR_US
    tardis(root, "derivative_ticker", TICKER_HEADER, ticker_rows(DAY_US, 0, 24, rate_of))
    alone = read(root, "funding")
    # without the previous day's file, the 00:00 settlement cannot be seen: 08:00 and 16:00 only
    def last_quote(f):
        quotes = [r for r in ticker_rows(prev_day_us, 0, 48, rate_of) if r[4] == f]
        return float(quotes[-1][5])
    expected = [(DAY_US + h * HOUR_US, last_quote(DAY_US + h * HOUR_US), 8) for h in (8, 16)]
    got = list(zip([v // 1000 for v in ts_ns(alone.table)], alone.table.column("funding_rate").to_pylist(),
                   alone.table.column("funding_interval_hours").to_pylist()))
    assert got == expected
    assert "previous day's derivative_ticker file" in alone.provenance["note"]
    # with it, midnight is seen across the two files
    tardis(root, "derivative_ticker", TICKER_HEADER, ticker_rows(prev_day_us, 0, 24, rate_of), day="2023-12-31")
    both = read(root, "funding")
    assert [v // 1000 for v in ts_ns(both.table)] == [DAY_US, DAY_US + 8 * HOUR_US, DAY_US + 16 * HOUR_US]
    assert both.table.column("funding_rate").to_pylist()[0] == last_quote(DAY_US)
    assert both.provenance["previous_day_file"].startswith("binance-futures_derivative_ticker_2023-12-31")


def test_a_tardis_file_with_a_row_of_the_wrong_width_names_the_file_and_line(root):
    rows = [["binance", "BTCUSDT", DAY_US + i, DAY_US + i, i, "buy", "1.0", "2.0"] for i in range(10)]
    rows[6] = rows[6][:7]
    name = tardis(root, "trades", TRADES_HEADER, rows, exchange="binance")
    with pytest.raises(LandingFileError) as raised:
        read(root, "trades")
    assert raised.value.path == name and "line 8" in raised.value.reason and "7 columns, expected 8" in raised.value.reason


def test_a_truncated_gzip_and_a_header_only_tardis_file_are_named(root):
    name = tardis(root, "trades", TRADES_HEADER, [["binance", "BTCUSDT", DAY_US, DAY_US, 1, "buy", "1", "1"]] * 500,
                  exchange="binance")
    data = (root / name).read_bytes()
    (root / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(LandingFileError, match="not a complete gzip file") as raised:
        read(root, "trades")
    assert raised.value.path == name
    tardis(root, "trades", TRADES_HEADER, [], exchange="binance")
    with pytest.raises(LandingFileError, match="header but no data rows"):
        read(root, "trades")


def test_a_tardis_file_missing_columns_lists_what_is_missing_and_found(root):
    name = tardis(root, "quotes", ["exchange", "symbol", "timestamp", "local_timestamp", "bid_price"],
                  [["binance-futures", "BTCUSDT", DAY_US, DAY_US, "1"]])
    with pytest.raises(LandingFileError) as raised:
        read(root, "quotes")
    assert raised.value.path == name and "missing Tardis quotes column(s) ['ask_amount', 'ask_price', 'bid_amount']" in raised.value.reason


# --------------------------------------------------------------------------- canonical Parquet


def _klines_table(day_ns: int, n: int = 5) -> pa.Table:
    return pa.table({
        "open_time": pa.array(np.arange(n, dtype=np.int64) * 60 * 10**9 + day_ns).cast(pa.timestamp("ns", tz="UTC")),
        **{c: pa.array(np.linspace(1, 2, n)) for c in ("open", "high", "low", "close", "volume", "quote_volume")},
        "trade_count": pa.array(np.arange(n, dtype=np.int64)),
        "taker_buy_volume": pa.array(np.ones(n)), "taker_buy_quote_volume": pa.array(np.ones(n)),
    })


def test_canonical_parquet_in_the_raw_schema_is_read_as_is(root):
    table = _klines_table(DAY_US * 1000)
    land(root, "klines/BTCUSDT/2024-01-01.parquet", b"")
    pq.write_table(table.append_column("note", pa.array(["x"] * 5)), root / "klines/BTCUSDT/2024-01-01.parquet")
    data = read(root, "klines")
    assert data.table.equals(table.cast(KLINES))
    assert data.provenance["ignored_columns"] == "note" and data.provenance["format"] == "parquet"


@pytest.mark.parametrize("change,problem", [
    (lambda t: t.set_column(0, "open_time", t.column("open_time").cast(pa.int64())),
     "column 'open_time': expected timestamp[ns, tz=UTC], found int64"),
    (lambda t: t.drop_columns(["close"]), "column 'close' is missing"),
    (lambda t: t.set_column(4, "close", t.column("close").cast(pa.string())), "column 'close': expected double, found string"),
])
def test_a_canonical_parquet_file_with_a_wrong_schema_names_the_file_column_and_types(root, change, problem):
    path = root / "klines/BTCUSDT/2024-01-01.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(change(_klines_table(DAY_US * 1000)), path)
    with pytest.raises(LandingFileError) as raised:
        read(root, "klines")
    assert raised.value.path == "klines/BTCUSDT/2024-01-01.parquet" and problem in raised.value.reason


def test_a_corrupt_parquet_file_or_one_with_rows_of_another_day_is_refused(root):
    land(root, "klines/BTCUSDT/2024-01-01.parquet", b"PAR1 not really")
    with pytest.raises(LandingFileError, match="not a readable Parquet file"):
        read(root, "klines")
    pq.write_table(_klines_table((DAY_US + 24 * HOUR_US) * 1000), root / "klines/BTCUSDT/2024-01-01.parquet")
    with pytest.raises(LandingFileError, match=r"outside the file's UTC day 2024-01-01"):
        read(root, "klines")


def test_tardis_trades_without_integer_ids_get_row_numbers_and_an_unknown_side_is_refused(root):
    rows = [["okex", "BTCUSDT", DAY_US + i, DAY_US + i, f"t-{i}", "buy", "1.5", "2"] for i in range(5)]
    tardis(root, "trades", TRADES_HEADER, rows, exchange="okex")
    data = read(root, "trades")
    assert data.table.column("trade_id").to_pylist() == [0, 1, 2, 3, 4]
    assert "row number" in data.provenance["trade_id"]
    rows[2][5] = "unknown"
    name = tardis(root, "trades", TRADES_HEADER, rows, exchange="okex")
    with pytest.raises(LandingFileError) as raised:
        read(root, "trades")
    assert raised.value.path == name and "side 'unknown' is neither 'buy' nor 'sell'" in raised.value.reason
