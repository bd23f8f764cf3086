"""Liquidity metrics on hand-built books/trades with known answers, plus robustness and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from factor_core import factors as F
from factor_core import liquidity as L
from factor_core.schemas import BOOK, TRADES

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


def test_effective_spread_trade_imbalance_and_staleness():
    s0 = T0 + 10 * MIN
    book = make_book(book_rows(s0, "bid", [100.0], [5.0]), book_rows(s0, "ask", [100.1], [5.0]))
    trades = make_trades([
        (s0 + pd.Timedelta("5s"), 100.1, 2.0, True),     # buy at the ask
        (s0 + pd.Timedelta("20s"), 100.0, 1.0, False),   # sell at the bid
        (s0 - pd.Timedelta("5s"), 100.0, 1.0, False),    # before any snapshot: no mid
        (s0 + pd.Timedelta("10min"), 100.3, 1.0, True),  # mid too old (> 5 min)
    ])
    m = L.minute_liquidity(book, trades, day_klines())
    mid = 100.05
    e_buy = 2 * (100.1 - mid) / mid * 1e4
    e_sell = 2 * -(100.0 - mid) / mid * 1e4
    w_buy, w_sell = 2 * 100.1, 100.0
    assert m.loc[10, "effective_spread_bps"] == pytest.approx((e_buy * w_buy + e_sell * w_sell) / (w_buy + w_sell))
    assert m.loc[10, "trade_imbalance"] == pytest.approx((2 - 1) / 3)
    assert m.loc[10, "n_trades"] == 2 and m.loc[10, "buy_volume"] == 2.0 and m.loc[10, "sell_volume"] == 1.0
    assert m.loc[10, "signed_quote_volume"] == pytest.approx(w_buy - w_sell)
    assert np.isnan(m.loc[9, "effective_spread_bps"]) and m.loc[9, "trade_imbalance"] == -1.0
    assert np.isnan(m.loc[20, "effective_spread_bps"]) and m.loc[20, "n_trades"] == 1
    assert np.isnan(m.loc[0, "trade_imbalance"])  # no trades: NaN, not 0/0


# --------------------------------------------------------------------------- daily estimators


def test_daily_estimators_against_references():
    rng = np.random.default_rng(22)
    k = day_klines()
    n = len(k)
    # plant a Kyle lambda: r_bps = 5 * signed flow in $M + noise
    flow = rng.normal(0, 0.2e6, n)
    r = np.r_[0.0, 5.0 * flow[1:] * 1e-6 + rng.normal(0, 0.5, n - 1)] * 1e-4
    close = 100 * np.exp(np.cumsum(r))
    k["close"] = close
    k["open"] = np.r_[100.0, close[:-1]]
    k["high"] = np.maximum(k["open"], k["close"]) * 1.0002
    k["low"] = np.minimum(k["open"], k["close"]) * 0.9998
    k["quote_volume"] = np.abs(flow) * 3 + 1e5
    k["taker_buy_quote_volume"] = (k["quote_volume"] + flow) / 2
    k["volume"] = k["quote_volume"] / close
    k["taker_buy_volume"] = k["taker_buy_quote_volume"] / close
    d = L.daily_liquidity(make_book(book_rows(T0, "bid", [1.0], [1.0])).iloc[:0], make_trades([]), k)
    assert d["kyle_lambda_bps_per_musd"] == pytest.approx(5.0, rel=0.05)
    rr = np.log(k["close"] / k["close"].shift(1))
    assert d["amihud_per_musd"] == pytest.approx((rr.abs() / k["quote_volume"]).mean() * 1e6, rel=1e-9)
    h, lo = k["high"], k["low"]
    beta = np.log(h / lo) ** 2 + np.log(h.shift(1) / lo.shift(1)) ** 2
    gamma = np.log(np.maximum(h, h.shift(1)) / np.minimum(lo, lo.shift(1))) ** 2
    kk = 3 - 2 * math.sqrt(2)
    alpha = ((np.sqrt(2 * beta) - np.sqrt(beta)) / kk - np.sqrt(gamma / kk)).clip(lower=0)
    cs = 2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))
    assert d["cs_spread_bps"] == pytest.approx(cs.mean() * 1e4, rel=1e-9)
    assert d["quote_volume"] == pytest.approx(k["quote_volume"].sum())
    # VPIN from the klines' taker volumes (no trades): reference with equal buckets
    assert 0 <= d["vpin"] <= 1
    assert np.isnan(d["quoted_spread_bps"]) and np.isnan(d["effective_spread_bps"])


def test_daily_vpin_and_roll_from_trades():
    rng = np.random.default_rng(23)
    n = 5000
    ts = T0 + pd.to_timedelta(np.sort(rng.uniform(0, 86_399, n)), unit="s")
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 2e-5, n)))
    buy = rng.uniform(size=n) < 0.5
    price = mid * np.where(buy, 1.0005, 0.9995)  # 10 bps spread, bounce
    trades = make_trades(list(zip(ts, price, np.ones(n), buy, strict=True)))
    d = L.daily_liquidity(None, trades, None)
    assert d["roll_spread_bps"] == pytest.approx(10.0, rel=0.1)
    # reference VPIN: 50 buckets of 100 unit trades each
    b = buy.reshape(50, 100).sum(axis=1)
    assert d["vpin"] == pytest.approx(np.mean(np.abs(2 * b - 100) / 100), rel=1e-9)
    assert d["trade_imbalance"] == pytest.approx((buy.sum() - (~buy).sum()) / n)
    assert d["n_trades"] == n


def test_empty_and_zero_volume_inputs():
    k = day_klines()
    for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
        k[col] = 0.0
    k.loc[5:10, "close"] = np.nan
    empty_book = make_book(book_rows(T0, "bid", [1.0], [1.0])).iloc[:0]
    with np.errstate(divide="raise"):
        m = L.minute_liquidity(empty_book, make_trades([]), k)
        d = L.daily_liquidity(empty_book, make_trades([]), k, m)
    assert len(m) == 1440 and m.drop(columns=["ts", "n_snapshots", "n_trades", "buy_volume", "sell_volume",
                                              "signed_quote_volume", "effective_notional"]).isna().all().all()
    assert np.isnan(d["amihud_per_musd"]) and np.isnan(d["vpin"]) and np.isnan(d["kyle_lambda_bps_per_musd"])
    nothing = L.minute_liquidity(None, None, None)
    assert len(nothing) == 0 and list(nothing.columns) == list(L.MINUTE_COLUMNS)
    assert all(np.isnan(v) for v in L.daily_liquidity(None, None, None).values())


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


def test_with_simulator_and_factor_join():
    sim = pytest.importorskip("factor_core.simulator")
    import datetime as dt

    day = sim.simulate_day("BTCUSDT", dt.date(2024, 1, 2), sim.SimulatorConfig())
    m = L.minute_liquidity(day.book, day.trades, day.klines)
    assert len(m) == 1440
    assert m["quoted_spread_bps"].notna().all() and (m["quoted_spread_bps"] > 0).all()
    d = L.daily_liquidity(day.book, day.trades, day.klines, m)
    assert all(np.isfinite(v) for k, v in d.items() if k != "roll_spread_bps")
    bars = F.compute_factor_bars(day.klines, funding=day.funding, liquidity=m)
    assert len(bars) == 24 and bars["liq_quoted_spread_bps"].notna().all()
    assert bars["funding_rate"].notna().sum() >= 16
