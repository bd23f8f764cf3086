"""Per-minute liquidity on hand-built books, quotes and trades with known answers; robustness; no look-ahead.

Daily estimators: ``test_liquidity_daily.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from factor_core import factors as F
from factor_core import liquidity as L
from factor_core.schemas import BOOK, QUOTES, TRADES

from .test_factors import make_klines

T0 = pd.Timestamp("2024-01-01", tz="UTC")
MIN = pd.Timedelta("1min")


def book_rows(ts, side, prices, qtys, bands=None) -> pd.DataFrame:
    n = len(qtys)
    prices = np.asarray(prices if prices is not None else [np.nan] * n, float)
    qtys = np.asarray(qtys, float)
    band = np.asarray(bands if bands is not None else [np.nan] * n, float)
    notional = prices * qtys if bands is None else qtys * 100.0
    return pd.DataFrame({"ts": pd.DatetimeIndex([ts] * n).as_unit("ns"), "side": [side] * n,
                         "level": np.arange(1, n + 1, dtype=np.int16), "price": prices, "qty": qtys,
                         "band_pct": band, "notional": notional})


def make_book(*parts: pd.DataFrame) -> pd.DataFrame:
    df = pd.concat(parts, ignore_index=True)
    assert list(df.columns) == BOOK.names
    return df


def make_trades(rows) -> pd.DataFrame:
    """rows: (ts, price, qty, buyer_aggressor)."""
    df = pd.DataFrame({"trade_id": np.arange(len(rows), dtype=np.int64),
                       "ts": pd.DatetimeIndex([r[0] for r in rows]).as_unit("ns"),
                       "price": [float(r[1]) for r in rows], "qty": [float(r[2]) for r in rows],
                       "is_buyer_maker": [not r[3] for r in rows]})
    assert list(df.columns) == TRADES.names
    return df


def day_klines() -> pd.DataFrame:
    return make_klines(1, seed=21, price=100.0)


# --------------------------------------------------------------------------- top-N book


def test_top_n_spread_depth_imbalance():
    ts = T0 + 5 * MIN
    book = make_book(
        book_rows(ts, "bid", [100.0, 99.95, 99.0], [1.0, 2.0, 5.0]),
        book_rows(ts, "ask", [100.1, 100.2, 101.0], [3.0, 1.0, 5.0]),
    )
    m = L.minute_liquidity(book, make_trades([]), day_klines())
    assert len(m) == 1440 and list(m.columns) == list(L.MINUTE_COLUMNS)
    row = m.iloc[5]
    mid = 100.05
    assert row["mid"] == pytest.approx(mid)
    assert row["quoted_spread_bps"] == pytest.approx(0.1 / mid * 1e4)
    # ±10 bps of 100.05 = [99.94995, 100.15005]: bids 100, 99.95; ask 100.1
    assert row["depth_10bps_usd"] == pytest.approx(100.0 + 2 * 99.95 + 3 * 100.1)
    # ±50 bps = [99.54975, 100.55025]: bids 100, 99.95; asks 100.1, 100.2
    bid50, ask50 = 100.0 + 2 * 99.95, 3 * 100.1 + 100.2
    assert row["depth_50bps_usd"] == pytest.approx(bid50 + ask50)
    assert row["depth_imbalance"] == pytest.approx((bid50 - ask50) / (bid50 + ask50))
    assert row["n_snapshots"] == 1
    assert m.drop(index=5)["quoted_spread_bps"].isna().all()  # nothing forward-filled


def test_crossed_empty_and_bad_books_give_nan():
    t = [T0 + i * MIN for i in range(4)]
    book = make_book(
        book_rows(t[0], "bid", [100.2], [1.0]), book_rows(t[0], "ask", [100.1], [1.0]),  # crossed
        book_rows(t[1], "bid", [100.0], [1.0]), book_rows(t[1], "ask", [100.0], [1.0]),  # locked
        book_rows(t[2], "bid", [100.0, 99.9], [1.0, 1.0]),  # empty ask side
        book_rows(t[3], "bid", [np.nan, 100.0], [1.0, 1.0]), book_rows(t[3], "ask", [np.inf, 100.1], [1.0, 0.0]),
    )
    trades = make_trades([(t[0] + pd.Timedelta("10s"), 100.15, 1.0, True)])
    with np.errstate(all="raise"):
        m = L.minute_liquidity(book, trades, day_klines())
    vals = m.drop(columns="ts").to_numpy(float)
    assert not np.isinf(vals).any()
    assert m.loc[:3, ["mid", "quoted_spread_bps", "depth_10bps_usd", "depth_imbalance"]].isna().all().all()
    assert np.isnan(m.loc[0, "effective_spread_bps"]) and m.loc[0, "trade_imbalance"] == 1.0
    d = L.daily_liquidity(book, trades, day_klines(), m)
    assert set(d) == set(L.DAILY_KEYS) and not any(math.isinf(v) for v in d.values())


def test_depth_bands_interpolation():
    ts = T0 + 2 * MIN
    # cumulative notional (qty * 100): bid 1% -> 1000, 2% -> 3000; ask 1% -> 2000, 5% -> 10000
    book = make_book(
        book_rows(ts, "bid", None, [10.0, 30.0], bands=[1.0, 2.0]),
        book_rows(ts, "ask", None, [100.0, 20.0], bands=[5.0, 1.0]),  # unsorted bands
    )
    m = L.minute_liquidity(book, make_trades([]), day_klines())
    row = m.iloc[2]
    assert row["depth_10bps_usd"] == pytest.approx(0.1 * 1000 + 0.1 * 2000)
    assert row["depth_50bps_usd"] == pytest.approx(0.5 * 1000 + 0.5 * 2000)
    assert row["depth_imbalance"] == pytest.approx((500 - 1000) / 1500)
    assert np.isnan(row["quoted_spread_bps"]) and np.isnan(row["mid"])  # bands carry no prices
    # beyond the outermost band: NaN, no extrapolation
    from factor_core import kernels as K
    assert np.isnan(K.interp_cumulative_depth(np.array([0.2]), np.array([5.0]), 0.5))
    assert K.interp_cumulative_depth(np.array([0.5, 1.0]), np.array([5.0, 9.0]), 0.5) == 5.0


def make_quotes(rows) -> pd.DataFrame:
    """rows: (ts, bid, bid_qty, ask, ask_qty)."""
    df = pd.DataFrame({"ts": pd.DatetimeIndex([r[0] for r in rows]).as_unit("ns"),
                       "bid_price": [float(r[1]) for r in rows], "bid_qty": [float(r[2]) for r in rows],
                       "ask_price": [float(r[3]) for r in rows], "ask_qty": [float(r[4]) for r in rows]})
    assert list(df.columns) == QUOTES.names
    return df


def _reference_effective_spread_bps(trades: pd.DataFrame, quotes: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per minute: notional-weighted 2 D (p - m) / m * 1e4 against the quote in force
    (pandas merge_asof, backward, exact matches allowed), and the matched count."""
    t = trades.sort_values("ts").assign(D=np.where(trades["is_buyer_maker"], -1.0, 1.0))
    m = pd.merge_asof(t, quotes.sort_values("ts"), on="ts", direction="backward", allow_exact_matches=True)
    ok = (m["bid_price"] < m["ask_price"]) & (m["bid_qty"] > 0) & (m["ask_qty"] > 0)
    m = m[ok]
    mid = (m["bid_price"] + m["ask_price"]) / 2
    e = 2 * m["D"] * (m["price"] - mid) / mid * 1e4
    w = m["price"] * m["qty"]
    minute = m["ts"].dt.floor("min")
    return (e * w).groupby(minute).sum() / w.groupby(minute).sum(), m.groupby(minute).size()


def test_effective_spread_against_the_quote_in_force():
    q0 = T0 + 3 * MIN
    quotes = make_quotes([
        (q0, 100.0, 2.0, 100.2, 2.0),
        (q0 + pd.Timedelta("10s"), 100.1, 1.0, 100.2, 1.0),
        (q0 + pd.Timedelta("30s"), 100.2, 1.0, 100.2, 1.0),  # locked: trades under it are unmatched
        (q0 + pd.Timedelta("40s"), 99.9, 1.0, 100.3, 0.5),
        (q0 + pd.Timedelta("70s"), 100.0, 1.0, 100.1, 1.0),
    ])
    trades = make_trades([
        (q0 - pd.Timedelta("1s"), 100.0, 1.0, True),      # before the first quote: unmatched
        (q0, 100.2, 1.0, True),                           # same ts as a quote: that quote is in force
        (q0 + pd.Timedelta("5s"), 100.0, 3.0, False),
        (q0 + pd.Timedelta("10s"), 100.1, 1.0, False),     # the 10 s quote is in force
        (q0 + pd.Timedelta("35s"), 100.2, 1.0, True),      # locked quote
        (q0 + pd.Timedelta("50s"), 100.35, 0.5, True),     # outside the ask (walked the book)
        (q0 + pd.Timedelta("65s"), 99.9, 1.0, False),
        (q0 + pd.Timedelta("75s"), 100.1, 2.0, True),
    ])
    m = L.minute_liquidity(None, trades, day_klines(), quotes)
    ref, count = _reference_effective_spread_bps(trades, quotes)
    for minute, value in ref.items():
        i = int((minute - T0) / MIN)
        assert m.loc[i, "effective_spread_bps"] == pytest.approx(value, rel=1e-12)
        assert m.loc[i, "n_trades_matched"] == count[minute]
    assert m["n_trades_matched"].sum() == 6 and m["n_trades"].sum() == 8
    assert np.isnan(m.loc[2, "effective_spread_bps"])  # the only trade of 00:02 precedes every quote


def test_time_weighted_quoted_spread_from_quotes():
    q0 = T0 + 7 * MIN
    quotes = make_quotes([
        (q0 - pd.Timedelta("30s"), 100.0, 1.0, 100.1, 1.0),  # in force at 00:07:00
        (q0 + pd.Timedelta("15s"), 100.0, 1.0, 100.3, 1.0),
        (q0 + pd.Timedelta("45s"), 100.0, 1.0, 100.0, 1.0),  # locked: its 15 s are left out
        (q0 + pd.Timedelta("60s"), 100.0, 1.0, 100.2, 1.0),
    ])
    m = L.minute_liquidity(None, None, day_klines(), quotes)

    def rel(b, a):
        return (a - b) / ((a + b) / 2) * 1e4

    assert m.loc[7, "quoted_spread_tw_bps"] == pytest.approx((15 * rel(100, 100.1) + 30 * rel(100, 100.3)) / 45, rel=1e-12)
    assert m.loc[6, "quoted_spread_tw_bps"] == pytest.approx(rel(100, 100.1), rel=1e-12)  # half covered
    assert np.isnan(m.loc[5, "quoted_spread_tw_bps"])  # before the first quote
    np.testing.assert_allclose(m.loc[8:, "quoted_spread_tw_bps"], rel(100, 100.2), rtol=1e-12)  # in force to the end
    assert L.minute_liquidity(None, None, day_klines())["quoted_spread_tw_bps"].isna().all()


def test_effective_spread_falls_back_to_fresh_snapshots_only():
    s0 = T0 + 10 * MIN
    book = make_book(book_rows(s0, "bid", [100.0], [5.0]), book_rows(s0, "ask", [100.1], [5.0]))
    trades = make_trades([
        (s0 + pd.Timedelta("2s"), 100.1, 2.0, True),     # buy at the ask, 2 s after the snapshot
        (s0 + pd.Timedelta("4.5s"), 100.0, 1.0, False),  # sell at the bid, 4.5 s after
        (s0 - pd.Timedelta("5s"), 100.0, 1.0, False),    # before any snapshot: no quote
        (s0 + pd.Timedelta("20s"), 100.3, 1.0, True),    # snapshot 20 s old: too old (max 5 s)
    ])
    m = L.minute_liquidity(book, trades, day_klines())
    mid = 100.05
    e_buy = 2 * (100.1 - mid) / mid * 1e4
    e_sell = 2 * -(100.0 - mid) / mid * 1e4
    w_buy, w_sell = 2 * 100.1, 100.0
    assert m.loc[10, "effective_spread_bps"] == pytest.approx((e_buy * w_buy + e_sell * w_sell) / (w_buy + w_sell))
    assert m.loc[10, "n_trades"] == 3 and m.loc[10, "n_trades_matched"] == 2
    assert m.loc[10, "trade_imbalance"] == pytest.approx((2 + 1 - 1) / 4)
    assert m.loc[10, "n_trades"] == 3 and m.loc[10, "buy_volume"] == 3.0 and m.loc[10, "sell_volume"] == 1.0
    assert m.loc[10, "signed_quote_volume"] == pytest.approx(w_buy - w_sell + 100.3)
    assert np.isnan(m.loc[9, "effective_spread_bps"]) and m.loc[9, "trade_imbalance"] == -1.0
    assert L.MAX_SNAPSHOT_AGE_S == 5.0
    looser = L.minute_liquidity(book, trades, day_klines(), max_snapshot_age_s=30.0)
    assert looser.loc[10, "n_trades_matched"] == 3
    assert np.isnan(m.loc[0, "trade_imbalance"])  # no trades: NaN, not 0/0


def test_minute_rows_have_no_look_ahead():
    rng = np.random.default_rng(24)
    parts = []
    for i in range(0, 120, 1):
        ts = T0 + i * MIN + pd.Timedelta("30s")
        p = 100 + rng.normal(0, 0.1)
        parts += [book_rows(ts, "bid", [p - 0.05, p - 0.1], [1.0, 2.0]), book_rows(ts, "ask", [p + 0.05, p + 0.1], [1.0, 2.0])]
    book = make_book(*parts)
    trades = make_trades([(T0 + pd.Timedelta(seconds=float(s)), 100 + rng.normal(0, 0.1), 1.0, bool(rng.uniform() < 0.5))
                          for s in np.sort(rng.uniform(0, 7200, 500))])
    k = day_klines()
    full = L.minute_liquidity(book, trades, k)
    t = T0 + 61 * MIN
    cut = L.minute_liquidity(book[book["ts"] < t], trades[trades["ts"] < t], k)
    pd.testing.assert_frame_equal(full.iloc[:61], cut.iloc[:61], check_exact=True)


def test_simulated_trades_match_their_quotes_and_feed_factor_bars():
    import datetime as dt

    from factor_core.simulator import SimulatorConfig, simulate_day

    day = simulate_day("BTCUSDT", dt.date(2024, 1, 2), SimulatorConfig())
    m = L.minute_liquidity(day.book, day.trades, day.klines, day.quotes)
    assert len(m) == 1440
    assert m["quoted_spread_bps"].notna().all() and (m["quoted_spread_bps"] > 0).all()
    assert (m["n_trades_matched"] == m["n_trades"]).all()  # every trade has its quote in force
    # a trade at the touch pays the quoted spread: the effective spread is the quoted one,
    # plus what sweeps beyond the first level add
    eff = np.average(m["effective_spread_bps"], weights=m["effective_notional"])
    assert 1.0 <= eff / m["quoted_spread_tw_bps"].mean() < 2.0
    bars = F.compute_factor_bars(day.klines, funding=day.funding, liquidity=m)
    assert len(bars) == 24 and bars["liq_quoted_spread_bps"].notna().all()
    assert bars["liq_effective_spread_bps"].notna().all()
    assert bars["funding_rate"].notna().sum() >= 16
