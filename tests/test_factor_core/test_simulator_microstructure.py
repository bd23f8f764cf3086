"""Microstructure of the simulator: the quote stream, trades at the quote in force, sweeps,
the book's top and depth profile, spreads, bid-ask bounce (factor_core.simulator)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from factor_core import simulator
from factor_core.simulator import SimulatedDay, SimulatorConfig, simulate_day, simulate_range

from .test_simulator import DAYS, SYMBOLS, _ns


@pytest.fixture(scope="module")
def days() -> dict[tuple[str, dt.date], SimulatedDay]:
    return simulate_range(SYMBOLS, DAYS[0], DAYS[-1])


def _quote_in_force(quotes: pd.DataFrame, ts_ns: np.ndarray) -> np.ndarray:
    """Row of the last quote with ``ts <= t`` for each t (-1 if none), written with searchsorted."""
    return np.searchsorted(_ns(quotes["ts"]), ts_ns, side="right") - 1


def test_every_trade_prints_at_the_quote_in_force(days):
    """Buyer-initiated trades at the ask, seller-initiated at the bid of the last quote with ts <= trade ts."""
    for (symbol, day), result in days.items():
        t, q = result.trades, result.quotes
        j = _quote_in_force(q, _ns(t["ts"]))
        assert (j >= 0).all(), (symbol, day)  # the day opens with a quote at 00:00
        buyer = ~t["is_buyer_maker"].to_numpy()
        at_touch = np.where(buyer, q["ask_price"].to_numpy()[j], q["bid_price"].to_numpy()[j])
        np.testing.assert_array_equal(t["price"].to_numpy(), at_touch, err_msg=f"{symbol} {day}")
        # and never more than the displayed size
        shown = np.where(buyer, q["ask_qty"].to_numpy()[j], q["bid_qty"].to_numpy()[j])
        assert (t["qty"].to_numpy() <= shown + 1e-12).all(), (symbol, day)
        assert 0.3 < buyer.mean() < 0.7


def test_quote_stream_is_ordered_uncrossed_and_opens_at_midnight(days):
    for (symbol, day), result in days.items():
        q = result.quotes
        ns = _ns(q["ts"])
        start = _ns(pd.Series([pd.Timestamp(day, tz="UTC")]))[0]
        assert ns[0] == start and ns[-1] < start + 86_400 * 10**9
        assert (np.diff(ns) > 0).all()
        assert (q["bid_price"] < q["ask_price"]).all()
        assert (q["bid_qty"] > 0).all() and (q["ask_qty"] > 0).all()
        # a refresh at every minute open
        minute_open = (ns - start) % 60_000_000_000 == 0
        assert minute_open.sum() == 1440
        prof = simulator._profile(symbol)
        for col in ("bid_price", "ask_price"):
            ticks = q[col].to_numpy() * 10.0**prof.tick_decimals
            np.testing.assert_allclose(ticks, np.rint(ticks), rtol=0, atol=1e-6)


def test_sweeping_orders_walk_the_levels_of_the_book_in_force():
    """A print beyond the first level belongs to an order that consumed every level before it.

    With a snapshot every 5 s: when the touch of the sweep's side did not change
    between the snapshot in force and the sweep, the sweep's prices are the
    snapshot's levels in order, and each print takes at most what the level shows.
    """
    config = SimulatorConfig(book_interval_s=5, trades_per_minute=30.0, seed=11)
    result = simulate_day("XRPUSDT", dt.date(2024, 2, 2), config)
    t, q, b = result.trades, result.quotes, result.book
    ns = _ns(t["ts"])
    # prints of one sweep are 1 ns apart on the same side
    cont = np.r_[False, (np.diff(ns) == 1) & (t["is_buyer_maker"].to_numpy()[1:] == t["is_buyer_maker"].to_numpy()[:-1])]
    starts = np.flatnonzero(~cont)
    ends = np.r_[starts[1:], len(t)]
    sweeps = [(a, e) for a, e in zip(starts, ends) if e - a > 1]
    assert len(sweeps) > 20
    levels = config.book_levels
    snap_ns = _ns(b["ts"]).reshape(-1, 2 * levels)[:, 0]
    book_px = b["price"].to_numpy().reshape(-1, 2, levels)
    book_qty = b["qty"].to_numpy().reshape(-1, 2, levels)
    q_ns = _ns(q["ts"])
    checked = 0
    for a, e in sweeps:
        buyer = not t["is_buyer_maker"].iat[a]
        px = t["price"].to_numpy()[a:e]
        qty = t["qty"].to_numpy()[a:e]
        assert (np.diff(px) > 0).all() if buyer else (np.diff(px) < 0).all()
        # every level but the last was emptied: the print took all the quote showed
        j = _quote_in_force(q, ns[a:e])
        shown = (q["ask_qty"] if buyer else q["bid_qty"]).to_numpy()[j]
        np.testing.assert_allclose(qty[:-1], shown[:-1], rtol=1e-12)
        s = np.searchsorted(snap_ns, ns[a], side="right") - 1
        touch = (q["ask_price"] if buyer else q["bid_price"]).to_numpy()
        k0 = np.searchsorted(q_ns, snap_ns[s], side="right") - 1
        if (touch[k0 : j[0] + 1] == px[0]).all():
            side = 1 if buyer else 0
            n = e - a
            np.testing.assert_array_equal(px, book_px[s, side, :n])
            assert (qty <= book_qty[s, side, :n] + 1e-12).all()
            checked += 1
    assert checked > 10


# --------------------------------------------------------------------------- #
# Book
# --------------------------------------------------------------------------- #
def _check_book(result: SimulatedDay, day: dt.date, config: SimulatorConfig) -> None:
    b, q = result.book, result.quotes
    levels, interval = config.book_levels, config.book_interval_s
    n_snap = 86_400 // interval
    assert len(b) == n_snap * 2 * levels
    assert b["band_pct"].isna().all()
    np.testing.assert_array_equal(b["notional"].to_numpy(), (b["price"] * b["qty"]).to_numpy())
    assert (b["qty"] > 0).all()

    price = b["price"].to_numpy().reshape(n_snap, 2, levels)
    qty = b["qty"].to_numpy().reshape(n_snap, 2, levels)
    side = b["side"].to_numpy().reshape(n_snap, 2, levels)
    level = b["level"].to_numpy().reshape(n_snap, 2, levels)
    ts = _ns(b["ts"]).reshape(n_snap, 2 * levels)
    assert (side[:, 0] == "bid").all() and (side[:, 1] == "ask").all()
    assert (level == np.arange(1, levels + 1)).all()
    assert (ts == ts[:, :1]).all()
    grid = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(np.arange(n_snap) * interval, unit="s")
    assert (ts[:, 0] == _ns(grid)).all()

    bid, ask = price[:, 0], price[:, 1]
    assert (bid[:, 0] < ask[:, 0]).all()
    assert (np.diff(bid, axis=1) < 0).all() and (np.diff(ask, axis=1) > 0).all()
    # Depth grows away from the top (on average).
    assert qty[:, :, -1].mean() > 1.5 * qty[:, :, 0].mean()

    # Level 1 of every snapshot is the quote in force at its timestamp, sizes included.
    j = _quote_in_force(q, ts[:, 0])
    assert (j >= 0).all()
    np.testing.assert_array_equal(bid[:, 0], q["bid_price"].to_numpy()[j])
    np.testing.assert_array_equal(ask[:, 0], q["ask_price"].to_numpy()[j])
    np.testing.assert_array_equal(qty[:, 0, 0], q["bid_qty"].to_numpy()[j])
    np.testing.assert_array_equal(qty[:, 1, 0], q["ask_qty"].to_numpy()[j])


def test_book_top_is_the_quote_in_force(days):
    for (symbol, day), result in days.items():
        _check_book(result, day, SimulatorConfig())


def test_book_with_sub_minute_snapshots():
    config = SimulatorConfig(trades_per_minute=3.0, book_interval_s=10, book_levels=4, seed=5)
    day = dt.date(2022, 6, 1)
    _check_book(simulate_day("SOLUSDT", day, config), day, config)


def _band_depth_usd(book: pd.DataFrame, bps: float) -> np.ndarray:
    """Per snapshot: bid + ask notional within +-bps of the mid (written here, not the project's)."""
    out = []
    for _, snap in book.groupby("ts", sort=True):
        bids, asks = snap[snap["side"] == "bid"], snap[snap["side"] == "ask"]
        mid = (bids["price"].max() + asks["price"].min()) / 2
        lo, hi = mid * (1 - bps / 1e4), mid * (1 + bps / 1e4)
        out.append(bids.loc[bids["price"] >= lo, "notional"].sum() + asks.loc[asks["price"] <= hi, "notional"].sum())
    return np.array(out)


def test_depth_profile_differs_by_band_and_alts_are_thinner(days):
    """Depth within +-50 bps is several times the depth within +-10 bps, as on exchange books
    (level gaps grow away from the touch), and majors are deeper than alts."""
    day = DAYS[1]
    depth = {}
    for symbol in SYMBOLS:
        book = days[(symbol, day)].book
        book = book[book["ts"].dt.minute % 30 == 0]  # 48 snapshots are plenty
        d10, d50 = _band_depth_usd(book, 10.0), _band_depth_usd(book, 50.0)
        assert (d50 > d10).all(), symbol
        ratio = np.median(d50 / d10)
        assert 2.0 < ratio < 12.0, (symbol, ratio)
        depth[symbol] = np.median(d10)
    assert depth["BTCUSDT"] > depth["ETHUSDT"] > depth["ZQ7USDT"]
    assert depth["BTCUSDT"] > 10 * depth["ZQ7USDT"]


def test_spread_widens_with_volatility_and_narrows_with_volume():
    """Per minute: OLS of log mean quoted spread on log realised volatility of the mids
    and log volume (numpy lstsq here): positive on volatility, negative on volume."""
    rows = []
    for day in (dt.date(2024, 4, 1), dt.date(2024, 4, 2)):
        r = simulate_day("SOLUSDT", day, SimulatorConfig(seed=2))
        q, k = r.quotes, r.klines
        minute = q["ts"].dt.floor("min")
        mid = (q["bid_price"] + q["ask_price"]) / 2
        spread = ((q["ask_price"] - q["bid_price"]) / mid * 1e4).groupby(minute).mean()
        opens = mid[(_ns(q["ts"]) % 60_000_000_000) == 0].to_numpy()  # the minute-open refreshes
        absret = np.abs(np.diff(np.log(opens)))  # |r| from minute j's open to j+1's
        rows.append(np.column_stack([np.log(spread.to_numpy()[:-1]), np.log(absret + 1e-7),
                                     np.log(k["quote_volume"].to_numpy()[:-1])]))
    y, x_vol, x_volume = np.concatenate(rows).T
    # 15-minute centred means: one minute's |return| or volume is too noisy a proxy
    rv = pd.Series(x_vol).rolling(15, center=True, min_periods=1).mean().to_numpy()
    volume = pd.Series(x_volume).rolling(15, center=True, min_periods=1).mean().to_numpy()
    design = np.column_stack([np.ones_like(y), rv, volume])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert coef[1] > 0.05, coef
    assert coef[2] < -0.05, coef


def _roll_bps(prices: np.ndarray) -> float:
    """Roll (1984): 2 sqrt(-cov(dp_t, dp_t-1)) of log price changes, NaN if cov >= 0."""
    dp = np.diff(np.log(prices))
    cov = np.cov(dp[1:], dp[:-1])[0, 1]
    return 2 * math.sqrt(-cov) * 1e4 if cov < 0 else float("nan")


def test_trades_carry_bid_ask_bounce_so_roll_is_defined(days):
    """Roll's estimator is defined (negative autocovariance) on every simulated day here and
    lands within a factor of two of the mean quoted spread."""
    for (symbol, day), result in days.items():
        roll = _roll_bps(result.trades["price"].to_numpy())
        q = result.quotes
        quoted = ((q["ask_price"] - q["bid_price"]) / ((q["ask_price"] + q["bid_price"]) / 2) * 1e4).mean()
        assert np.isfinite(roll), (symbol, day)
        assert 0.5 * quoted < roll < 2.0 * quoted, (symbol, day, roll, quoted)
