"""Rank correlation between factors: per hour across symbols, averaged per day and overall.

Per hour, ``rank_corr(a, b)`` is the Spearman correlation across that hour's
symbols over the symbols with both factors finite (``DataFrame.corr("spearman")``,
pairwise complete). A day's value is the mean over its hours that define one,
stored with ``n_hours``; the overall value is the mean over every hour, i.e. the
``n_hours``-weighted mean of the daily values, so it can be rebuilt exactly from
the stored daily table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factor_core.research.catalog import factors_in

CORRELATION_COLUMNS = ("date", "factor_a", "factor_b", "rank_corr", "n_hours")


def daily_factor_correlation(panel: pd.DataFrame, factors: Sequence[str] | None = None) -> pd.DataFrame:
    """``factor_correlation`` rows (one per date and unordered factor pair ``a < b`` in catalog order)."""
    factors = list(factors) if factors is not None else factors_in(panel.columns)
    n = len(factors)
    upper = np.triu_indices(n, k=1)
    out = []
    for date, day in panel.groupby("date", sort=True):
        total = np.zeros((n, n))
        count = np.zeros((n, n), dtype=np.int64)
        for _, hour in day.groupby("ts", sort=True):
            corr = hour[factors].astype("float64").corr(method="spearman", min_periods=3).to_numpy()
            ok = np.isfinite(corr)
            total += np.where(ok, corr, 0.0)
            count += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        out.append(pd.DataFrame({
            "date": date,
            "factor_a": np.asarray(factors, dtype=object)[upper[0]],
            "factor_b": np.asarray(factors, dtype=object)[upper[1]],
            "rank_corr": mean[upper],
            "n_hours": count[upper],
        }))
    if not out:
        return pd.DataFrame(columns=list(CORRELATION_COLUMNS))
    return pd.concat(out, ignore_index=True)


def overall_factor_correlation(daily: pd.DataFrame) -> pd.DataFrame:
    """Mean hourly rank correlation per pair over every stored day (``n_hours``-weighted daily means)."""
    valid = daily[daily["n_hours"] > 0]
    weighted = valid.assign(w=valid["rank_corr"] * valid["n_hours"])
    grouped = weighted.groupby(["factor_a", "factor_b"], sort=False)
    result = grouped.agg(total=("w", "sum"), n_hours=("n_hours", "sum")).reset_index()
    result["rank_corr"] = result["total"] / result["n_hours"]
    return result[["factor_a", "factor_b", "rank_corr", "n_hours"]]


def correlation_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """Square symmetric matrix (1 on the diagonal) from ``factor_a`` / ``factor_b`` / ``rank_corr`` rows."""
    names = list(dict.fromkeys([*pairs["factor_a"], *pairs["factor_b"]]))
    names = factors_in(names) + [f for f in names if f not in factors_in(names)]
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for a, b, value in pairs[["factor_a", "factor_b", "rank_corr"]].itertuples(index=False):
        matrix.loc[a, b] = matrix.loc[b, a] = value
    return matrix
