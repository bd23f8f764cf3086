"""Data-quality checks over canonical frames."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import agg_trade_rows, agg_trades_csv, book_depth_csv, book_depth_rows, kline_rows, klines_csv  # noqa: E402

from factor_core import quality as q  # noqa: E402
from factor_core.binance import parse_csv  # noqa: E402
from factor_core.schemas import BOOK  # noqa: E402

DAY = date(2024, 1, 1)


@pytest.fixture(scope="module")
def klines():
    return parse_csv(klines_csv(kline_rows(DAY, seed=1)), "klines", source="k", day=DAY)


@pytest.fixture(scope="module")
def trades():
    return parse_csv(agg_trades_csv(agg_trade_rows(DAY, n=2000)), "aggTrades", source="t", day=DAY)


def test_clean_data_passes_every_check(klines, trades):
    book = parse_csv(book_depth_csv(book_depth_rows(DAY)), "bookDepth", source="b", day=DAY)
    for asset, df in [("raw_klines", klines), ("raw_trades", trades), ("raw_book", book)]:
        for outcome in q.run_checks(asset, df, DAY):
            assert outcome.passed, (asset, outcome)
        for outcome in q.run_checks(asset, df.to_pandas(), DAY.isoformat()):  # pandas + str day
            assert outcome.passed, (asset, outcome)


def test_klines_missing_minutes_as_ranges(klines):
    keep = np.ones(1440, dtype=bool)
    keep[[0, 1, 2, 600, 1439]] = False
    out = q.check_klines_complete(klines.filter(pa.array(keep)), DAY)
    assert not out.passed
    assert out.details["missing_count"] == 5
    assert out.details["missing_ranges"] == ["00:00-00:02", "10:00", "23:59"]
    assert "1435 of 1440" in out.description and "00:00-00:02" in out.description


def test_timestamps_order_and_day(klines, trades):
    df = klines.to_pandas()
    df.loc[10, "open_time"] = df.loc[9, "open_time"]
    df.loc[20, "open_time"] = pd.Timestamp("2024-01-02 00:05", tz="UTC")
    out = q.check_timestamps(df, DAY)
    assert not out.passed
    assert out.details["outside_day_count"] == 1 and out.details["order_violations"] >= 2
    assert out.details["outside_day_examples"] == ["2024-01-02T00:05:00+00:00"]
    tdf = trades.to_pandas()
    tdf.loc[5, "ts"] = tdf.loc[4, "ts"]  # equal trade times are fine
    assert q.check_timestamps(tdf, DAY).passed
    tdf.loc[6, "ts"] = tdf.loc[0, "ts"] - pd.Timedelta("1s")
    assert not q.check_timestamps(tdf, DAY).passed


def test_ohlc_and_volumes(klines):
    df = klines.to_pandas()
    df.loc[3, "low"] = df.loc[3, "high"] + 1
    df.loc[7, "close"] = df.loc[7, "high"] * 2
    df.loc[9, "volume"] = -1.0
    out = q.check_ohlc_consistent(df, DAY)
    assert not out.passed and out.details["violations"] == 2
    assert out.details["examples"][0]["open_time"] == "2024-01-01T00:03:00+00:00"
    vol = q.check_volumes_non_negative(df, DAY)
    assert not vol.passed and vol.details["violations"]["volume"] == {"count": 1, "examples": [-1.0]}


def test_duplicate_trade_ids_and_trades_in_day(trades):
    df = trades.to_pandas()
    df.loc[10, "trade_id"] = df.loc[11, "trade_id"]
    df.loc[12, "ts"] = pd.Timestamp("2023-12-31 23:59:59", tz="UTC")
    dup = q.check_no_duplicate_trade_ids(df, DAY)
    assert not dup.passed and dup.details["examples"] == [int(df.loc[11, "trade_id"])]
    out = q.check_trades_in_day(df, DAY)
    assert not out.passed and out.details["examples"] == ["2023-12-31T23:59:59+00:00"]


def test_book_crossed_and_bands():
    ts = pd.Timestamp("2024-01-01 00:00", tz="UTC")
    rows = []
    for i, (bid, ask) in enumerate([(100.0, 100.5), (101.0, 100.9)]):
        t = ts + pd.Timedelta(seconds=i)
        for lvl in (1, 2):
            rows.append((t, "bid", lvl, bid - (lvl - 1), 1.0, None, bid))
            rows.append((t, "ask", lvl, ask + (lvl - 1), 1.0, None, ask))
    table = pa.Table.from_pylist([dict(zip(BOOK.names, r)) for r in rows], schema=BOOK)
    out = q.check_book_not_crossed(table, DAY)
    assert not out.passed and out.details["crossed_count"] == 1
    assert out.details["crossed_examples"] == [
        {"ts": "2024-01-01T00:00:01+00:00", "best_bid": 101.0, "best_ask": 100.9}]
    book = parse_csv(book_depth_csv(book_depth_rows(DAY)), "bookDepth", source="b", day=DAY).to_pandas()
    book.loc[1, "qty"] = 0.0  # band 2 shallower than band 1
    out = q.check_book_not_crossed(book, DAY)
    assert not out.passed and out.details["band_depth_decreasing"] == 1


# --------------------------------------------------------------------------- quotes

KEY = "2024-01-01|BTCUSDT"


@pytest.fixture(scope="module")
def simulated():
    from factor_core.simulator import simulate_day

    return simulate_day("BTCUSDT", DAY)


def test_simulated_quotes_and_trades_pass_every_quote_check(simulated):
    for outcome in q.run_checks("raw_quotes", simulated.quotes, KEY):
        assert outcome.passed, outcome
        assert outcome.description.startswith(KEY)
    inside = q.check_trades_inside_quotes(simulated.trades, simulated.quotes, KEY)
    assert inside.passed and inside.details["outside"] == 0 and inside.details["matched_share"] == 1.0


def test_quotes_out_of_time_order_fail_and_name_the_partition_and_share(simulated):
    quotes = simulated.quotes.copy()
    quotes.loc[100, "ts"] = quotes.loc[50, "ts"]  # one row jumps back in time
    out = q.check_quotes_in_time_order(quotes, KEY)
    assert not out.passed and out.details["out_of_order"] == 1
    share = 1 / (len(quotes) - 1)
    assert out.details["out_of_order_share"] == pytest.approx(share)
    assert KEY in out.description and f"{share:.2%}" in out.description
    assert out.details["out_of_order_examples"][0]["row"] == 100


def test_crossed_and_locked_quotes_fail(simulated):
    quotes = simulated.quotes.copy()
    quotes.loc[10, "bid_price"] = quotes.loc[10, "ask_price"] + 0.01  # crossed
    quotes.loc[20, "bid_price"] = quotes.loc[20, "ask_price"]  # locked
    out = q.check_quotes_not_crossed(quotes, KEY)
    assert not out.passed and out.details["crossed"] == 1 and out.details["locked"] == 1
    assert out.details["share"] == pytest.approx(2 / len(quotes))
    assert KEY in out.description and "1 crossed and 1 locked" in out.description
    assert q.check_quotes_not_crossed(quotes, KEY, max_share=0.01).passed  # a configured tolerance


def test_zero_size_quote_fails(simulated):
    quotes = simulated.quotes.copy()
    quotes.loc[5, "ask_qty"] = 0.0
    out = q.check_quotes_positive(quotes, KEY)
    assert not out.passed and out.details["violations"]["ask_qty"]["count"] == 1
    assert KEY in out.description and "ask_qty" in out.description


def test_a_day_with_trades_but_no_quotes_passes_with_a_note(simulated):
    out = q.check_trades_inside_quotes(simulated.trades, None, KEY)
    assert out.passed and out.details["checked"] is False
    assert "no quotes" in out.description and KEY in out.description
    empty = simulated.quotes.iloc[:0]
    assert q.check_trades_inside_quotes(simulated.trades, empty, KEY).details["checked"] is False
    # with book snapshots only, the trades at most 5 s after a snapshot are checked against its top
    snap = q.check_trades_inside_quotes(simulated.trades, None, KEY, book=simulated.book)
    assert snap.details["checked"] and snap.details["quote_source"] == "book"
    assert 0 < snap.details["matched_share"] < 0.2 and snap.passed


def test_trades_far_outside_the_quote_fail_and_name_the_partition_and_share(simulated):
    trades = simulated.trades.copy()
    bad = trades.index % 10 == 0  # every tenth trade prints 1 % away
    trades.loc[bad, "price"] *= np.where(trades.loc[bad, "is_buyer_maker"], 0.99, 1.01)
    out = q.check_trades_inside_quotes(trades, simulated.quotes, KEY)
    # independent share: pandas merge_asof of each trade onto the last quote at or before it
    m = pd.merge_asof(trades.sort_values("ts"), simulated.quotes, on="ts", direction="backward")
    share = float(((m["price"] < m["bid_price"]) | (m["price"] > m["ask_price"])).mean())
    assert share == pytest.approx(bad.mean())
    assert not out.passed and out.details["outside_share"] == pytest.approx(share)
    assert KEY in out.description and f"{share:.2%}" in out.description and "limit 5.00%" in out.description
    assert q.check_trades_inside_quotes(trades, simulated.quotes, KEY, max_outside_share=0.2).passed
