"""Numba kernels against TA-Lib (where it has the indicator) or plain pandas/numpy references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from factor_core import kernels as K
from factor_core.kernels import resample as R

RTOL = 1e-9
NS_PER_MINUTE = 60_000_000_000
NS_PER_HOUR = 60 * NS_PER_MINUTE


def ohlcv(n: int, seed: int = 0, price: float = 30_000.0, vol: float = 0.01):
    rng = np.random.default_rng(seed)
    c = price * np.exp(np.cumsum(rng.normal(0, vol, n)))
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(o, c) * (1 - np.abs(rng.normal(0, vol / 2, n)))
    v = rng.lognormal(0, 1, n)
    return o, h, low, c, v


def assert_same(actual: np.ndarray, expected: np.ndarray, rtol: float = RTOL, atol: float = 0.0) -> None:
    """Same NaN pattern, finite values within rtol (relative to |expected|) + atol."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    assert np.all(np.isfinite(actual[~np.isnan(actual)])), "kernel produced inf"
    m = ~np.isnan(expected)
    np.testing.assert_allclose(actual[m], expected[m], rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- TA-Lib equivalents


@pytest.mark.parametrize("n", [14, 28, 2])
@pytest.mark.parametrize("lead_nan", [0, 7])
def test_rsi_matches_talib(n, lead_nan):
    _, _, _, c, _ = ohlcv(3000, seed=n)
    c[:lead_nan] = np.nan
    assert_same(K.rsi_wilder(c, n), talib.RSI(c, timeperiod=n))


def test_rsi_flat_series_as_talib():
    c = np.full(100, 123.5)
    expected = talib.RSI(c, timeperiod=14)
    assert_same(K.rsi_wilder(c, 14), expected)
    assert np.all(expected[14:] == 0.0)  # TA-Lib's definition: no movement -> 0
    # flat stretch inside a moving series, and a pure rise (RSI 100)
    _, _, _, c2, _ = ohlcv(300, seed=3)
    c2[100:160] = c2[100]
    assert_same(K.rsi_wilder(c2, 14), talib.RSI(c2, timeperiod=14))
    rise = np.arange(1.0, 60.0)
    assert_same(K.rsi_wilder(rise, 14), talib.RSI(rise, timeperiod=14))


def test_rsi_is_scale_invariant():
    """Sub-micro prices: no absolute threshold (TA-Lib >= 0.6 agrees; TA-Lib < 0.6 returned 0)."""
    _, _, _, c, _ = ohlcv(500, seed=4, price=100.0)
    tiny = c * 1e-9
    np.testing.assert_allclose(K.rsi_wilder(tiny, 14)[14:], K.rsi_wilder(c, 14)[14:], rtol=1e-9)
    assert_same(K.rsi_wilder(tiny, 14), talib.RSI(tiny, 14))


@pytest.mark.parametrize("n", [14, 5])
def test_atr_matches_talib(n):
    _, h, low, c, _ = ohlcv(3000, seed=1)
    h[:3] = low[:3] = c[:3] = np.nan
    assert_same(K.atr_wilder(h, low, c, n), talib.ATR(h, low, c, timeperiod=n))


@pytest.mark.parametrize("n", [12, 26, 9])
def test_ema_matches_talib(n):
    _, _, _, c, _ = ohlcv(2000, seed=2)
    c[:5] = np.nan
    assert_same(K.ema_talib(c, n), talib.EMA(c, timeperiod=n))


def test_macd_is_ema_composition_as_contracted():
    _, _, _, c, _ = ohlcv(2000, seed=5)
    line, sig, hist = K.macd(c, 12, 26, 9)
    exp_line = talib.EMA(c, 12) - talib.EMA(c, 26)
    exp_sig = talib.EMA(exp_line, 9)
    assert_same(line, exp_line)
    assert_same(sig, exp_sig)
    # hist ~ 0 at crossings: compare absolutely at the scale of the line
    assert_same(hist, exp_line - exp_sig, atol=1e-12 * np.nanmax(np.abs(exp_line)))
    assert np.isnan(sig[32]) and np.isfinite(sig[33])
    # talib.MACD seeds differently during warm-up but converges to the same values
    t_line, t_sig, _ = talib.MACD(c, 12, 26, 9)
    np.testing.assert_allclose(line[800:], t_line[800:], rtol=1e-6, atol=1e-9 * c.mean())


@pytest.mark.parametrize("price", [30_000.0, 1.5])
def test_bbands_matches_talib_after_leading_nan_and_pandas_around_interior_nan(price):
    _, _, _, c, _ = ohlcv(2000, seed=17, price=price)
    c[:5] = np.nan
    for got, expected in zip(K.bbands(c, 20, 2.0), talib.BBANDS(c, 20, 2, 2, 0), strict=True):
        assert_same(got, expected)
    # TA-Lib stays NaN for ever after an interior NaN; the window kernel only for the 20 windows holding it
    c[700] = np.nan
    s = pd.Series(c)
    mid, sd = s.rolling(20).mean().to_numpy(), s.rolling(20).std(ddof=0).to_numpy()
    upper, middle, lower = K.bbands(c, 20, 2.0)
    assert np.isnan(upper[700:720]).all() and np.isfinite(upper[720:]).all()
    assert_same(middle, mid, rtol=1e-12)
    assert_same(upper, mid + 2 * sd, rtol=1e-12)
    assert_same(lower, mid - 2 * sd, rtol=1e-12)


def test_rolling_moments_match_pandas_mean_and_std():
    rng = np.random.default_rng(18)
    x = 1e4 + np.cumsum(rng.normal(0, 1.0, 3000))
    x[rng.choice(3000, 40, replace=False)] = np.nan
    s = pd.Series(x)
    # re-centred at the first full window (resync = n, as rolling_std): no cancellation at a 1e4 level
    for n, ddof, resync in ((20, 0, 20), (24, 1, 24), (5, 1, 1), (20, 0, 7)):
        mean, std = K.rolling_moments(x, n, ddof, resync)
        assert_same(mean, s.rolling(n).mean().to_numpy(), rtol=1e-12)
        # two-pass std of each window (pandas' online update loses ~1e-7 at this level / variance ratio)
        windows = np.lib.stride_tricks.sliding_window_view(x, n)
        ref = np.r_[np.full(n - 1, np.nan), windows.std(axis=1, ddof=ddof)]
        assert_same(std, ref, rtol=1e-9)
    for n, ddof in ((0, 0), (1, 1), (3, 5)):
        assert np.isnan(K.rolling_moments(x, n, ddof, 1)).all()


@pytest.mark.parametrize("price", [30_000.0, 1.5])
def test_bollinger_matches_talib(price):
    _, _, _, c, _ = ohlcv(3000, seed=6, price=price)
    mid, up, lo, pos, width = K.bollinger(c, 20, 2.0)
    t_up, t_mid, t_lo = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    assert_same(mid, t_mid)
    assert_same(up, t_up)
    assert_same(lo, t_lo)
    ref_pos = (c - t_lo) / (t_up - t_lo)
    assert_same(pos, ref_pos, rtol=1e-7)
    assert_same(width, (t_up - t_lo) / t_mid, rtol=1e-7)
    # population std (ddof=0) against pandas
    sd = pd.Series(c).rolling(20).std(ddof=0).to_numpy()
    assert_same((up - mid) / 2.0, sd, rtol=1e-8)


def test_bollinger_flat_window_and_tiny_prices():
    c = np.r_[np.full(40, 5.0), np.linspace(5.0, 6.0, 40)]
    mid, up, lo, pos, width = K.bollinger(c, 20, 2.0)
    assert np.all(up[19:40] == 5.0) and np.all(lo[19:40] == 5.0)
    assert np.all(np.isnan(pos[19:40])) and np.all(width[19:40] == 0.0)
    assert np.all(np.isfinite(pos[41:]))
    t_up, t_mid, t_lo = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    assert_same(up, t_up)
    assert_same(lo, t_lo)
    # sub-micro prices: the bands scale with the price (no absolute threshold)
    _, _, _, x, _ = ohlcv(200, seed=7, price=1.0)
    m1, u1, _, _, _ = K.bollinger(x, 20, 2.0)
    m2, u2, _, _, _ = K.bollinger(x * 1e-6, 20, 2.0)
    np.testing.assert_allclose((u2 - m2)[19:], (u1 - m1)[19:] * 1e-6, rtol=1e-7)
    assert_same(u2, talib.BBANDS(x * 1e-6, 20, 2, 2, 0)[0])


def test_obv_matches_talib_and_window_identity():
    _, _, _, c, v = ohlcv(1500, seed=8)
    c[200:210] = c[199]  # equal closes leave OBV unchanged
    obv = talib.OBV(c, v)
    assert_same(K.obv_talib(c, v), obv)
    w = K.obv_window(c, v, 72)
    expected = np.full_like(obv, np.nan)
    expected[72:] = obv[72:] - obv[:-72]
    np.testing.assert_allclose(w[72:], expected[72:], rtol=1e-9, atol=1e-9 * np.abs(obv).max())
    assert np.all(np.isnan(w[:72]))


def test_short_series_gives_nan_not_errors():
    for m in (0, 1, 5, 14):
        _, h, low, c, v = ohlcv(max(m, 1), seed=9)
        h, low, c, v = h[:m], low[:m], c[:m], v[:m]
        for out in (K.rsi_wilder(c, 14), K.atr_wilder(h, low, c, 14), K.ema_talib(c, 26),
                    K.rolling_std(c, 20, 1), K.rolling_sum(v, 24), *K.bollinger(c, 20, 2.0),
                    *K.macd(c, 12, 26, 9)):
            assert out.shape == (m,) and np.all(np.isnan(out))
    all_nan = np.full(50, np.nan)
    assert np.all(np.isnan(K.rsi_wilder(all_nan, 14)))
    assert np.all(np.isnan(K.obv_talib(all_nan, all_nan)))


# --------------------------------------------------------------------------- window kernels vs pandas


def test_rolling_kernels_match_pandas():
    rng = np.random.default_rng(10)
    x = rng.normal(5.0, 2.0, 2000)
    # a huge spike must not leave rounding residue once it leaves the window
    x[500] = 1e12
    s = pd.Series(x)
    assert_same(K.rolling_sum(x, 24), s.rolling(24).sum().to_numpy(), rtol=1e-9, atol=1e-9)
    assert np.allclose(K.rolling_sum(x, 24)[600:], s.rolling(24).sum().to_numpy()[600:], rtol=1e-12)
    for ddof in (0, 1):
        assert_same(K.rolling_std(x, 24, ddof), s.rolling(24).std(ddof=ddof).to_numpy(), rtol=1e-8)
    y = x.copy()
    y[rng.choice(2000, 300, replace=False)] = np.nan
    sy = pd.Series(y)
    assert_same(K.rolling_sum(y, 10), sy.rolling(10).sum().to_numpy(), rtol=1e-9)
    ref = sy.rolling(10, min_periods=4).mean().to_numpy().copy()
    ref[:9] = np.nan
    assert_same(K.rolling_mean_nan(y, 10, 4), ref, rtol=1e-9)
    assert_same(K.rolling_std(y, 10, 1), sy.rolling(10).std().to_numpy(), rtol=1e-8)


def test_rolling_std_price_level_precision():
    rng = np.random.default_rng(11)
    x = 1e6 + np.cumsum(rng.normal(0, 1e-3, 500))  # tiny variance on a big level
    ref = np.array([np.std(x[i - 19:i + 1], ddof=0) if i >= 19 else np.nan for i in range(500)])
    assert_same(K.rolling_std(x, 20, 0), ref, rtol=1e-6)


def test_return_and_ratio_kernels():
    _, _, _, c, v = ohlcv(500, seed=12)
    s = pd.Series(c)
    assert_same(K.log_return(c, 4), np.log(s / s.shift(4)).to_numpy(), rtol=1e-12)
    assert_same(K.simple_return(c, 12), s.pct_change(12).to_numpy(), rtol=1e-9)
    bad = c.copy()
    bad[10] = 0.0
    bad[20] = np.inf
    r = K.log_return(bad, 1)
    assert np.isnan(r[[10, 11, 20, 21]]).all() and np.isfinite(r[12:20]).all()
    vv = v.copy()
    vv[100:150] = 0.0
    sv = pd.Series(vv)
    ref = (sv.rolling(24).sum() / sv.rolling(24).sum().shift(24) - 1).replace([np.inf, -np.inf], np.nan)
    assert_same(K.volume_momentum(vv, 24), ref.to_numpy(), rtol=1e-9)
    assert_same(K.safe_ratio(np.array([1.0, 1.0, np.nan]), np.array([2.0, 0.0, 1.0])), np.array([0.5, np.nan, np.nan]))


def test_order_flow_amihud_turnover_impact():
    rng = np.random.default_rng(13)
    n = 400
    v = rng.lognormal(0, 1, n)
    v[50:80] = 0.0
    tb = v * rng.uniform(0, 1, n)
    sv, stb = pd.Series(v), pd.Series(tb)
    ref = ((2 * stb.rolling(24).sum() - sv.rolling(24).sum()) / sv.rolling(24).sum()).replace([np.inf, -np.inf], np.nan)
    assert_same(K.order_flow_imbalance(tb, v, 24), ref.to_numpy(), rtol=1e-9, atol=1e-12)
    ofi1 = K.order_flow_imbalance(tb, v, 1)
    assert np.isnan(ofi1[50:80]).all() and np.all(np.abs(ofi1[np.isfinite(ofi1)]) <= 1)

    r = rng.normal(0, 0.01, n)
    qv = v * 100.0
    x = pd.Series(np.where(qv > 0, np.abs(r) / np.where(qv > 0, qv, 1.0) * 1e6, np.nan))
    ref = x.rolling(24, min_periods=12).mean().to_numpy().copy()
    ref[:23] = np.nan
    assert_same(K.amihud(r, qv, 24, 1e6), ref, rtol=1e-9)

    sq = pd.Series(qv)
    ref = (sq.rolling(24).sum() / (sq.rolling(168).sum() * 24 / 168)).to_numpy()
    assert_same(K.turnover_ratio(qv, 24, 168), ref, rtol=1e-9)

    tbq = tb * 100.0
    y = r * 1e4
    xflow = (2 * tbq - qv) * 1e-6
    got = K.price_impact(r, tbq, qv, 24, 12)
    for i in (23, 100, 399):
        xs, ys = xflow[i - 23:i + 1], y[i - 23:i + 1]
        assert got[i] == pytest.approx(np.polyfit(xs, ys, 1)[0], rel=1e-9)
    assert np.isnan(K.price_impact(r, np.zeros(n), np.zeros(n), 24, 12)).all()


def cs_reference(h0, l0, h1, l1):
    k = 3 - 2 * math.sqrt(2)
    beta = math.log(h0 / l0) ** 2 + math.log(h1 / l1) ** 2
    gamma = math.log(max(h0, h1) / min(l0, l1)) ** 2
    alpha = max(0.0, (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k))
    return 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha))


def test_corwin_schultz_and_spread_proxy():
    _, h, low, _, _ = ohlcv(200, seed=14)
    got = K.corwin_schultz(h, low)
    assert np.isnan(got[0])
    for i in (1, 50, 199):
        assert got[i] == pytest.approx(cs_reference(h[i - 1], low[i - 1], h[i], low[i]), rel=1e-12)
    assert np.all(got[1:] >= 0)
    h[60] = np.nan
    low[70] = 0.0
    got = K.corwin_schultz(h, low)
    assert np.isnan(got[[60, 61, 70, 71]]).all()
    sp = K.spread_cs(h, low, 24, 1e4)
    ref = pd.Series(got * 1e4).rolling(24, min_periods=12).mean().to_numpy().copy()
    ref[:23] = np.nan
    assert_same(sp, ref, rtol=1e-9)


def test_roll_spread_recovers_bid_ask_bounce():
    rng = np.random.default_rng(15)
    n = 20000
    mid = 100 * np.exp(np.cumsum(rng.normal(0, 1e-5, n)))
    half = 0.0005  # 10 bps full spread
    p = mid * (1 + half * np.where(rng.uniform(size=n) < 0.5, 1, -1))
    assert K.roll_spread(p) == pytest.approx(2 * half, rel=0.1)
    assert np.isnan(K.roll_spread(np.cumsum(np.ones(50))))  # trending: cov >= 0 -> undefined
    assert np.isnan(K.roll_spread(np.array([1.0, 2.0])))


def test_vpin_buckets():
    buy = np.array([10.0, 0.0, 5.0, 5.0])
    sell = np.array([0.0, 10.0, 5.0, 5.0])
    # buckets of 10: [10 buy], [10 sell], [5/5], [5/5] -> |imbalance| 1, 1, 0, 0
    assert K.vpin(buy, sell, 10.0) == pytest.approx(0.5)
    # a trade straddling buckets is split: bucket 20 -> [10b + 10s], [5/5 + 5/5]
    assert K.vpin(buy, sell, 20.0) == pytest.approx(0.0)
    assert np.isnan(K.vpin(buy, sell, 1e9))
    assert np.isnan(K.vpin(buy, sell, 0.0))


def test_asof_and_binning():
    ev_ts = np.array([10, 20, 30], dtype=np.int64)
    ev = np.array([1.0, np.nan, 3.0])
    q = np.array([5, 10, 15, 25, 30, 99], dtype=np.int64)
    assert_same(K.asof_values(q, ev_ts, ev), np.array([np.nan, 1.0, 1.0, 1.0, 3.0, 3.0]))
    idx = np.array([0, 0, 2, 5, -1], dtype=np.int64)
    vals = np.array([1.0, 3.0, np.nan, 4.0, 9.0])
    assert_same(K.bin_nanmean(vals, idx, 3), np.array([2.0, np.nan, np.nan]))
    assert_same(K.prevailing_index(q, ev_ts), np.array([-1, 0, 0, 1, 2, 2]))


def test_resample_minutes_matches_pandas():
    rng = np.random.default_rng(16)
    n = 60 * 30
    ts = np.datetime64("2024-03-01T00:00", "ns").astype(np.int64) + np.arange(n, dtype=np.int64) * NS_PER_MINUTE
    keep = np.ones(n, bool)
    keep[rng.choice(n, 200, replace=False)] = False
    keep[5 * 60:6 * 60] = False  # an empty hour
    o, h, low, c, v = ohlcv(n, seed=16, vol=1e-3)
    tc = rng.integers(0, 50, n)
    ts, o, h, low, c, v, tc = ts[keep], o[keep], h[keep], low[keep], c[keep], v[keep], tc[keep]
    res = K.resample_minutes(ts, o, h, low, c, v, v * c, tc, v / 2, v * c / 2, NS_PER_HOUR)
    start, bo, bh, bl, bc, bv, bqv, btc, _, _, nmin, rv = res
    df = pd.DataFrame({"o": o, "h": h, "l": low, "c": c, "v": v, "tc": tc,
                       "lr": np.log(c / np.r_[o[0], c[:-1]])},
                      index=pd.to_datetime(ts, utc=True))
    g = df.resample("1h", label="left", closed="left")
    ref = pd.DataFrame({"o": g["o"].first(), "h": g["h"].max(), "l": g["l"].min(), "c": g["c"].last(),
                        "v": g["v"].sum(), "tc": g["tc"].sum(), "n": g["c"].count(),
                        "rv": (df["lr"] ** 2).resample("1h").sum()})
    assert len(start) == len(ref) == 30
    ffill = ref["c"].ffill().shift(1)
    empty = ref["n"] == 0
    for col, got in (("o", bo), ("h", bh), ("l", bl), ("c", bc)):
        exp = ref[col].where(~empty, ffill).to_numpy()
        assert_same(got, exp, rtol=0)
    assert_same(bv, ref["v"].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(btc, ref["tc"].to_numpy())
    np.testing.assert_array_equal(nmin, ref["n"].to_numpy())
    assert_same(rv, ref["rv"].to_numpy(), rtol=1e-9, atol=1e-20)
    assert bv[5] == 0.0 and nmin[5] == 0 and bo[5] == bc[4]


def test_bar_row_offsets_match_searchsorted_and_refuse_unsorted_times():
    rng = np.random.default_rng(19)
    # minutes with gaps of several empty hours, starting before the epoch (floor, not truncation)
    minutes = np.r_[np.arange(-300, 400), np.arange(650, 900), np.arange(1100, 2000)]  # two gaps of empty hours
    ts = np.sort(rng.choice(minutes, 900, replace=False)).astype(np.int64) * NS_PER_MINUTE + 7
    start, offsets = R.bar_row_offsets(ts, np.int64(NS_PER_HOUR))
    ref_start = np.arange(ts[0] // NS_PER_HOUR * NS_PER_HOUR, ts[-1] // NS_PER_HOUR * NS_PER_HOUR + 1, NS_PER_HOUR)
    np.testing.assert_array_equal(start, ref_start)
    np.testing.assert_array_equal(offsets, np.r_[np.searchsorted(ts, ref_start, "left"), ts.size])
    empty_bars = np.flatnonzero(np.diff(offsets) == 0)
    assert empty_bars.size > 0  # the grid keeps bars without rows
    for bad in (ts[::-1].copy(), np.r_[ts[:10], ts[50], ts[10:50], ts[51:]],
                np.array([0, 100, 50], dtype=np.int64) * NS_PER_HOUR):  # last row earlier than a middle one
        with pytest.raises(ValueError, match="not sorted"):
            R.bar_row_offsets(bad, np.int64(NS_PER_HOUR))
    start, offsets = R.bar_row_offsets(ts[:0], np.int64(NS_PER_HOUR))
    assert start.size == 0 and offsets.tolist() == [0]


def test_sum_by_bar_counts_non_finite_as_zero_like_pandas():
    rng = np.random.default_rng(20)
    x = rng.normal(0, 1, 500)
    x[rng.choice(500, 50, replace=False)] = np.nan
    x[[3, 9]] = np.inf, -np.inf
    cuts = np.sort(rng.choice(np.arange(1, 500), 30, replace=False))
    offsets = np.r_[0, cuts, cuts[-1], 500].astype(np.int64)  # includes an empty bar
    bar = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    ref = pd.Series(np.where(np.isfinite(x), x, 0.0)).groupby(bar).sum().reindex(range(offsets.size - 1), fill_value=0)
    assert_same(R.sum_by_bar(x, offsets), ref.to_numpy(), rtol=1e-12, atol=1e-12)
    counts = rng.integers(0, 100, 500)
    got = R.sum_by_bar(counts, offsets)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, pd.Series(counts).groupby(bar).sum().reindex(range(offsets.size - 1), fill_value=0))


def test_resample_minutes_of_no_rows_is_empty():
    e = np.empty(0)
    res = K.resample_minutes(np.empty(0, dtype=np.int64), e, e, e, e, e, e, np.empty(0, dtype=np.int64), e, e,
                             NS_PER_HOUR)
    assert all(col.size == 0 for col in res)
    assert res.trade_count.dtype == np.int64 and res.n_minutes.dtype == np.int64


def test_volume_sums_by_bar_equal_four_single_sums_bit_for_bit():
    rng = np.random.default_rng(21)
    cols = [rng.lognormal(0, 1, 400) for _ in range(4)]
    cols[1][[5, 77]] = np.nan
    cols[3][9] = np.inf
    offsets = np.r_[0, np.sort(rng.choice(np.arange(1, 400), 20, replace=False)), 400].astype(np.int64)
    for fused, single in zip(R.volume_sums_by_bar(*cols, offsets), (R.sum_by_bar(c, offsets) for c in cols),
                             strict=True):
        np.testing.assert_array_equal(fused, single)
