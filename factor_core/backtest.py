"""Cost-aware cross-sectional quantile backtest and its summary statistics.

Timing convention (no look-ahead): the score of bar ``t-1`` is known at its
close, which is the open of bar ``t``; positions formed from it are held over
bar ``t`` and earn bar ``t``'s return. Turnover is charged when positions
change, at ``cost_bps`` per unit of one-way traded notional.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOURS_PER_YEAR = 24 * 365


@dataclass(frozen=True)
class BacktestConfig:
    n_quantiles: int = 5
    cost_bps: float = 5.0
    score_column: str = "score"
    return_column: str = "bar_return"
    bar: pd.Timedelta = pd.Timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.n_quantiles < 2:
            raise ValueError(f"n_quantiles must be >= 2, got {self.n_quantiles}")
        if self.cost_bps < 0:
            raise ValueError(f"cost_bps must be >= 0, got {self.cost_bps}")


def _wide(panel: pd.DataFrame, column: str, index: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray:
    table = panel.pivot_table(index="ts", columns="symbol", values=column, aggfunc="first", dropna=False)
    return table.reindex(index=index, columns=symbols).to_numpy(dtype="float64")


def _quantiles(signal: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Quantile 1..q per cell (0 = no position); ties broken by column order, q = min(n_quantiles, valid)."""
    out = np.zeros(signal.shape, dtype=np.int64)
    for i, row in enumerate(signal):
        valid = np.flatnonzero(np.isfinite(row))
        n = valid.size
        if n < 2:
            continue
        q = min(n_quantiles, n)
        order = valid[np.argsort(row[valid], kind="stable")]
        out[i, order] = np.arange(n) * q // n + 1
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return np.nan
    ra = pd.Series(a[ok]).rank().to_numpy()
    rb = pd.Series(b[ok]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return np.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def run_backtest(panel: pd.DataFrame, config: BacktestConfig = BacktestConfig()) -> pd.DataFrame:
    """Per-bar quantile returns, long-short return before and after costs, turnover and rank IC.

    ``panel`` has one row per (ts, symbol) with the score and the bar's simple
    return. Missing bars are put on a complete time grid, so "the previous bar"
    is always exactly one bar earlier.
    """
    for column in ("ts", "symbol", config.score_column, config.return_column):
        if column not in panel.columns:
            raise ValueError(f"panel lacks column {column!r}")
    if panel.empty:
        return pd.DataFrame()
    symbols = sorted(panel["symbol"].unique())
    grid = pd.date_range(panel["ts"].min(), panel["ts"].max(), freq=config.bar)
    score = _wide(panel, config.score_column, grid, symbols)
    returns = _wide(panel, config.return_column, grid, symbols)

    signal = np.full_like(score, np.nan)
    signal[1:] = score[:-1]  # known at the open of each bar
    quantile = _quantiles(signal, config.n_quantiles)
    top = quantile.max(axis=1, keepdims=True)
    long = (quantile == top) & (top > 0)
    short = quantile == 1
    weights = long / np.maximum(long.sum(axis=1, keepdims=True), 1) - short / np.maximum(
        short.sum(axis=1, keepdims=True), 1
    )
    earned = np.where(np.isfinite(returns), returns, 0.0)
    previous = np.vstack([np.zeros((1, len(symbols))), weights[:-1]])
    turnover = np.abs(weights - previous).sum(axis=1)
    gross = (weights * earned).sum(axis=1)
    cost = turnover * config.cost_bps / 1e4

    result = {
        "ts": grid,
        "n_symbols": np.isfinite(signal).sum(axis=1),
    }
    for k in range(1, config.n_quantiles + 1):
        members = (quantile == k) & np.isfinite(returns)
        counts = members.sum(axis=1)
        sums = np.where(members, returns, 0.0).sum(axis=1)
        result[f"q{k}_return"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    result["long_short_gross"] = gross
    result["turnover"] = turnover
    result["cost"] = cost
    result["long_short_net"] = gross - cost
    result["ic"] = [_spearman(signal[i], returns[i]) for i in range(len(grid))]
    return pd.DataFrame(result)


def summarize(daily: pd.DataFrame, periods_per_year: int = HOURS_PER_YEAR) -> pd.DataFrame:
    """Headline statistics of a backtest as (metric, value) rows."""
    if daily.empty:
        return pd.DataFrame({"metric": ["periods"], "value": [0.0]})
    daily = daily.sort_values("ts")
    net = daily["long_short_net"].fillna(0.0).to_numpy()
    equity = np.cumprod(1.0 + net)
    drawdown = equity / np.maximum.accumulate(equity) - 1.0
    ic = daily["ic"].dropna()
    traded = (daily["n_symbols"] >= 2).to_numpy() if "n_symbols" in daily.columns else np.ones(net.size, bool)
    std = net.std(ddof=1) if net.size > 1 else np.nan
    ic_std = ic.std(ddof=1) if len(ic) > 1 else np.nan
    metrics = {
        "periods": float(len(net)),
        "start": daily["ts"].min().timestamp(),
        "end": daily["ts"].max().timestamp(),
        "total_return": float(equity[-1] - 1.0),
        "annual_return": float(net.mean() * periods_per_year),
        "annual_volatility": float(std * np.sqrt(periods_per_year)),
        "sharpe": float(net.mean() / std * np.sqrt(periods_per_year)) if std and std > 0 else np.nan,
        "max_drawdown": float(drawdown.min()),
        # Warm-up bars without a score hold no position: they are not "losing" bars.
        "periods_traded": float(traded.sum()),
        "hit_rate": float((net[traded] > 0).mean()) if traded.any() else np.nan,
        "mean_turnover": float(daily["turnover"].mean()),
        "total_cost": float(daily["cost"].sum()),
        "mean_ic": float(ic.mean()) if len(ic) else np.nan,
        "ic_ir": float(ic.mean() / ic_std) if ic_std and ic_std > 0 else np.nan,
        "ic_t_stat": float(ic.mean() / ic_std * np.sqrt(len(ic))) if ic_std and ic_std > 0 else np.nan,
    }
    for column in sorted(c for c in daily.columns if c.startswith("q") and c.endswith("_return")):
        metrics[f"mean_{column}_bps"] = float(daily[column].mean() * 1e4)
    return pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})
