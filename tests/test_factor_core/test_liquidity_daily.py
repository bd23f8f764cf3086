"""Daily liquidity estimators against independent implementations written here, on generated
inputs whose answer is known; the cross-day VPIN state; users with 1-minute bars only."""

from __future__ import annotations

import datetime as dt
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from factor_core import liquidity as L

from .test_factors import make_klines
from .test_liquidity import make_trades

DAY = dt.date(2024, 1, 1)
T0 = pd.Timestamp(DAY, tz="UTC")


def _trades_for(day: dt.date, n: int, seed: int, *, buy_prob: float = 0.5, spread: float = 1e-3):
    """n trades over the UTC day: a random-walk mid, prints at mid * (1 +- spread / 2)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(day, tz="UTC")
    ts = start + pd.to_timedelta(np.sort(rng.uniform(0, 86_399, n)), unit="s")
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 2e-5, n)))
    buy = rng.uniform(size=n) < buy_prob
    price = mid * np.where(buy, 1 + spread / 2, 1 - spread / 2)
    qty = rng.lognormal(0, 0.5, n)
    return make_trades(list(zip(ts, price, qty, buy, strict=True)))


# --------------------------------------------------------------------------- Kyle / Hasbrouck


def test_kyle_lambda_is_hasbrouck_5_minute_returns_on_signed_sqrt_dollar_volume():
    """Plant r_n = 0.02 * S_n + noise on 5-minute intervals; the reference regresses the
    5-minute returns of the last prices on sum(sign * sqrt(|D p q|)) (pandas groupby, numpy
    lstsq through the origin)."""
    rng = np.random.default_rng(31)
    rows = []
    log_p = math.log(100.0)
    lam = 0.02  # bps per sqrt(USD)
    for n in range(288):
        k = rng.integers(1, 8)
        t = T0 + pd.Timedelta(minutes=5 * n) + pd.to_timedelta(np.sort(rng.uniform(1, 299, k)), unit="s")
        buy = rng.uniform(size=k) < 0.5
        qty = rng.lognormal(0, 1, k)
        p_guess = math.exp(log_p)
        s_n = np.sum(np.where(buy, 1, -1) * np.sqrt(p_guess * qty))
        log_p_end = log_p + (lam * s_n + rng.normal(0, 0.2)) * 1e-4
        prices = np.r_[np.full(k - 1, p_guess), math.exp(log_p_end)]  # the interval ends at its planted price
        rows += list(zip(t, prices, qty, buy, strict=True))
        log_p = log_p_end
    trades = make_trades(rows)
    d = L.compute_daily(DAY, trades=trades)

    t = trades.assign(n=((trades["ts"] - T0) // pd.Timedelta(minutes=5)).astype(int))
    v = np.where(t["is_buyer_maker"], -1.0, 1.0) * t["price"] * t["qty"]
    s = pd.Series(np.sign(v) * np.sqrt(np.abs(v))).groupby(t["n"]).sum().reindex(range(288), fill_value=0.0)
    last = t.groupby("n")["price"].last().reindex(range(288)).ffill()
    r = 1e4 * np.log(last / last.shift(1))
    ok = r.notna()
    ref = np.linalg.lstsq(s[ok].to_numpy()[:, None], r[ok].to_numpy(), rcond=None)[0][0]
    assert d.values["kyle_lambda_bps_per_sqrt_usd"] == pytest.approx(ref, rel=1e-10)
    assert d.values["kyle_lambda_bps_per_sqrt_usd"] == pytest.approx(lam, rel=0.15)


def test_kyle_lambda_needs_enough_intervals():
    trades = make_trades([(T0 + pd.Timedelta(minutes=5 * i, seconds=1), 100 + i, 1.0, True) for i in range(10)])
    d = L.compute_daily(DAY, trades=trades)
    assert np.isnan(d.values["kyle_lambda_bps_per_sqrt_usd"])
    assert "five-minute intervals" in d.null_reasons["kyle_lambda_bps_per_sqrt_usd"]


# --------------------------------------------------------------------------- bar measures


def _gapped_klines(seed: int) -> pd.DataFrame:
    """Klines whose bars open away from the previous close, so Corwin-Schultz's gap rule bites."""
    k = make_klines(1, seed=seed, price=100.0)
    rng = np.random.default_rng(seed)
    shift = 1 + rng.normal(0, 8e-4, len(k))
    for col in ("open", "high", "low"):
        k[col] = k[col] * shift  # close stays: open / range jump relative to the previous close
    k["high"] = k[["open", "high", "close"]].max(axis=1)
    k["low"] = k[["open", "low", "close"]].min(axis=1)
    return k


def _cs_reference(k: pd.DataFrame, adjust: bool) -> float:
    """Corwin & Schultz (2012) with their overnight adjustment, vectorised with pandas."""
    h, lo, c = k["high"], k["low"], k["close"]
    h1, l1 = h.copy(), lo.copy()
    if adjust:
        up = lo > c.shift(1)
        down = h < c.shift(1)
        h1 = h1.where(~up, h - (lo - c.shift(1))).where(~down, h + (c.shift(1) - h))
        l1 = l1.where(~up, c.shift(1)).where(~down, lo + (c.shift(1) - h))
    beta = np.log(h.shift(1) / lo.shift(1)) ** 2 + np.log(h1 / l1) ** 2
    gamma = np.log(np.maximum(h.shift(1), h1) / np.minimum(lo.shift(1), l1)) ** 2
    kk = 3 - 2 * math.sqrt(2)
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / kk - np.sqrt(gamma / kk)
    s = (2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))).clip(lower=0)
    return float(s.mean() * 1e4)


def test_corwin_schultz_with_the_papers_gap_adjustment():
    k = _gapped_klines(40)
    d = L.compute_daily(DAY, klines=k)
    assert d.values["cs_spread_bps"] == pytest.approx(_cs_reference(k, adjust=True), rel=1e-12)
    # the adjustment matters on these bars (otherwise the test would prove nothing)
    assert abs(_cs_reference(k, adjust=False) / _cs_reference(k, adjust=True) - 1) > 0.05


def test_amihud_price_impact_roll_on_closes_against_references():
    rng = np.random.default_rng(22)
    k = make_klines(1, seed=21, price=100.0)
    n = len(k)
    flow = rng.normal(0, 0.2e6, n)  # signed quote flow per minute
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
    d = L.compute_daily(DAY, klines=k).values

    rr = np.log(k["close"] / k["close"].shift(1))
    assert d["amihud_per_musd"] == pytest.approx((rr.abs() / k["quote_volume"]).mean() * 1e6, rel=1e-12)
    x = (2 * k["taker_buy_quote_volume"] - k["quote_volume"]) * 1e-6
    slope = np.polyfit(x[1:], 1e4 * rr[1:], 1)[0]
    assert d["price_impact_1m_bps_per_musd"] == pytest.approx(slope, rel=1e-9)
    assert d["price_impact_1m_bps_per_musd"] == pytest.approx(5.0, rel=0.05)
    dp = np.diff(np.log(close))
    cov = np.cov(dp[1:], dp[:-1], ddof=1)[0, 1]
    expected = 2 * math.sqrt(-cov) * 1e4 if cov < 0 else float("nan")
    if np.isfinite(expected):
        assert d["roll_spread_1m_bps"] == pytest.approx(expected, rel=1e-9)
    assert d["quote_volume"] == pytest.approx(k["quote_volume"].sum(), rel=1e-12)
    assert d["volume"] == pytest.approx(k["volume"].sum(), rel=1e-12)


def test_roll_from_trades_and_its_convention_for_positive_autocovariance():
    trades = _trades_for(DAY, 5000, seed=23, spread=1e-3)  # 10 bps spread, bid-ask bounce
    d = L.compute_daily(DAY, trades=trades)
    dp = np.diff(np.log(trades["price"].to_numpy()))
    cov = np.cov(dp[1:], dp[:-1], ddof=1)[0, 1]
    assert d.values["roll_spread_bps"] == pytest.approx(2 * math.sqrt(-cov) * 1e4, rel=1e-9)
    assert d.values["roll_spread_bps"] == pytest.approx(10.0, rel=0.1)
    # a trending series (positive autocovariance): undefined, and the reason says so
    rng = np.random.default_rng(24)
    dp = np.zeros(500)
    for i in range(1, 500):  # AR(1) price changes with phi = 0.8: momentum, not bounce
        dp[i] = 0.8 * dp[i - 1] + rng.normal(0, 1e-4)
    trend = make_trades([(T0 + pd.Timedelta(seconds=i), 100 * math.exp(x), 1.0, True)
                         for i, x in enumerate(np.cumsum(dp))])
    t = L.compute_daily(DAY, trades=trend)
    assert np.isnan(t.values["roll_spread_bps"])
    assert "autocovariance" in t.null_reasons["roll_spread_bps"] and ">= 0" in t.null_reasons["roll_spread_bps"]


# --------------------------------------------------------------------------- VPIN across days


def _reference_vpin_chain(days_buy_sell: list[tuple[np.ndarray, np.ndarray]], window: int = 50,
                          per_day: int = 50, volume_days: int = 5) -> list[float]:
    """Pour each day's (buy, sell) sequence into buckets sized by the previous days' mean
    volume / 50, the open bucket and the last 50 imbalances carried over midnight; a day
    without a previous day has no bucket size (NaN) and starts nothing."""
    out, volumes, window_imb = [], [], []
    fill = fill_buy = 0.0
    for buy, sell in days_buy_sell:
        if not volumes:
            out.append(float("nan"))
            volumes.append(float(buy.sum() + sell.sum()))
            continue
        bucket = np.mean(volumes[-volume_days:]) / per_day
        if fill >= bucket:
            window_imb.append(abs(2 * fill_buy - fill) / fill)
            fill = fill_buy = 0.0
        for b, s in zip(buy, sell):
            v = b + s
            if not v > 0:
                continue
            share = b / v
            while v > 0:
                take = min(v, bucket - fill)
                fill += take
                fill_buy += take * share
                v -= take
                if fill >= bucket * (1 - 1e-12):
                    window_imb.append(abs(2 * fill_buy - fill) / fill)
                    fill = fill_buy = 0.0
        window_imb = window_imb[-window:]
        out.append(float(np.mean(window_imb)) if len(window_imb) == window else float("nan"))
        volumes.append(float(buy.sum() + sell.sum()))
    return out


def test_vpin_buckets_come_from_previous_days_and_the_window_rolls_across_midnight():
    """Day 3 trades a tenth of the usual volume: its own buckets (sized by days 1-2) are few,
    so its VPIN is mostly made of day 2's buckets; the reference pours trade by trade."""
    days = [DAY + dt.timedelta(days=i) for i in range(4)]
    frames = [_trades_for(days[0], 3000, 1, buy_prob=0.5), _trades_for(days[1], 3000, 2, buy_prob=0.7),
              _trades_for(days[2], 300, 3, buy_prob=0.5), _trades_for(days[3], 3000, 4, buy_prob=0.4)]
    state, got = None, []
    for day, t in zip(days, frames):
        res = L.compute_daily(day, trades=t, previous=state)
        got.append(res.values["vpin"])
        state = L.LiquidityState.from_json(res.state.to_json())  # what the asset stores and reloads
    seq = []
    for t in frames:
        q = t["qty"].to_numpy()
        buy = ~t["is_buyer_maker"].to_numpy()
        seq.append((np.where(buy, q, 0.0), np.where(buy, 0.0, q)))
    ref = _reference_vpin_chain(seq)
    assert np.isnan(got[0]) and np.isnan(ref[0])
    np.testing.assert_allclose(got[1:], ref[1:], rtol=1e-9)
    assert np.isfinite(got[2])  # defined although day 3 completed only ~5 buckets of its own
    # the day's own volume does not size its buckets: doubling day 2's later trades changes
    # its pours but not the bucket size, which the reference fixes from day 1 alone
    first = L.compute_daily(days[0], trades=frames[0])
    doubled = frames[1].copy()
    doubled.loc[doubled.index[1500:], "qty"] *= 2
    res = L.compute_daily(days[1], trades=doubled, previous=first.state)
    q = doubled["qty"].to_numpy()
    buy = ~doubled["is_buyer_maker"].to_numpy()
    ref2 = _reference_vpin_chain([seq[0], (np.where(buy, q, 0.0), np.where(buy, 0.0, q))])
    assert res.values["vpin"] == pytest.approx(ref2[1], rel=1e-9)


def test_vpin_without_the_previous_days_state_is_null_with_a_reason():
    t = _trades_for(DAY + dt.timedelta(days=1), 2000, 5)
    res = L.compute_daily(DAY + dt.timedelta(days=1), trades=t)
    assert np.isnan(res.values["vpin"]) and "previous day" in res.null_reasons["vpin"]
    old = L.compute_daily(DAY - dt.timedelta(days=3), trades=_trades_for(DAY - dt.timedelta(days=3), 2000, 6))
    gap = L.compute_daily(DAY + dt.timedelta(days=1), trades=t, previous=old.state)
    assert np.isnan(gap.values["vpin"]) and "gap" in gap.null_reasons["vpin"]


def test_bulk_volume_classification_vpin_on_bars():
    """BVC (Easley, López de Prado & O'Hara 2012): each bar's volume splits by
    Phi(r_t / sigma), sigma the previous day's 1-minute return std; reference with
    statistics.NormalDist and the pour of the VPIN reference above."""
    k1 = make_klines(1, seed=51, price=100.0)
    k2 = make_klines(1, start="2024-01-02", seed=52, price=float(k1["close"].iloc[-1]))
    k2["volume"] *= 1.5  # more volume than day 1: more than 50 buckets of day 1's size
    r1 = L.compute_daily(DAY, klines=k1)
    r2 = L.compute_daily(DAY + dt.timedelta(days=1), klines=k2, previous=r1.state)

    lr1 = np.diff(np.log(k1["close"].to_numpy()))
    consecutive = np.diff(k1["open_time"].array.asi8) == 60_000_000_000
    sigma = np.std(lr1[consecutive], ddof=1)
    assert r1.state.return_sigma == pytest.approx(sigma, rel=1e-12)
    close2 = k2["close"].to_numpy()
    ts2 = k2["open_time"].array.asi8
    r = np.r_[math.log(close2[0] / k1["close"].iloc[-1]), np.diff(np.log(close2))]
    r[1:][np.diff(ts2) != 60_000_000_000] = np.nan
    phi = np.array([0.5 if np.isnan(x) else NormalDist().cdf(x / sigma) for x in r])
    v = k2["volume"].to_numpy()
    ref = _reference_vpin_chain([(k1["volume"].to_numpy(), np.zeros(len(k1))), (v * phi, v * (1 - phi))])
    assert np.isfinite(ref[1])
    assert r2.values["vpin_bvc"] == pytest.approx(ref[1], rel=1e-9)
    assert np.isnan(r1.values["vpin_bvc"]) and "previous day" in r1.null_reasons["vpin_bvc"]


def test_state_round_trips_and_bad_state_names_the_field():
    res = L.compute_daily(DAY, trades=_trades_for(DAY, 500, 7), klines=make_klines(1, seed=8, price=100.0))
    again = L.LiquidityState.from_json(res.state.to_json())
    assert again == res.state
    with pytest.raises(ValueError, match="'daily_volumes'.*re-materialize"):
        L.LiquidityState.from_json(res.state.to_json().replace('"daily_volumes"', '"volumes"'),
                                   what="liquidity_daily 2024-01-01|BTCUSDT")
    with pytest.raises(ValueError, match="liquidity_daily 2024-01-01|BTCUSDT.*not JSON"):
        L.LiquidityState.from_json("{", what="liquidity_daily 2024-01-01|BTCUSDT")


# --------------------------------------------------------------------------- inputs


def test_bar_only_users_get_the_bar_measures_and_reasons_for_the_rest():
    k0 = make_klines(1, seed=60, price=100.0)
    k1 = make_klines(1, start="2024-01-02", seed=61, price=100.0)
    prev = L.compute_daily(DAY, klines=k0).state
    res = L.compute_daily(DAY + dt.timedelta(days=1), klines=k1, previous=prev)
    bar_only = {"amihud_per_musd", "price_impact_1m_bps_per_musd", "roll_spread_1m_bps", "cs_spread_bps",
                "vpin_bvc", "volume", "quote_volume"}
    for key in L.DAILY_KEYS:
        if key in bar_only:
            assert np.isfinite(res.values[key]), key
        else:
            assert np.isnan(res.values[key]), key
            assert res.null_reasons[key], key
    assert res.null_reasons["vpin"] == "no raw_trades rows for the day"
    assert res.null_reasons["depth_50bps_usd"] == "no top-N raw_book snapshots for the day"
    assert res.null_reasons["quoted_spread_tw_bps"] == "no raw_quotes rows for the day"
    assert res.notes["effective_spread_source"] == "none"
    assert set(res.null_reasons) == {k for k, v in res.values.items() if np.isnan(v)}


def test_rows_of_other_days_are_ignored():
    """Nothing after the computed day enters it: trades of the next day change nothing."""
    t = _trades_for(DAY, 2000, 9)
    later = _trades_for(DAY + dt.timedelta(days=1), 2000, 10)
    a = L.compute_daily(DAY, trades=t).values
    b = L.compute_daily(DAY, trades=pd.concat([t, later], ignore_index=True)).values
    assert a.keys() == b.keys()
    for key in a:
        assert (np.isnan(a[key]) and np.isnan(b[key])) or a[key] == b[key], key


def test_empty_and_zero_volume_inputs():
    k = make_klines(1, seed=21, price=100.0)
    for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
        k[col] = 0.0
    k.loc[5:10, "close"] = np.nan
    with np.errstate(divide="raise"):
        m = L.minute_liquidity(None, make_trades([]), k)
        d = L.compute_daily(DAY, klines=k, trades=make_trades([]), minute=m)
    assert np.isnan(d.values["amihud_per_musd"]) and np.isnan(d.values["vpin"])
    assert np.isnan(d.values["kyle_lambda_bps_per_sqrt_usd"])
    assert not any(math.isinf(v) for v in d.values.values())
    nothing = L.minute_liquidity(None, None, None)
    assert len(nothing) == 0 and list(nothing.columns) == list(L.MINUTE_COLUMNS)
    assert all(np.isnan(v) for v in L.daily_liquidity(None, None, None).values())


def test_simulated_days_give_defined_measures_that_agree_with_the_quotes():
    """On the simulator (quotes every trade printed against): the effective spread matches
    every trade, Roll is defined and near the quoted spread, VPIN defined from day 2."""
    from factor_core.simulator import simulate_day

    state = None
    for i in range(3):
        day = dt.date(2024, 3, 1) + dt.timedelta(days=i)
        sim = simulate_day("ETHUSDT", day)
        res = L.compute_daily(day, klines=sim.klines, trades=sim.trades, book=sim.book, quotes=sim.quotes,
                              previous=state)
        v = res.values
        assert v["effective_spread_matched_share"] == 1.0
        assert res.notes["effective_spread_source"] == "raw_quotes (quote in force)"
        assert 0.5 < v["roll_spread_bps"] / v["quoted_spread_tw_bps"] < 2.0
        assert v["kyle_lambda_bps_per_sqrt_usd"] > 0 and v["price_impact_1m_bps_per_musd"] > 0
        assert v["depth_50bps_usd"] > 2 * v["depth_10bps_usd"]
        if i:
            assert 0 < v["vpin"] < 1 and 0 < v["vpin_bvc"] < 1
            assert res.null_reasons == {}  # every key is defined
        state = res.state
