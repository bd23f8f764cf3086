"""Summary metrics per strategy, from the stored daily (and hourly) backtest tables.

Conventions (docs/research.md, "Summary"), each equal to empyrical with
``period="daily", annualization=365`` on the daily ``net_return`` series:

* returns are compounded: ``total_return = prod(1 + r) - 1``;
* ``cagr = (1 + total_return) ** (365 / days) - 1`` (``empyrical.annual_return``);
* ``annual_volatility = std(r, ddof=1) * sqrt(365)``;
* ``sharpe = mean(r) / std(r, ddof=1) * sqrt(365)`` (crypto trades every day; risk-free 0);
* ``sortino = mean(r) * 365 / (sqrt(mean(min(r, 0) ** 2)) * sqrt(365))``;
* ``max_drawdown``: worst ``equity / running peak - 1`` with the peak starting at 1;
* ``calmar = cagr / |max_drawdown|`` (NaN without a drawdown);
* ``win_rate``: share of days with ``net_return > 0`` among the days that held a position.

``mean_ic`` / ``ic_ir`` are the mean and mean / std (ddof = 1) of the hourly rank
IC of the strategy's score against the bar's return (``backtest_hourly.ic``).
Samples shorter than ``SHORT_SAMPLE_DAYS`` days are flagged (``short_sample``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365
SHORT_SAMPLE_DAYS = 30
SUMMARY_COLUMNS = (
    "strategy", "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
    "win_rate", "mean_ic", "ic_ir", "mean_turnover", "total_fee_cost", "total_spread_cost", "total_funding",
    "start", "end", "days", "short_sample", "uses_planted_factor",
)


def max_drawdown(returns: np.ndarray) -> float:
    """Worst drawdown of ``prod(1 + r)`` from its running peak, the peak starting at 1 (before the first day)."""
    r = np.asarray(returns, dtype="float64")
    if r.size == 0:
        return float("nan")
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    return float(np.min(equity / np.maximum.accumulate(equity) - 1.0))


def return_metrics(returns: np.ndarray, periods_per_year: int = DAYS_PER_YEAR) -> dict[str, float]:
    """The return-based metrics of one daily series (see the module docstring)."""
    r = np.asarray(returns, dtype="float64")
    n = r.size
    nan = float("nan")
    if n == 0:
        return dict.fromkeys(("total_return", "cagr", "annual_volatility", "sharpe", "sortino", "max_drawdown",
                              "calmar"), nan)
    total = float(np.prod(1.0 + r) - 1.0)
    cagr = float((1.0 + total) ** (periods_per_year / n) - 1.0)
    std = float(r.std(ddof=1)) if n > 1 else nan
    mean = float(r.mean())
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(periods_per_year))
    drawdown = max_drawdown(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "total_return": total,
            "cagr": cagr,
            "annual_volatility": std * np.sqrt(periods_per_year),
            "sharpe": mean / std * np.sqrt(periods_per_year) if n > 1 and std > 0 else nan,
            "sortino": mean * periods_per_year / downside if n > 1 and downside > 0 else nan,
            "max_drawdown": drawdown,
            "calmar": cagr / abs(drawdown) if drawdown < 0 else nan,
        }


def summarize_backtests(daily: pd.DataFrame, hourly: pd.DataFrame | None = None) -> pd.DataFrame:
    """``backtest_summary``: one row per strategy of ``backtest_daily`` (``SUMMARY_COLUMNS``).

    ``hourly`` (``backtest_hourly``) supplies ``mean_ic`` / ``ic_ir``; without it they
    come from the daily ``mean_ic`` column. ``start`` / ``end`` are the first and last
    day (UTC midnight timestamps), ``days`` the number of daily rows.
    """
    rows = []
    if daily is None or daily.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    for strategy, days in daily.sort_values(["strategy", "date"]).groupby("strategy", sort=True):
        r = days["net_return"].to_numpy(dtype="float64", na_value=np.nan)
        r = np.where(np.isfinite(r), r, 0.0)
        row: dict[str, object] = {"strategy": strategy, **return_metrics(r)}
        invested = days["hours_invested"].to_numpy() > 0 if "hours_invested" in days else np.ones(len(r), bool)
        row["win_rate"] = float((r[invested] > 0).mean()) if invested.any() else float("nan")
        if hourly is not None and not hourly.empty:
            ic = hourly.loc[hourly["strategy"] == strategy, "ic"].dropna()
        else:
            ic = days["mean_ic"].dropna()
        ic_std = float(ic.std(ddof=1)) if len(ic) > 1 else float("nan")
        row["mean_ic"] = float(ic.mean()) if len(ic) else float("nan")
        row["ic_ir"] = row["mean_ic"] / ic_std if ic_std and np.isfinite(ic_std) and ic_std > 0 else float("nan")
        row["mean_turnover"] = float(days["turnover"].mean())
        row["total_fee_cost"] = float(days["fee_cost"].sum())
        row["total_spread_cost"] = float(days["spread_cost"].sum())
        row["total_funding"] = float(days["funding"].sum())
        dates = pd.to_datetime(days["date"], utc=True)
        row["start"], row["end"] = dates.min(), dates.max()
        row["days"] = len(days)
        row["short_sample"] = len(days) < SHORT_SAMPLE_DAYS
        row["uses_planted_factor"] = bool(days.get("uses_planted_factor", pd.Series([False])).any())
        rows.append(row)
    return pd.DataFrame(rows)[list(SUMMARY_COLUMNS)]

