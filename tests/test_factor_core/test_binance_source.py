"""fetch_datasets: every raw dataset of a run at once, quotes from bookTicker, failures collected."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import (  # noqa: E402
    BinanceReplica,
    agg_trade_rows,
    agg_trades_csv,
    archive_path,
    book_depth_csv,
    book_depth_rows,
    book_ticker_csv,
    book_ticker_rows,
    funding_csv,
    funding_rows,
    kline_rows,
    klines_csv,
    to_csv,
)

from factor_core.binance import BinanceUrls, ChecksumMismatch, NotAvailableYet, ParseError  # noqa: E402
from factor_core.binance.source import (  # noqa: E402
    BinanceSourceConfig,
    PartitionFetchError,
    fetch_datasets,
)
from factor_core.partition_data import PartitionData  # noqa: E402
from factor_core.schemas import QUOTES  # noqa: E402

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAYS = [date(2024, 3, 1), date(2024, 3, 2)]
PAIRS = [(s, d) for s in SYMBOLS for d in DAYS]


@pytest.fixture
def replica():
    with BinanceReplica() as server:
        yield server


def config(replica) -> BinanceSourceConfig:
    return BinanceSourceConfig(urls=BinanceUrls(replica.url, replica.url, replica.url))


def ms_to_ns(text: str) -> int:
    return int(text) * 1_000_000


def publish(replica, *, quotes_for=SYMBOLS) -> dict:
    served: dict = {}
    for i, symbol in enumerate(SYMBOLS):
        for j, day in enumerate(DAYS):
            label, seed = day.isoformat(), 10 * i + j
            served[("klines", symbol, day)] = rows = kline_rows(day, seed=seed)
            replica.put_archive("spot", "daily", "klines", symbol, label, klines_csv(rows), interval="1m")
            served[("trades", symbol, day)] = rows = agg_trade_rows(day, n=200, seed=seed)
            replica.put_archive("spot", "daily", "aggTrades", symbol, label, agg_trades_csv(rows))
            served[("book", symbol, day)] = rows = book_depth_rows(day, snapshots=3, seed=seed)
            replica.put_archive("futures/um", "daily", "bookDepth", symbol, label, book_depth_csv(rows))
            if symbol in quotes_for:
                served[("quotes", symbol, day)] = rows = book_ticker_rows(day, n=300, seed=seed)
                replica.put_archive("futures/um", "daily", "bookTicker", symbol, label,
                                    book_ticker_csv(rows, header=(j == 0)))  # some files lack the header
        served[("funding", symbol)] = rows = funding_rows(2024, 3, seed=i)
        replica.put_archive("futures/um", "monthly", "fundingRate", symbol, "2024-03", funding_csv(rows))
    return served


def test_every_dataset_of_every_partition_in_one_call_with_funding_fetched_once_per_month(replica):
    served = publish(replica)
    out = fetch_datasets(["klines", "trades", "book", "funding", "quotes"], PAIRS, config(replica))
    assert sorted(out) == ["book", "funding", "klines", "quotes", "trades"]
    for dataset, parts in out.items():
        assert sorted(parts) == sorted(PAIRS), dataset
        assert all(isinstance(p, PartitionData) for p in parts.values())
    for symbol, day in PAIRS:
        klines = out["klines"][(symbol, day)].table
        assert klines.column("close").to_pylist() == [float(r[4]) for r in served[("klines", symbol, day)]]
        trades = out["trades"][(symbol, day)].table
        assert trades.column("trade_id").to_pylist() == [int(r[0]) for r in served[("trades", symbol, day)]]
        quotes = out["quotes"][(symbol, day)]
        rows = served[("quotes", symbol, day)]
        assert quotes.table.schema.equals(QUOTES)
        assert quotes.table.column("ts").cast("int64").to_pylist() == [ms_to_ns(r[5]) for r in rows]
        assert quotes.table.column("ask_price").to_pylist() == [float(r[3]) for r in rows]
        assert quotes.provenance["checksum_verified"] == "true" and quotes.checksum_verified is True
        assert quotes.provenance["url"].endswith(f"/futures/um/daily/bookTicker/{symbol}/{symbol}-bookTicker-{day}.zip")
        start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
        expected = [r for r in served[("funding", symbol)] if start <= int(r[0]) < start + 86_400_000]
        funding = out["funding"][(symbol, day)].table
        assert funding.column("ts").cast("int64").to_pylist() == [ms_to_ns(r[0]) for r in expected]
    for symbol in SYMBOLS:  # two day partitions, one monthly download (and its CHECKSUM)
        path = archive_path("futures/um", "monthly", "fundingRate", symbol, "2024-03")
        assert len(replica.requests_to(path)) == 1 and len(replica.requests_to(path + ".CHECKSUM")) == 1


def test_a_symbol_without_futures_book_ticker_gets_an_empty_quotes_partition_that_says_why(replica):
    publish(replica, quotes_for=["BTCUSDT"])
    out = fetch_datasets(["quotes"], PAIRS, config(replica))["quotes"]
    missing = out[("ETHUSDT", date(2024, 3, 1))]
    assert missing.table.num_rows == 0 and missing.table.schema.equals(QUOTES)
    reason = missing.provenance["reason"]
    assert "Binance publishes none for spot" in reason and "ETHUSDT-bookTicker-2024-03-01.zip" in reason
    assert missing.provenance["source"] == "none" and missing.checksum_verified is None
    assert out[("BTCUSDT", date(2024, 3, 1))].table.num_rows == 300


def test_failures_of_every_dataset_are_raised_together_naming_each_partition_and_cause(replica):
    publish(replica)
    bad_klines = replica.put_archive("spot", "daily", "klines", "ETHUSDT", "2024-03-02",
                                     klines_csv(kline_rows(DAYS[1])), interval="1m", checksum="wrong")
    replica.files.pop(archive_path("spot", "daily", "aggTrades", "BTCUSDT", "2024-03-01"))
    ticker = [r[:6] for r in book_ticker_rows(DAYS[0], n=20)]
    replica.put_archive("futures/um", "daily", "bookTicker", "BTCUSDT", "2024-03-01", to_csv(ticker))
    with pytest.raises(PartitionFetchError) as raised:
        fetch_datasets(["klines", "trades", "quotes"], PAIRS, config(replica))
    failures = raised.value.failures
    assert set(failures) == {("klines", "ETHUSDT", DAYS[1]), ("trades", "BTCUSDT", DAYS[0]),
                             ("quotes", "BTCUSDT", DAYS[0])}
    assert isinstance(failures[("klines", "ETHUSDT", DAYS[1])], ChecksumMismatch)
    assert isinstance(failures[("trades", "BTCUSDT", DAYS[0])], NotAvailableYet)
    assert isinstance(failures[("quotes", "BTCUSDT", DAYS[0])], ParseError)
    message = str(raised.value)
    assert "3 partition(s) could not be fetched; nothing was stored" in message
    assert f"klines 2024-03-02|ETHUSDT: checksum mismatch for {replica.url}{bad_klines}" in message
    assert "trades 2024-03-01|BTCUSDT: " in message and "not published yet" in message
    assert "quotes 2024-03-01|BTCUSDT: " in message and "BTCUSDT-bookTicker-2024-03-01.zip" in message
    assert "6 columns, expected 7" in message


def test_unknown_datasets_and_invalid_symbols_are_refused_before_any_request(replica):
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) \['ohlc'\]"):
        fetch_datasets(["klines", "ohlc"], PAIRS, config(replica))
    with pytest.raises(ValueError, match="invalid symbol"):
        fetch_datasets(["klines"], [("btc", DAYS[0])], config(replica))
    assert replica.requests == []
