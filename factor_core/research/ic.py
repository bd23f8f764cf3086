"""Information coefficients per (factor, horizon, hour) and their statistics per (factor, horizon).

Calendar: every hour of every day (crypto trades 24/7); there is no business
-day calendar anywhere. Per hour ``ts`` and horizon ``h``:

* ``ic``: Pearson correlation, across the hour's symbols, of the raw factor
  value and ``fwd_ret_{h}h`` (``scipy.stats.pearsonr``);
* ``rank_ic``: Spearman correlation of the same pairs (``scipy.stats.spearmanr``,
  average ranks for ties), i.e. alphalens' ``factor_information_coefficient``;
* ``n_symbols``: the pairs with both values finite (at least 3, else NaN);
* ``rank_autocorr``: Pearson correlation between the factor's cross-sectional
  ranks at ``ts`` and at ``ts - h`` over the symbols ranked at both
  (alphalens' ``factor_rank_autocorrelation(period=h)``); 1 - it is the
  factor's turnover at that horizon.

``factor_report`` summarises the hourly rows (docs/research.md has the formulas).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factor_core.research.catalog import factor_group, factors_in, is_planted
from factor_core.research.panel import HORIZONS_H, fwd_column
from factor_core.research.strategies import RANK_PREFIX

MIN_IC_SYMBOLS = 3
IC_COLUMNS = ("date", "ts", "factor", "horizon_h", "ic", "rank_ic", "n_symbols", "rank_autocorr")


def grouped_pearson(x: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int,
                    min_count: int = MIN_IC_SYMBOLS) -> tuple[np.ndarray, np.ndarray]:
    """Per group, Pearson correlation of the pairs where both ``x`` and ``y`` are finite.

    ``x`` and ``y`` are 1-D, ``codes`` the group (0..n_groups-1) of each row.
    Two-pass (demeaned) sums, so the result matches ``np.corrcoef`` to rounding.
    Returns (corr, count); corr is NaN below ``min_count`` pairs or without dispersion.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    c = codes[ok]
    xv, yv = x[ok], y[ok]
    count = np.bincount(c, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(c, xv, n_groups) / count
        my = np.bincount(c, yv, n_groups) / count
        dx, dy = xv - mx[c], yv - my[c]
        sxy = np.bincount(c, dx * dy, n_groups)
        sxx = np.bincount(c, dx * dx, n_groups)
        syy = np.bincount(c, dy * dy, n_groups)
        corr = sxy / np.sqrt(sxx * syy)
    # A constant side gives sxx ~ 0 up to rounding of the mean: treat relative dispersion below 1e-24 as none.
    scale_x = np.bincount(c, xv * xv, n_groups)
    scale_y = np.bincount(c, yv * yv, n_groups)
    flat = (sxx <= 1e-24 * scale_x) | (syy <= 1e-24 * scale_y)
    corr = np.where((count >= min_count) & ~flat, np.clip(corr, -1.0, 1.0), np.nan)
    return corr, count.astype(np.int64)


def _masked_rank(values: np.ndarray, mask: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Average ranks of ``values`` within each group over the rows where ``mask`` holds (NaN elsewhere)."""
    return pd.Series(np.where(mask, values, np.nan)).groupby(codes).rank(method="average").to_numpy()


def compute_factor_ic(
    panel: pd.DataFrame,
    *,
    previous_panel: pd.DataFrame | None = None,
    factors: Sequence[str] | None = None,
    horizons_h: Sequence[int] = HORIZONS_H,
) -> pd.DataFrame:
    """``factor_ic`` rows for every (hour of ``panel``, factor, horizon).

    ``panel``: factor_panel rows of the day(s) to compute. ``previous_panel``:
    the panel of the day before (its ``rank_*`` columns feed ``rank_autocorr`` of
    the first ``h`` hours; None leaves those NaN). ``factors`` defaults to every
    catalogued factor in the panel. Hours whose label is not available yet get NaN
    ``ic`` / ``rank_ic`` and ``n_symbols = 0`` (they fill in when the panel does).
    """
    factors = list(factors) if factors is not None else factors_in(panel.columns)
    ts = pd.to_datetime(panel["ts"], utc=True)
    codes, hours = pd.factorize(ts, sort=True)
    n_hours = len(hours)
    history = _rank_history(panel, previous_panel, factors)
    frames = []
    for h in horizons_h:
        y = panel[fwd_column(h)].to_numpy(dtype="float64", na_value=np.nan)
        y_ok = np.isfinite(y)
        lagged = _lagged_ranks(panel, history, factors, h)
        for factor in factors:
            x = panel[factor].to_numpy(dtype="float64", na_value=np.nan)
            ic, n = grouped_pearson(x, y, codes, n_hours)
            both = np.isfinite(x) & y_ok
            rank_ic, _ = grouped_pearson(_masked_rank(x, both, codes), _masked_rank(y, both, codes), codes, n_hours)
            now_rank = panel[RANK_PREFIX + factor].to_numpy(dtype="float64", na_value=np.nan)
            autocorr, _ = grouped_pearson(now_rank, lagged[factor], codes, n_hours, min_count=2)
            frames.append(pd.DataFrame({
                "date": hours.strftime("%Y-%m-%d"), "ts": hours, "factor": factor, "horizon_h": np.int64(h),
                "ic": ic, "rank_ic": rank_ic, "n_symbols": n,
                "rank_autocorr": autocorr,
            }))
    if not frames:
        return _empty_ic()
    return pd.concat(frames, ignore_index=True)[list(IC_COLUMNS)]


def _empty_ic() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[ns, UTC]"),
        "factor": pd.Series(dtype=str), "horizon_h": pd.Series(dtype="int64"),
        "ic": pd.Series(dtype="float64"), "rank_ic": pd.Series(dtype="float64"),
        "n_symbols": pd.Series(dtype="int64"), "rank_autocorr": pd.Series(dtype="float64"),
    })


def _rank_history(panel: pd.DataFrame, previous: pd.DataFrame | None, factors: Sequence[str]) -> pd.DataFrame:
    columns = ["ts", "symbol"] + [RANK_PREFIX + f for f in factors]
    parts = [previous[[c for c in columns if c in previous.columns]]] if previous is not None else []
    parts.append(panel[columns])
    history = pd.concat(parts, ignore_index=True)
    history["ts"] = pd.to_datetime(history["ts"], utc=True)
    return history.drop_duplicates(["ts", "symbol"], keep="last").set_index(["ts", "symbol"])


def _lagged_ranks(panel: pd.DataFrame, history: pd.DataFrame, factors: Sequence[str], lag_h: int) -> dict:
    keys = pd.MultiIndex.from_arrays([pd.to_datetime(panel["ts"], utc=True) - pd.Timedelta(hours=lag_h),
                                      panel["symbol"]])
    lagged = history.reindex(keys)
    return {f: lagged[RANK_PREFIX + f].to_numpy(dtype="float64", na_value=np.nan)
            if RANK_PREFIX + f in lagged.columns else np.full(len(panel), np.nan) for f in factors}


# --------------------------------------------------------------------------- statistics


def newey_west_t(values: np.ndarray, lags: int) -> float:
    """t-statistic of the mean of ``values`` with a Newey-West (Bartlett kernel) standard error.

    ``var(mean) = (g0 + 2 * sum_{l=1..L} (1 - l / (L + 1)) * g_l) / T`` with
    ``g_l = sum_t (x_t - m)(x_{t-l} - m) / T``; equals statsmodels
    ``OLS(x, 1).fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": False})``.
    Overlapping ``h``-hour labels sampled hourly are MA(h - 1): use ``L = h - 1``.
    """
    x = np.asarray(values, dtype="float64")
    x = x[np.isfinite(x)]
    t_len = x.size
    if t_len < 2:
        return float("nan")
    d = x - x.mean()
    variance = d @ d / t_len
    for lag in range(1, min(int(lags), t_len - 1) + 1):
        variance += 2.0 * (1.0 - lag / (lags + 1.0)) * (d[lag:] @ d[:-lag]) / t_len
    if variance <= 0:
        return float("nan")
    return float(x.mean() / np.sqrt(variance / t_len))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if np.isfinite(a) and np.isfinite(b) and b != 0 else float("nan")


def _series_stats(values: pd.Series, horizon_h: int, prefix: str) -> dict:
    x = values.dropna().to_numpy(dtype="float64")
    mean = float(x.mean()) if x.size else float("nan")
    std = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return {
        f"mean_{prefix}": mean,
        f"{prefix}_std": std,
        f"{prefix}_ir": _ratio(mean, std),
        f"{prefix}_t": _ratio(mean, std / np.sqrt(x.size)) if x.size > 1 else float("nan"),
        f"{prefix}_t_nw": newey_west_t(x, horizon_h - 1),
        f"{prefix}_hit_rate": float((x > 0).mean()) if x.size else float("nan"),
    }


def factor_report(factor_ic: pd.DataFrame) -> pd.DataFrame:
    """One row per (factor, horizon) over every stored ``factor_ic`` hour.

    Columns: ``n_hours`` (hours with a rank IC), for the Pearson (``ic``) and the
    Spearman (``rank_ic``) series: ``mean_*``, ``*_std`` (ddof = 1), ``*_ir``
    (mean / std: alphalens' "Risk-Adjusted IC", not annualised), ``*_t`` (iid
    t = mean / (std / sqrt(n)), alphalens' "t-stat(IC)"), ``*_t_nw`` (Newey-West,
    lags = h - 1), ``*_hit_rate`` (share of hours with IC > 0); ``rank_ic_decay``
    (mean rank IC at h over mean rank IC at the shortest horizon),
    ``rank_autocorr`` (mean; turnover = 1 - it), ``group``, ``planted``, ``start``, ``end``.
    """
    if factor_ic.empty:
        return pd.DataFrame()
    rows = []
    ordered = factor_ic.sort_values(["factor", "horizon_h", "ts"], kind="stable")
    for (factor, horizon), hours in ordered.groupby(["factor", "horizon_h"], sort=False):
        row = {"factor": factor, "horizon_h": int(horizon), "group": factor_group(factor),
               "planted": is_planted(factor), "n_hours": int(hours["rank_ic"].notna().sum())}
        row.update(_series_stats(hours["ic"], int(horizon), "ic"))
        row.update(_series_stats(hours["rank_ic"], int(horizon), "rank_ic"))
        row["rank_autocorr"] = float(hours["rank_autocorr"].mean())
        row["start"] = pd.to_datetime(hours["ts"], utc=True).min()
        row["end"] = pd.to_datetime(hours["ts"], utc=True).max()
        rows.append(row)
    report = pd.DataFrame(rows)
    shortest = report.loc[report.groupby("factor")["horizon_h"].idxmin(), ["factor", "mean_rank_ic"]]
    base = report["factor"].map(dict(zip(shortest["factor"], shortest["mean_rank_ic"], strict=True)))
    report.insert(report.columns.get_loc("rank_autocorr"), "rank_ic_decay",
                  [_ratio(a, b) for a, b in zip(report["mean_rank_ic"], base, strict=True)])
    order = {name: i for i, name in enumerate(factors_in(report["factor"].unique()))}
    report["_order"] = report["factor"].map(lambda f: order.get(f, len(order)))
    return report.sort_values(["_order", "factor", "horizon_h"]).drop(columns="_order").reset_index(drop=True)
