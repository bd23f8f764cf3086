"""Factor registry and compute_factor_bars: TA-Lib contract, references, day-by-day equality, no look-ahead."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from factor_core import factors as F
from factor_core import kernels as K
from factor_core.schemas import KLINES

REPO = Path(__file__).resolve().parents[2]
DAY = pd.Timedelta("1D")
HOUR = pd.Timedelta("1h")


def make_klines(days: float, *, start: str = "2024-01-01", seed: int = 0, price: float = 30_000.0,
                drop_frac: float = 0.0, empty_hours: tuple[int, ...] = ()) -> pd.DataFrame:
    """Random-walk 1-minute klines in the ``schemas.KLINES`` layout (datetime64[ns, UTC])."""
    rng = np.random.default_rng(seed)
    n = int(round(days * 1440))
    ts = pd.date_range(start, periods=n, freq="1min", tz="UTC").as_unit("ns")
    c = price * np.exp(np.cumsum(rng.normal(0, 8e-4, n) * (1 + 0.5 * np.sin(np.arange(n) / 300))))
    o = np.r_[price, c[:-1]]
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 3e-4, n)))
    low = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 3e-4, n)))
    v = rng.lognormal(0, 1, n)
    v[rng.uniform(size=n) < 0.02] = 0.0
    tb = v * rng.uniform(0, 1, n)
    df = pd.DataFrame({
        "open_time": ts, "open": o, "high": h, "low": low, "close": c, "volume": v, "quote_volume": v * c,
        "trade_count": rng.integers(0, 200, n).astype(np.int64), "taker_buy_volume": tb,
        "taker_buy_quote_volume": tb * c,
    })
    keep = rng.uniform(size=n) >= drop_frac
    for hour in empty_hours:
        keep[hour * 60:(hour + 1) * 60] = False
    df = df[keep].reset_index(drop=True)
    assert list(df.columns) == KLINES.names
    return df


def make_funding(start: str, days: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days * 3, freq="8h", tz="UTC").as_unit("ns")
    return pd.DataFrame({"ts": ts, "funding_rate": rng.normal(1e-4, 5e-5, len(ts)),
                         "funding_interval_hours": np.full(len(ts), 8, dtype=np.int16)})


def make_minute_liquidity(klines: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(klines)
    df = pd.DataFrame({"ts": klines["open_time"].to_numpy(), "quoted_spread_bps": rng.uniform(0.5, 3, n),
                       "effective_spread_bps": rng.uniform(0, 4, n), "depth_10bps_usd": rng.uniform(1e4, 1e6, n),
                       "depth_50bps_usd": rng.uniform(1e6, 1e7, n), "depth_imbalance": rng.uniform(-1, 1, n),
                       "trade_imbalance": rng.uniform(-1, 1, n)})
    df.loc[rng.uniform(size=n) < 0.05, "quoted_spread_bps"] = np.nan
    return df


LIQD_KEYS = ("effective_spread_bps", "kyle_lambda_bps_per_sqrt_usd", "price_impact_1m_bps_per_musd", "amihud_per_musd", "roll_spread_bps",
             "cs_spread_bps", "vpin")


def make_liquidity_daily(start: str, days: int, seed: int = 3) -> pd.DataFrame:
    """``liquidity_daily``-shaped rows: one per UTC day, ``ts`` = the day's 00:00."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days, freq="1D", tz="UTC").as_unit("ns")
    df = pd.DataFrame({"ts": ts, "known_at": ts + DAY, "quoted_spread_bps": rng.uniform(0.5, 3, days)})
    for key in LIQD_KEYS:
        df[key] = rng.uniform(0.1, 10, days)
    return df


@pytest.fixture(scope="module")
def klines_10d() -> pd.DataFrame:
    return make_klines(10, seed=3, drop_frac=0.01, empty_hours=(30, 31, 100))


@pytest.fixture(scope="module")
def bars_10d(klines_10d) -> pd.DataFrame:
    return F.compute_factor_bars(klines_10d)


def arr(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].to_numpy(dtype=float)


def assert_same(actual, expected, rtol=1e-9, atol=0.0):
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    assert np.all(np.isfinite(actual[~np.isnan(actual)]))
    m = ~np.isnan(expected)
    np.testing.assert_allclose(actual[m], expected[m], rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- registry


def test_registry_contract():
    names = [s.name for s in F.FACTORS]
    assert len(names) == len(set(names))
    for required in ("log_ret_1", "log_ret_4", "log_ret_24", "mom_12", "mom_24", "mom_72", "mom_composite",
                     "rsi_14", "rsi_28", "atr_14", "bb_mid_20", "bb_upper_20", "bb_lower_20", "bb_position_20",
                     "bb_width_20", "macd_12_26", "macd_signal_9", "macd_hist", "obv", "funding_rate"):
        assert required in names
    assert [n for n in names if n.startswith("liqd_")] == [f"liqd_{k}" for k in LIQD_KEYS]
    for s in F.FACTORS:
        assert s.description and s.unit and callable(s.kernel) and s.lookback_bars >= 0
        assert isinstance(s.params, type(F.FACTORS[0].params))
    assert F.BAR_FREQ == "1h"
    assert [s.name for s in F.FACTORS if not s.start_invariant] == ["obv"]


def test_warmup_days_derived_from_the_slowest_wilder_decay():
    # independent count: bars until a Wilder(28) seed's weight (1 - 1/28)^k drops below 1e-7
    k = 0
    while (1 - 1 / 28) ** k >= 1e-7:
        k += 1
    rsi28 = next(s for s in F.FACTORS if s.name == "rsi_28")
    assert rsi28.decay_bars == k and rsi28.lookback_bars == 28  # seeded with the first 28 changes
    assert F.WARMUP_BARS == rsi28.warmup_bars == max(s.warmup_bars for s in F.FACTORS if s.start_invariant)
    assert F.WARMUP_DAYS == -(-(28 + k) // 24) == 20
    macd_signal = next(s for s in F.FACTORS if s.name == "macd_signal_9")
    ema = [next(j for j in range(10_000) if (1 - 2 / (n + 1)) ** j < 1e-7) for n in (26, 9)]
    assert macd_signal.lookback_bars == 25 + 8 and macd_signal.decay_bars == sum(ema)


def _table_with(name: str, changes: dict) -> list:
    """FACTOR_TABLE with the row ``name`` replaced by a copy carrying ``changes``."""
    return [dataclasses.replace(d, **changes) if d.name == name else d for d in F.FACTOR_TABLE]


@pytest.mark.parametrize(("name", "changes", "message"), [
    ("vol_24", {"inputs": {"x": "log_ret_l"}},
     r"factor 'vol_24': unknown input column 'log_ret_l' \(kernel argument 'x'\)"),
    ("liq_depth_imbalance", {"inputs": {"values": "liquidity.depth_imbalanse", "bin_idx": "liquidity.bar_index",
                                        "n_bins": "n_bars"}},
     r"factor 'liq_depth_imbalance': unknown input column 'liquidity.depth_imbalanse' .*MINUTE_COLUMNS has no "
     r"column 'depth_imbalanse'"),
    ("liqd_vpin", {"inputs": {"query_ts": "ts_ns", "day_ts": "liquidity_daily.ts",
                              "day_values": "liquidity_daily.kyle_lambda"}},
     r"factor 'liqd_vpin': unknown input column 'liquidity_daily.kyle_lambda' .*DAILY_KEYS has no column"),
    ("mom_composite", {"inputs": {"a": "mom_12", "b": "mom_24", "c": "obv_72"}},  # declared further down
     r"factor 'mom_composite': unknown input column 'obv_72'"),
    ("rsi_14", {"params": {"n": 14, "m": 3}}, r"factor 'rsi_14': kernel rsi_wilder.*unknown \['m'\]"),
    ("rsi_14", {"params": {}}, r"factor 'rsi_14': kernel rsi_wilder.*missing \['n'\]"),
    ("bb_mid_20", {"output": "middle"}, r"factor 'bb_mid_20': kernel bollinger returns \('mid', "),
    ("rsi_14", {"kernel": K.ema_talib, "inputs": {"x": "close"}}, r"factor 'rsi_14': kernel ema_talib has no entry"),
    ("rsi_14", {"name": "rsi_28"}, r"factor 'rsi_28': the name is taken"),
])
def test_inconsistent_table_is_refused_naming_the_factor(name, changes, message):
    table = _table_with(name, changes)
    with pytest.raises(F.RegistryError, match=message):
        F.build_registry(table)


def test_registry_is_the_resolved_table():
    assert F.build_registry(F.FACTOR_TABLE) == F.FACTORS
    assert [d.name for d in F.FACTOR_TABLE] == list(F.FACTOR_NAMES)


def _klines_with_open_gaps(days: int, seed: int) -> pd.DataFrame:
    """Klines whose open is not the previous close, so a bar's first-minute return depends on the bar before."""
    k = make_klines(days, seed=seed)
    k["open"] *= 1 + np.random.default_rng(seed).normal(0, 2e-4, len(k))
    return k


_BAR_FACTORS = [s for s in F.FACTORS
                if s.start_invariant and not any(c.startswith(("funding.", "liquidity")) for c in s.inputs)]


@pytest.mark.parametrize("spec", [s for s in _BAR_FACTORS if s.decay_bars == 0], ids=lambda s: s.name)
def test_window_factor_reads_exactly_its_derived_lookback(spec):
    """The value at bar t equals the one-pass value when the input starts at bar t - lookback_bars,
    and changes when it starts one bar later."""
    k = _klines_with_open_gaps(10, seed=11)
    full = F.compute_factor_bars(k, factors=[spec.name])[spec.name].to_numpy()
    t = 230
    assert np.isfinite(full[t])
    bar_open = k["open_time"].iloc[0] + pd.Timedelta(hours=t - spec.lookback_bars)
    part = F.compute_factor_bars(k[k["open_time"] >= bar_open], factors=[spec.name])[spec.name].to_numpy()
    # Bollinger's running moments are centred on 0 until their first re-centring (16 n bars), so in a
    # fresh input they carry the rounding of sum(x^2) - sum(x)^2 / n, as talib.BBANDS does (~1e-11 here)
    rel = 1e-10 if spec.kernel is K.bollinger else 1e-12
    assert part[spec.lookback_bars] == pytest.approx(full[t], rel=rel, abs=0.0)
    if spec.lookback_bars > 0:
        later = k[k["open_time"] >= bar_open + HOUR]
        value = F.compute_factor_bars(later, factors=[spec.name])[spec.name].to_numpy()[spec.lookback_bars - 1]
        assert np.isnan(value) or value != pytest.approx(full[t], rel=rel, abs=0.0)


@pytest.mark.parametrize("spec", [s for s in _BAR_FACTORS if s.decay_bars > 0], ids=lambda s: s.name)
def test_recursive_factor_seed_span_and_decay_match_derived_warmup(spec):
    k = _klines_with_open_gaps(25, seed=12)
    full = F.compute_factor_bars(k, factors=[spec.name])[spec.name].to_numpy()
    # the seed spans lookback_bars: the first value is emitted there
    assert np.isnan(full[: spec.lookback_bars]).all() and np.isfinite(full[spec.lookback_bars])
    # after warmup_bars the seed's influence is below 1e-7 of the seed difference
    t = len(full) - 1
    bar_open = k["open_time"].iloc[0] + pd.Timedelta(hours=t - spec.warmup_bars)
    part = F.compute_factor_bars(k[k["open_time"] >= bar_open], factors=[spec.name])[spec.name].to_numpy()
    scale = np.nanmax(np.abs(full))
    assert part[spec.warmup_bars] == pytest.approx(full[t], rel=1e-6, abs=1e-9 * scale)


def test_factor_subset_equals_the_full_computation(bars_10d, klines_10d):
    wanted = ["close_vwap_24", "macd_hist", "log_ret_4"]
    sub = F.compute_factor_bars(klines_10d, factors=wanted)
    assert list(sub.columns) == [*F.BAR_COLUMNS, "log_ret_4", "macd_hist", "close_vwap_24"]  # registry order
    pd.testing.assert_frame_equal(sub, bars_10d[list(sub.columns)], check_exact=True)
    with pytest.raises(ValueError, match=r"unknown factor\(s\) \['rsi_15'\]"):
        F.compute_factor_bars(klines_10d, factors=["rsi_14", "rsi_15"])


def test_docs_are_generated_from_registry():
    path = REPO / "docs" / "factors.md"
    assert path.read_text(encoding="utf-8") == F.generate_docs(), (
        "docs/factors.md is stale: run `python -m factor_core.factors --write-docs docs/factors.md`")


# --------------------------------------------------------------------------- resample


def test_resample_bars_layout_and_empty_hours(klines_10d):
    bars = F.resample_bars(klines_10d)
    assert list(bars.columns) == list(F.BAR_COLUMNS)
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]" == str(bars["close_time"].dtype)
    assert len(bars) == 240 and (bars["close_time"] - bars["ts"] == HOUR).all()
    assert (bars["ts"].diff().iloc[1:] == HOUR).all()
    # empty hour: forward-filled close, zero volume, no minutes, NaN vwap
    for hour in (30, 31, 100):
        row = bars.iloc[hour]
        assert row["n_minutes"] == 0 and row["volume"] == 0 and np.isnan(row["vwap"])
        assert row["open"] == row["high"] == row["low"] == row["close"] == bars["close"].iloc[29 if hour < 100 else 99]
    # pandas reference for a full hour
    k = klines_10d.set_index("open_time")
    g = k.resample("1h")
    full = bars["n_minutes"].to_numpy() > 0
    assert_same(arr(bars, "high")[full], g["high"].max().to_numpy()[full], rtol=0)
    assert_same(arr(bars, "low")[full], g["low"].min().to_numpy()[full], rtol=0)
    assert_same(arr(bars, "open")[full], g["open"].first().to_numpy()[full], rtol=0)
    assert_same(arr(bars, "close")[full], g["close"].last().to_numpy()[full], rtol=0)
    for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
        assert_same(arr(bars, col), g[col].sum().to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(bars["trade_count"].to_numpy(), g["trade_count"].sum().to_numpy())
    lr = np.log(k["close"] / k["close"].shift(1).fillna(k["open"]))
    assert_same(arr(bars, "realized_var"), (lr ** 2).resample("1h").sum().to_numpy(), rtol=1e-9, atol=1e-20)


def test_resample_robust_to_bad_prices_and_unsorted_input():
    k = make_klines(1, seed=4)
    k.loc[10, "close"] = np.nan
    k.loc[11, "high"] = np.inf
    k.loc[12, "low"] = -1.0
    k.loc[13, "volume"] = np.nan
    bars = F.resample_bars(k.sample(frac=1.0, random_state=0))
    assert len(bars) == 24 and bars["n_minutes"].iloc[0] == 57
    assert np.isfinite(bars[["open", "high", "low", "close", "volume", "realized_var"]].to_numpy()).all()
    empty = F.compute_factor_bars(k.iloc[:0])
    assert list(empty.columns) == list(F.BAR_COLUMNS) + list(F.FACTOR_NAMES) and len(empty) == 0


# --------------------------------------------------------------------------- TA-Lib contract on bars


def test_talib_factors_on_bars(bars_10d):
    b = bars_10d
    c, h, low, v = arr(b, "close"), arr(b, "high"), arr(b, "low"), arr(b, "volume")
    assert_same(arr(b, "log_ret_1"), np.r_[np.nan, np.log(c[1:] / c[:-1])], rtol=1e-12)
    assert_same(arr(b, "rsi_14"), talib.RSI(c, 14))
    assert_same(arr(b, "rsi_28"), talib.RSI(c, 28))
    assert_same(arr(b, "atr_14"), talib.ATR(h, low, c, 14))
    up, mid, lo = talib.BBANDS(c, 20, 2, 2, 0)
    assert_same(arr(b, "bb_mid_20"), mid)
    assert_same(arr(b, "bb_upper_20"), up)
    assert_same(arr(b, "bb_lower_20"), lo)
    assert_same(arr(b, "bb_position_20"), (c - lo) / (up - lo), rtol=1e-7)
    assert_same(arr(b, "bb_width_20"), (up - lo) / mid, rtol=1e-7)
    line = talib.EMA(c, 12) - talib.EMA(c, 26)
    sig = talib.EMA(line, 9)
    assert_same(arr(b, "macd_12_26"), line)
    assert_same(arr(b, "macd_signal_9"), sig)
    assert_same(arr(b, "macd_hist"), line - sig, atol=1e-12 * np.nanmax(np.abs(line)))
    assert_same(arr(b, "obv"), talib.OBV(c, v))


def test_other_factors_against_pandas(bars_10d):
    b = bars_10d
    c, v, qv = b["close"], b["volume"], b["quote_volume"]
    tb, tbq = b["taker_buy_volume"], b["taker_buy_quote_volume"]
    r1 = np.log(c / c.shift(1))
    for n in (1, 4, 24):
        assert_same(arr(b, f"log_ret_{n}"), np.log(c / c.shift(n)), rtol=1e-12)
    for n in (12, 24, 72):
        assert_same(arr(b, f"mom_{n}"), c.pct_change(n), rtol=1e-9)
    assert_same(arr(b, "mom_composite"), 0.2 * c.pct_change(12) + 0.3 * c.pct_change(24) + 0.5 * c.pct_change(72),
                rtol=1e-9, atol=1e-15)
    vs = v.rolling(24).sum()
    assert_same(arr(b, "vol_mom_24"), (vs / vs.shift(24) - 1), rtol=1e-9)
    assert_same(arr(b, "rv_1h"), np.sqrt(b["realized_var"]), rtol=1e-12)
    assert_same(arr(b, "rv_24"), np.sqrt(b["realized_var"].rolling(24).sum()), rtol=1e-9)
    assert_same(arr(b, "vol_24"), r1.rolling(24).std(), rtol=1e-8)
    assert_same(arr(b, "vol_72"), r1.rolling(72).std(), rtol=1e-8)
    vwap = qv.rolling(24).sum() / v.rolling(24).sum()
    assert_same(arr(b, "vwap_24"), vwap, rtol=1e-9)
    assert_same(arr(b, "close_vwap_24"), c / vwap, rtol=1e-9)
    obv = pd.Series(talib.OBV(c.to_numpy(), v.to_numpy()))
    assert_same(arr(b, "obv_72"), obv - obv.shift(72), rtol=1e-6, atol=1e-9 * obv.abs().max())
    ami = (r1.abs() / qv.where(qv > 0) * 1e6).rolling(24, min_periods=12).mean()
    ami.iloc[:23] = np.nan
    assert_same(arr(b, "amihud_24"), ami, rtol=1e-9)
    assert_same(arr(b, "turnover_24_168"), qv.rolling(24).sum() / (qv.rolling(168).sum() / 7), rtol=1e-9)
    ofi = (2 * tb.rolling(24).sum() - v.rolling(24).sum()) / v.rolling(24).sum()
    assert_same(arr(b, "ofi_24"), ofi, rtol=1e-9, atol=1e-12)
    assert_same(arr(b, "ofi_1"), ((2 * tb - v) / v.where(v > 0)), rtol=1e-9, atol=1e-12)
    # price impact: rolling OLS slope of bps returns on signed quote volume (in millions)
    x = (2 * tbq - qv) * 1e-6
    y = r1 * 1e4
    slope = y.rolling(24).cov(x) / x.rolling(24).var()
    got = arr(b, "price_impact_24")
    m = np.isfinite(slope.to_numpy()) & (x.rolling(24).count() == 24).to_numpy() & (y.rolling(24).count() == 24).to_numpy()
    np.testing.assert_allclose(got[m], slope.to_numpy()[m], rtol=1e-7)
    # Corwin-Schultz spread proxy
    hh, ll = b["high"], b["low"]
    beta = np.log(hh / ll) ** 2 + np.log(hh.shift(1) / ll.shift(1)) ** 2
    gamma = np.log(np.maximum(hh, hh.shift(1)) / np.minimum(ll, ll.shift(1))) ** 2
    kk = 3 - 2 * np.sqrt(2)
    alpha = ((np.sqrt(2 * beta) - np.sqrt(beta)) / kk - np.sqrt(gamma / kk)).clip(lower=0)
    cs = (2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))) * 1e4
    ref = cs.rolling(24, min_periods=12).mean()
    ref.iloc[:23] = np.nan
    assert_same(arr(b, "spread_cs_24"), ref, rtol=1e-8)


def test_funding_and_liquidity_join(klines_10d):
    funding = make_funding("2024-01-01 00:00", 10)
    funding = funding.iloc[1:].reset_index(drop=True)  # first event at 08:00
    liq = make_minute_liquidity(klines_10d)
    b = F.compute_factor_bars(klines_10d, funding=funding, liquidity=liq)
    # latest settlement STRICTLY before close_time
    ref = pd.merge_asof(b[["close_time"]], funding.rename(columns={"ts": "close_time"}), on="close_time",
                        direction="backward", allow_exact_matches=False)
    assert_same(arr(b, "funding_rate"), ref["funding_rate"], rtol=0)
    # the 07:00 bar closes at 08:00, exactly at the first settlement: not yet known; the 08:00 bar has it
    assert np.isnan(b["funding_rate"].iloc[:8]).all() and b["funding_rate"].iloc[8] == funding["funding_rate"].iloc[0]
    # the 23:00 bar (close_time = next-day 00:00) keeps the 16:00 rate, never the next day's 00:00 settlement
    last_bar_of_day = b.index[b["ts"].dt.hour == 23]
    sixteen = funding.set_index("ts")["funding_rate"]
    for i in last_bar_of_day[:-1]:
        assert b["funding_rate"].iloc[i] == sixteen[b["ts"].iloc[i].normalize() + pd.Timedelta("16h")]
    g = liq.set_index("ts").resample("1h").mean().reindex(b["ts"])
    for col in ("quoted_spread_bps", "effective_spread_bps", "depth_10bps_usd", "depth_50bps_usd",
                "depth_imbalance", "trade_imbalance"):
        assert_same(arr(b, f"liq_{col}"), g[col].to_numpy(), rtol=1e-9)
    # no optional inputs -> NaN columns, never errors; partial liquidity frame -> NaN for the missing column
    assert b.filter(like="liq_").notna().any().all()
    assert b.filter(like="liqd_").isna().all().all()  # no daily input -> NaN, no error
    assert F.compute_factor_bars(klines_10d, liquidity=liq.iloc[:0])["liq_trade_imbalance"].isna().all()


def test_optional_input_without_a_column_the_registry_reads_is_an_error_naming_it(klines_10d):
    liq = make_minute_liquidity(klines_10d)
    with pytest.raises(ValueError, match=r"liquidity: missing column\(s\) \['quoted_spread_bps'\], read by "
                                         r"liq_quoted_spread_bps"):
        F.compute_factor_bars(klines_10d, liquidity=liq.drop(columns="quoted_spread_bps"))
    daily = make_liquidity_daily("2024-01-01", 10).drop(columns="vpin")
    with pytest.raises(ValueError, match=r"liquidity_daily: missing column\(s\) \['vpin'\], read by liqd_vpin"):
        F.compute_factor_bars(klines_10d, liquidity_daily=daily)
    with pytest.raises(ValueError, match=r"funding: missing column\(s\) \['funding_rate'\]"):
        F.compute_factor_bars(klines_10d, funding=make_funding("2024-01-01", 2).rename(columns={"funding_rate": "r"}))


def test_liquidity_daily_join_is_the_previous_day(klines_10d):
    daily = make_liquidity_daily("2024-01-01", 10)
    daily = daily[daily["ts"] != pd.Timestamp("2024-01-05", tz="UTC")]  # day 5 missing
    shuffled = daily.sample(frac=1.0, random_state=1)
    b = F.compute_factor_bars(klines_10d, liquidity_daily=shuffled)
    by_day = daily.set_index("ts")
    for key in LIQD_KEYS:
        got = b[f"liqd_{key}"]
        prev = b["ts"].dt.floor("1D") - DAY
        expected = by_day[key].reindex(prev).to_numpy()
        assert_same(got, expected, rtol=0)
        # day 1: no previous day; day 6: its previous day (5) is missing and nothing older is carried
        assert got[b["ts"] < pd.Timestamp("2024-01-02", tz="UTC")].isna().all()
        day6 = (b["ts"] >= pd.Timestamp("2024-01-06", tz="UTC")) & (b["ts"] < pd.Timestamp("2024-01-07", tz="UTC"))
        assert got[day6].isna().all()
        # constant within a day: the value known at the day's 00:00, never the same day's summary
        day3 = b["ts"].dt.floor("1D") == pd.Timestamp("2024-01-03", tz="UTC")
        assert (got[day3] == by_day.loc[pd.Timestamp("2024-01-02", tz="UTC"), key]).all()
    # a row stamped inside the day still keys that day; two rows for one day are refused
    off = daily.assign(ts=daily["ts"] + pd.Timedelta("3h"))
    assert_same(F.compute_factor_bars(klines_10d, liquidity_daily=off)["liqd_vpin"], b["liqd_vpin"], rtol=0)
    with pytest.raises(ValueError, match="more than one row for UTC day"):
        F.compute_factor_bars(klines_10d, liquidity_daily=pd.concat([daily, daily.iloc[[2]]]))


def test_join_kernels_against_pandas():
    ev_ts = np.array([10, 20, 30], dtype=np.int64)
    ev = np.array([1.0, np.nan, 3.0])
    q = np.array([5, 10, 15, 25, 30, 99], dtype=np.int64)
    assert_same(K.asof_values(q, ev_ts, ev, True), np.array([np.nan, np.nan, 1.0, 1.0, 1.0, 3.0]))
    assert_same(K.asof_values(q, ev_ts, ev, False), np.array([np.nan, 1.0, 1.0, 1.0, 3.0, 3.0]))
    ns_day = 86_400_000_000_000
    days = np.array([0, 1, 3], dtype=np.int64) * ns_day
    vals = np.array([7.0, 8.0, 9.0])
    queries = np.array([0, ns_day, ns_day + 5, 2 * ns_day, 3 * ns_day, 4 * ns_day - 1, 5 * ns_day], dtype=np.int64)
    assert_same(K.lagged_day_values(queries, days, vals, 1), np.array([np.nan, 7.0, 7.0, 8.0, np.nan, np.nan, np.nan]))
    assert_same(K.lagged_day_values(queries, days[:0], vals[:0], 1), np.full(queries.size, np.nan))


def test_short_history_first_day_and_zero_volume():
    k = make_klines(0.5, seed=5)  # 12 bars: fewer than most windows
    k["volume"] = 0.0
    k["quote_volume"] = 0.0
    k["taker_buy_volume"] = 0.0
    k["taker_buy_quote_volume"] = 0.0
    with np.errstate(all="raise"):
        b = F.compute_factor_bars(k, funding=make_funding("2024-01-01", 1).iloc[:0])
    assert len(b) == 12
    vals = b[list(F.FACTOR_NAMES)].to_numpy(dtype=float)
    assert not np.isinf(vals).any()
    for col in ("vwap_24", "amihud_24", "ofi_1", "rsi_28", "macd_signal_9", "turnover_24_168", "vol_mom_24"):
        assert b[col].isna().all(), col
    assert b["log_ret_1"].iloc[1:].notna().all()
    one = F.compute_factor_bars(make_klines(1 / 1440, seed=6))
    assert len(one) == 1 and np.isnan(one["log_ret_1"].iloc[0])


# --------------------------------------------------------------------------- day-by-day == one pass


def test_day_by_day_equals_one_pass():
    n_days = F.WARMUP_DAYS + 5
    start = pd.Timestamp("2024-02-01", tz="UTC")
    k = make_klines(n_days, start="2024-02-01", seed=7, drop_frac=0.02, empty_hours=(50, 300, 24 * 22 + 5))
    funding = make_funding("2024-02-01", n_days)
    liq = make_minute_liquidity(k)
    daily = make_liquidity_daily("2024-02-01", n_days)
    one = F.compute_factor_bars(k, funding=funding, liquidity=liq, liquidity_daily=daily).set_index("ts")
    checked = 0
    for d in range(F.WARMUP_DAYS, n_days):
        day0 = start + d * DAY
        lo = day0 - F.WARMUP_DAYS * DAY
        sel = (k["open_time"] >= lo) & (k["open_time"] < day0 + DAY)
        # exactly what factor_bars maps: funding of the previous + current day (nothing of the next
        # day), the day's minute liquidity and the previous day's daily liquidity row
        fsel = (funding["ts"] >= day0 - DAY) & (funding["ts"] < day0 + DAY)
        lsel = (liq["ts"] >= day0) & (liq["ts"] < day0 + DAY)
        dsel = daily["ts"] == day0 - DAY
        part = F.compute_factor_bars(k[sel].reset_index(drop=True), funding=funding[fsel], liquidity=liq[lsel],
                                     liquidity_daily=daily[dsel])
        part = part[(part["ts"] >= day0) & (part["ts"] < day0 + DAY)].set_index("ts")
        ref = one.loc[part.index]
        assert len(part) == 24
        for spec in F.FACTORS:
            got, exp = part[spec.name].to_numpy(float), ref[spec.name].to_numpy(float)
            if not spec.start_invariant:
                # obv: cumulative from the start of the input -> a constant offset per run
                off = got - exp
                np.testing.assert_allclose(off, off[0], rtol=0, atol=1e-9 * np.abs(exp).max())
                continue
            np.testing.assert_array_equal(np.isnan(got), np.isnan(exp), err_msg=spec.name)
            m = ~np.isnan(exp)
            # 1e-6 relative; values that cross zero (macd_hist, returns) get an absolute floor at
            # 1e-9 of the column's scale over the whole history
            scale = np.nanmax(np.abs(one[spec.name].to_numpy(float))) if m.any() else 0.0
            np.testing.assert_allclose(got[m], exp[m], rtol=1e-6, atol=1e-9 * scale, err_msg=spec.name)
            checked += m.sum()
        for col in F.BAR_COLUMNS[2:]:
            if col != "realized_var":
                assert_same(part[col], ref[col], rtol=1e-12)
    assert checked > 5 * 24 * 30
    assert one["funding_rate"].notna().all() and one.filter(like="liqd_").iloc[24:].notna().all().all()


# --------------------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize("t_offset", ["2 days 13:00:00", "2 days 13:37:00", "1 days 00:00:00", "2 days 23:59:00", "0 days 05:01:00"])
def test_no_look_ahead(t_offset):
    k = make_klines(3, seed=8, drop_frac=0.01, empty_hours=(20,))
    liq = make_minute_liquidity(k)
    funding = make_funding("2024-01-01", 4)
    daily = make_liquidity_daily("2024-01-01", 4)
    t = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(t_offset)
    base = F.compute_factor_bars(k, funding=funding, liquidity=liq, liquidity_daily=daily)
    known = base["close_time"] <= t
    assert known.any()
    rng = np.random.default_rng(9)
    after = k["open_time"] >= t
    variants = []
    # 1) every value at/after t changed
    k2 = k.copy()
    for col in ("open", "high", "low", "close"):
        k2.loc[after, col] *= rng.uniform(0.5, 1.5, after.sum())
    for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
        k2.loc[after, col] = rng.uniform(0, 100, after.sum())
    k2.loc[after, "trade_count"] = 7
    l2 = liq.copy()
    l2.loc[l2["ts"] >= t, l2.columns[1:]] = rng.uniform(-5, 5, ((l2["ts"] >= t).sum(), len(l2.columns) - 1))
    # funding settled at/after t (including exactly at a known bar's close_time) and daily summaries
    # not complete by t (known_at = day end > t) changed
    f2 = funding.copy()
    f2.loc[f2["ts"] >= t, "funding_rate"] = rng.uniform(-1, 1, (f2["ts"] >= t).sum())
    d2 = daily.copy()
    late = d2["known_at"] > t
    d2.loc[late, list(LIQD_KEYS)] = rng.uniform(-5, 5, (late.sum(), len(LIQD_KEYS)))
    variants.append((k2, l2, f2, d2))
    # 2) everything at/after t deleted, and 3) NaN/inf prices from t on
    variants.append((k[~after].reset_index(drop=True), liq[liq["ts"] < t], funding[funding["ts"] < t],
                     daily[daily["known_at"] <= t]))
    k3 = k.copy()
    k3.loc[after, "close"] = np.nan
    k3.loc[after, "high"] = np.inf
    variants.append((k3, liq, funding, daily))
    for kk, ll, ff, dd in variants:
        other = F.compute_factor_bars(kk, funding=ff, liquidity=ll, liquidity_daily=dd)
        a = base[known].reset_index(drop=True)
        b = other.iloc[: known.sum()].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
