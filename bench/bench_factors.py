"""Benchmark of the factor set: Numba kernels vs idiomatic pandas vs TA-Lib.

Run:  /work/main/.venv/bin/python bench/bench_factors.py [--rows N] [--repeat R]

From one run on the same generated 1-minute data it prints
(a) throughput of ``compute_factor_bars`` (full factor set, 1-minute input
    rows per second, single thread: NUMBA_NUM_THREADS=1, BLAS/OpenMP = 1),
(b) the speed-up over a straightforward pandas implementation of the same set
    (resample + rolling/ewm, written below; checked against ours),
(c) the speed-up over TA-Lib for RSI(14) + ATR(14) + Bollinger(20, 2) + MACD
    (EMA 12/26, signal EMA 9) over the same arrays (the N-row 1-minute OHLC arrays),
(d) the first-call time (import + JIT compile or cache load), reported separately.
(c) allocates eight 40 MB outputs: with THP in ``madvise`` mode their first-touch
page faults dominate unless glibc is asked for huge pages
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, glibc >= 2.35), as NumPy does for
TA-Lib's outputs; see bench/README.md.
Timings are the best of ``--repeat`` runs (wall clock); CPU time of the same runs
is shown too because shared machines make wall clock noisy.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_ROWS_PER_S = 10e6
TARGET_VS_PANDAS = 20.0
TARGET_VS_TALIB = 1.0


def make_klines(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2020-01-01", periods=rows, freq="1min", tz="UTC").as_unit("ns")
    c = 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, rows)))
    o = np.r_[30_000.0, c[:-1]]
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 3e-4, rows)))
    low = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 3e-4, rows)))
    v = rng.lognormal(0, 1, rows)
    tb = v * rng.uniform(0, 1, rows)
    return pd.DataFrame({
        "open_time": ts, "open": o, "high": h, "low": low, "close": c, "volume": v, "quote_volume": v * c,
        "trade_count": rng.integers(0, 200, rows).astype(np.int64), "taker_buy_volume": tb,
        "taker_buy_quote_volume": tb * c,
    })


def best_of(fn, repeat: int):
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        best_wall, best_cpu = min(best_wall, w), min(best_cpu, c)
    return best_wall, best_cpu, result


# --------------------------------------------------------------------------- pandas reference


def _wilder_seeded(x: pd.Series, n: int, first: int) -> pd.Series:
    """Wilder/EMA recursion seeded with the SMA of the first n values (TA-Lib style) via ewm."""
    y = x.copy()
    y.iloc[: first + n - 1] = np.nan
    y.iloc[first + n - 1] = x.iloc[first: first + n].mean()
    return y.ewm(alpha=1.0 / n, adjust=False, ignore_na=True).mean()


def _ema_seeded(x: pd.Series, n: int) -> pd.Series:
    first = x.first_valid_index()
    pos = x.index.get_loc(first)
    y = x.copy()
    y.iloc[: pos + n - 1] = np.nan
    y.iloc[pos + n - 1] = x.iloc[pos: pos + n].mean()
    return y.ewm(span=n, adjust=False, ignore_na=True).mean()


def pandas_factor_bars(k: pd.DataFrame) -> pd.DataFrame:
    df = k.set_index("open_time")
    g = df.resample("1h", label="left", closed="left")
    bars = g.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
                  "quote_volume": "sum", "trade_count": "sum", "taker_buy_volume": "sum",
                  "taker_buy_quote_volume": "sum"})
    bars["n_minutes"] = g["close"].count()
    lr = np.log(df["close"]).diff()
    lr.iloc[0] = np.log(df["close"].iloc[0] / df["open"].iloc[0])
    bars["realized_var"] = (lr ** 2).resample("1h").sum()
    c0 = bars["close"].ffill()
    for col in ("open", "high", "low"):
        bars[col] = bars[col].fillna(c0.shift(1))
    bars["close"] = c0
    bars["vwap"] = bars["quote_volume"] / bars["volume"].where(bars["volume"] > 0)
    c, h, low, v, qv = bars["close"], bars["high"], bars["low"], bars["volume"], bars["quote_volume"]
    out = {}
    for n in (1, 4, 24):
        out[f"log_ret_{n}"] = np.log(c / c.shift(n))
    for n in (12, 24, 72):
        out[f"mom_{n}"] = c.pct_change(n)
    out["mom_composite"] = 0.2 * out["mom_12"] + 0.3 * out["mom_24"] + 0.5 * out["mom_72"]
    vs = v.rolling(24).sum()
    out["vol_mom_24"] = vs / vs.shift(24).where(vs.shift(24) > 0) - 1
    out["rv_1h"] = np.sqrt(bars["realized_var"])
    out["rv_24"] = np.sqrt(bars["realized_var"].rolling(24).sum())
    r1 = out["log_ret_1"]
    out["vol_24"] = r1.rolling(24).std()
    out["vol_72"] = r1.rolling(72).std()
    pc = c.shift(1)
    tr = pd.concat([h - low, (h - pc).abs(), (low - pc).abs()], axis=1).max(axis=1, skipna=False)
    out["atr_14"] = _wilder_seeded(tr, 14, 1)
    d = c.diff()
    for n in (14, 28):
        up = _wilder_seeded(d.clip(lower=0), n, 1)
        dn = _wilder_seeded((-d).clip(lower=0), n, 1)
        out[f"rsi_{n}"] = (100 * up / (up + dn)).where(up + dn != 0, 0.0).where(up.notna())
    mid = c.rolling(20).mean()
    sd = c.rolling(20).std(ddof=0)
    out["bb_mid_20"], out["bb_upper_20"], out["bb_lower_20"] = mid, mid + 2 * sd, mid - 2 * sd
    width = out["bb_upper_20"] - out["bb_lower_20"]
    out["bb_position_20"] = (c - out["bb_lower_20"]) / width.where(width > 0)
    out["bb_width_20"] = width / mid
    line = _ema_seeded(c, 12) - _ema_seeded(c, 26)
    sig = _ema_seeded(line, 9)
    out["macd_12_26"], out["macd_signal_9"], out["macd_hist"] = line, sig, line - sig
    sv = np.sign(d) * v
    obv = sv.fillna(0).cumsum() + v.iloc[0]
    out["obv"] = obv
    out["obv_72"] = sv.rolling(72).sum()
    out["vwap_24"] = qv.rolling(24).sum() / v.rolling(24).sum().where(lambda s: s > 0)
    out["close_vwap_24"] = c / out["vwap_24"]
    ami = (r1.abs() / qv.where(qv > 0) * 1e6).rolling(24, min_periods=12).mean()
    out["amihud_24"] = ami
    q168 = qv.rolling(168).sum()
    out["turnover_24_168"] = qv.rolling(24).sum() / (q168.where(q168 > 0) * 24 / 168)
    beta = np.log(h / low) ** 2 + np.log(h.shift(1) / low.shift(1)) ** 2
    gamma = np.log(np.maximum(h, h.shift(1)) / np.minimum(low, low.shift(1))) ** 2
    kk = 3 - 2 * np.sqrt(2)
    alpha = ((np.sqrt(2 * beta) - np.sqrt(beta)) / kk - np.sqrt(gamma / kk)).clip(lower=0)
    out["spread_cs_24"] = (2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha)) * 1e4).rolling(24, min_periods=12).mean()
    x = (2 * bars["taker_buy_quote_volume"] - qv) * 1e-6
    y = r1 * 1e4
    out["price_impact_24"] = y.rolling(24).cov(x) / x.rolling(24).var()
    tb = bars["taker_buy_volume"]
    out["ofi_1"] = (2 * tb - v) / v.where(v > 0)
    v24 = v.rolling(24).sum()
    out["ofi_24"] = (2 * tb.rolling(24).sum() - v24) / v24.where(v24 > 0)
    out["funding_rate"] = pd.Series(np.nan, index=bars.index)
    for col in ("quoted_spread_bps", "effective_spread_bps", "depth_10bps_usd", "depth_50bps_usd",
                "depth_imbalance", "trade_imbalance"):
        out[f"liq_{col}"] = pd.Series(np.nan, index=bars.index)
    from factor_core.factors import FACTOR_NAMES

    for name in FACTOR_NAMES:  # the daily liquidity join has no input in this benchmark either
        if name.startswith("liqd_"):
            out[name] = pd.Series(np.nan, index=bars.index)
    res = pd.concat([bars, pd.DataFrame(out)], axis=1)
    res.index.name = "ts"
    res = res.reset_index()
    res.insert(1, "close_time", res["ts"] + pd.Timedelta("1h"))
    return res


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000, help="1-minute input rows (default 5,000,000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions, best is reported (default 5)")
    args = ap.parse_args(argv)
    rows = args.rows

    print(f"factor bench: {rows:,} 1-minute rows ({rows / 1440:.0f} days), single thread, best of {args.repeat}")
    k = make_klines(rows)

    # (d) first call: import + compile/cache-load + first small call
    w0 = time.perf_counter()
    from factor_core import factors as F
    from factor_core import kernels as K
    t_import = time.perf_counter() - w0
    w0 = time.perf_counter()
    F.compute_factor_bars(k.iloc[: 3 * 1440])
    t_first = time.perf_counter() - w0
    w0 = time.perf_counter()
    F.compute_factor_bars(k.iloc[: 3 * 1440])
    t_second = time.perf_counter() - w0

    # (a) full factor set
    wall, cpu, ours = best_of(lambda: F.compute_factor_bars(k), args.repeat)
    rate = rows / wall
    print(f"(a) compute_factor_bars, {len(F.FACTORS)} factors -> {len(ours):,} hourly bars: "
          f"{wall * 1e3:.1f} ms wall ({cpu * 1e3:.1f} ms CPU) = {rate / 1e6:.1f} M rows/s per core "
          f"[target >= {TARGET_ROWS_PER_S / 1e6:.0f} M] {'OK' if rate >= TARGET_ROWS_PER_S else 'MISSED'}")

    # (b) pandas
    p_wall, p_cpu, ref = best_of(lambda: pandas_factor_bars(k), max(1, min(args.repeat, 3)))
    ratio = p_wall / wall
    print(f"(b) pandas implementation: {p_wall * 1e3:.1f} ms wall ({p_cpu * 1e3:.1f} ms CPU) -> "
          f"{ratio:.1f}x faster (CPU {p_cpu / cpu:.1f}x) [target >= {TARGET_VS_PANDAS:.0f}x] "
          f"{'OK' if ratio >= TARGET_VS_PANDAS else 'MISSED'}")
    warm = F.WARMUP_BARS
    worst = 0.0
    for name in F.FACTOR_NAMES:
        a = ours[name].to_numpy(float)[warm:]
        b = ref[name].to_numpy(float)[warm:]
        m = np.isfinite(a) & np.isfinite(b)
        if m.any():
            # relative, with a floor at 1e-3 of the column's median magnitude (values crossing 0)
            den = np.maximum(np.abs(b[m]), 1e-3 * np.median(np.abs(b[m])) + 1e-300)
            worst = max(worst, float(np.max(np.abs(a[m] - b[m]) / den)))
    print(f"    check: pandas vs numba after warm-up, max relative difference {worst:.1e}")

    # (c) TA-Lib subset over the same arrays
    import talib

    o, h, low, c = (k[col].to_numpy() for col in ("open", "high", "low", "close"))

    def ours_subset():  # the same outputs as TA-Lib: RSI, ATR, the three bands, MACD line/signal/hist
        K.rsi_wilder(c, 14)
        K.atr_wilder(h, low, c, 14)
        K.bbands(c, 20, 2.0)
        K.macd(c, 12, 26, 9)

    def talib_subset():
        talib.RSI(c, 14)
        talib.ATR(h, low, c, 14)
        talib.BBANDS(c, 20, 2, 2, 0)
        line = talib.EMA(c, 12) - talib.EMA(c, 26)
        talib.EMA(line, 9)

    ours_subset()
    o_wall, o_cpu, _ = best_of(ours_subset, args.repeat)
    t_wall, t_cpu, _ = best_of(talib_subset, args.repeat)
    r = t_wall / o_wall
    print(f"(c) RSI+ATR+BBANDS+MACD on {rows:,}-element arrays: numba {o_wall * 1e3:.1f} ms, "
          f"TA-Lib {t_wall * 1e3:.1f} ms -> {r:.2f}x (CPU {t_cpu / o_cpu:.2f}x) "
          f"[target >= {TARGET_VS_TALIB:.1f}x] {'OK' if r >= TARGET_VS_TALIB else 'MISSED'}")
    print(f"(d) first call: import {t_import * 1e3:.0f} ms + first compute_factor_bars {t_first * 1e3:.0f} ms "
          f"(JIT compile or cache load; a warm call takes {t_second * 1e3:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
