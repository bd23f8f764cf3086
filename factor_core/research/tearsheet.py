"""Tear-sheet images as PNG bytes (matplotlib's Agg canvas, no display, no pyplot global state).

Each function takes stored tables (``backtest_daily``, ``factor_ic``,
``factor_report``, ``factor_correlation``) and returns PNG bytes the Dagster
layer can attach to a materialization or embed in the HTML report.
Planted factors are labelled "(planted)" wherever they appear; samples shorter
than ``SHORT_SAMPLE_DAYS`` days say so in the title.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from factor_core.research.catalog import is_planted
from factor_core.research.metrics import SHORT_SAMPLE_DAYS

DPI = 110
COST_COLOURS = {"fee_cost": "#d62728", "spread_cost": "#ff7f0e", "funding": "#9467bd"}


def _percent() -> FuncFormatter:
    """A fresh percent tick formatter (a formatter belongs to one axis)."""
    return FuncFormatter(lambda value, _pos: f"{value:.1%}" if abs(value) < 0.1 else f"{value:.0%}")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _label(factor: str) -> str:
    return f"{factor} (planted)" if is_planted(factor) else factor


def _sample_note(n_days: int) -> str:
    return f"  [short sample: {n_days} days < {SHORT_SAMPLE_DAYS}]" if n_days < SHORT_SAMPLE_DAYS else ""


def _dates(frame: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(frame["date"], utc=True))


def _no_data(fig: Figure, text: str) -> bytes:
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)
    return _png(fig)


def _compounded(values: pd.Series) -> np.ndarray:
    return np.cumprod(1.0 + values.fillna(0.0).to_numpy(dtype="float64")) - 1.0


def cumulative_returns_png(daily: pd.DataFrame, strategy: str) -> bytes:
    """Cumulative return of each quantile, the strategy gross and net, and its cumulative costs by kind."""
    rows = daily[daily["strategy"] == strategy].sort_values("date")
    fig = Figure(figsize=(10, 6.5))
    if rows.empty:
        return _no_data(fig, f"no backtest_daily rows for {strategy}")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4]})
    dates = _dates(rows)
    n_quantiles = int(rows["n_quantiles"].max()) if "n_quantiles" in rows else 0
    colours = colormaps["coolwarm"](np.linspace(0.0, 1.0, max(n_quantiles, 2)))
    for k in range(1, n_quantiles + 1):
        top.plot(dates, _compounded(rows[f"q{k}_return"]), color=colours[k - 1], lw=1.0, label=f"Q{k}")
    top.plot(dates, _compounded(rows["gross_return"]), color="black", lw=1.6, ls="--", label="strategy gross")
    top.plot(dates, _compounded(rows["net_return"]), color="black", lw=2.2, label="strategy net")
    top.axhline(0.0, color="grey", lw=0.6)
    top.set_ylabel("cumulative return")
    top.yaxis.set_major_formatter(_percent())
    top.legend(loc="upper left", fontsize=8, ncol=2)
    top.set_title(f"{strategy}: quantiles and strategy, net of costs{_sample_note(len(rows))}")
    for cost in ("fee_cost", "spread_cost"):
        bottom.plot(dates, -rows[cost].cumsum(), color=COST_COLOURS[cost], label=cost.replace("_", " "))
    bottom.plot(dates, rows["funding"].cumsum(), color=COST_COLOURS["funding"], label="funding (received > 0)")
    bottom.axhline(0.0, color="grey", lw=0.6)
    bottom.set_ylabel("cumulative, fraction")
    bottom.yaxis.set_major_formatter(_percent())
    bottom.legend(loc="lower left", fontsize=8, ncol=3)
    fig.autofmt_xdate()
    return _png(fig)


def drawdown_png(daily: pd.DataFrame) -> bytes:
    """Drawdown of each strategy's net equity from its running peak (the peak starting at 1)."""
    fig = Figure(figsize=(10, 4))
    if daily.empty:
        return _no_data(fig, "no backtest_daily rows")
    ax = fig.subplots()
    for strategy, rows in daily.sort_values("date").groupby("strategy"):
        equity = np.concatenate([[1.0], np.cumprod(1.0 + rows["net_return"].fillna(0.0).to_numpy())])
        drawdown = (equity / np.maximum.accumulate(equity) - 1.0)[1:]
        ax.plot(_dates(rows), drawdown, label=strategy)
    ax.set_title("drawdown of net equity" + _sample_note(daily["date"].nunique()))
    ax.yaxis.set_major_formatter(_percent())
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def turnover_png(daily: pd.DataFrame) -> bytes:
    """Daily turnover (sum of |weight changes|, in units of capital) per strategy."""
    fig = Figure(figsize=(10, 4))
    if daily.empty:
        return _no_data(fig, "no backtest_daily rows")
    ax = fig.subplots()
    for strategy, rows in daily.sort_values("date").groupby("strategy"):
        ax.plot(_dates(rows), rows["turnover"], marker=".", label=strategy)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylabel("turnover per day (x capital)")
    ax.set_title("daily turnover")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def rolling_ic_png(factor_ic: pd.DataFrame, factors: Sequence[str], *, horizon_h: int = 1,
                   window_hours: int = 24) -> bytes:
    """Rolling mean (``window_hours`` hours) of the hourly rank IC of ``factors`` at one horizon."""
    fig = Figure(figsize=(10, 4))
    rows = factor_ic[(factor_ic["horizon_h"] == horizon_h) & factor_ic["factor"].isin(factors)]
    if rows.empty:
        return _no_data(fig, f"no factor_ic rows at {horizon_h}h")
    ax = fig.subplots()
    for factor in factors:
        series = rows[rows["factor"] == factor].set_index("ts")["rank_ic"].sort_index()
        if series.notna().any():
            ax.plot(series.index, series.rolling(window_hours, min_periods=window_hours // 2).mean(),
                    label=_label(factor), lw=1.2)
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_ylabel("rank IC")
    ax.set_title(f"rolling {window_hours}h mean rank IC, {horizon_h}h forward return")
    ax.legend(fontsize=8, ncol=2)
    fig.autofmt_xdate()
    return _png(fig)


def factor_ic_bars_png(report: pd.DataFrame) -> bytes:
    """Mean rank IC of every factor, one bar per horizon (the decay), sorted by the shortest horizon."""
    fig = Figure(figsize=(11, max(4.0, 0.22 * report["factor"].nunique() + 1.5)))
    if report.empty:
        return _no_data(fig, "no factor_report rows")
    table = report.pivot(index="factor", columns="horizon_h", values="mean_rank_ic")
    table = table.dropna(how="all").sort_values(table.columns.min())
    ax = fig.subplots()
    n_h = len(table.columns)
    height = 0.8 / max(n_h, 1)
    y = np.arange(len(table))
    for i, horizon in enumerate(table.columns):
        ax.barh(y + i * height - 0.4 + height / 2, table[horizon].to_numpy(), height=height, label=f"{horizon}h")
    ax.set_yticks(y, [_label(f) for f in table.index], fontsize=7)
    ax.axvline(0.0, color="grey", lw=0.6)
    ax.set_xlabel("mean rank IC (Spearman, hourly, 24/7 calendar)")
    ax.set_title("factor IC by forward horizon (decay)")
    ax.legend(title="horizon", fontsize=8)
    return _png(fig)


def correlation_heatmap_png(matrix: pd.DataFrame) -> bytes:
    """Heat map of the mean hourly rank correlation between factors (``correlation.correlation_matrix``)."""
    size = max(5.0, 0.2 * len(matrix) + 2.0)
    fig = Figure(figsize=(size + 1.0, size))
    if matrix.empty:
        return _no_data(fig, "no factor_correlation rows")
    ax = fig.subplots()
    image = ax.imshow(matrix.to_numpy(dtype="float64"), cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    labels = [_label(f) for f in matrix.index]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8, label="rank correlation")
    ax.set_title("factor rank correlation (mean over hours)")
    return _png(fig)


def tear_sheet_images(
    daily: pd.DataFrame,
    factor_ic: pd.DataFrame | None = None,
    report: pd.DataFrame | None = None,
    correlation: pd.DataFrame | None = None,
    *,
    rolling_factors: Sequence[str] | None = None,
) -> dict[str, bytes]:
    """Every tear-sheet image by name: ``cumulative_<strategy>``, ``drawdown``, ``turnover``,
    ``rolling_ic``, ``factor_ic``, ``correlation`` (the last three when their tables are given)."""
    images: dict[str, bytes] = {}
    if daily is not None and not daily.empty:
        for strategy in sorted(daily["strategy"].unique()):
            images[f"cumulative_{strategy}"] = cumulative_returns_png(daily, strategy)
        images["drawdown"] = drawdown_png(daily)
        images["turnover"] = turnover_png(daily)
    if factor_ic is not None and not factor_ic.empty:
        if rolling_factors is None:
            strongest = (report[report["horizon_h"] == report["horizon_h"].min()]
                         .assign(a=lambda r: r["mean_rank_ic"].abs()).nlargest(5, "a")["factor"].tolist()
                         if report is not None and not report.empty else sorted(factor_ic["factor"].unique())[:5])
            rolling_factors = strongest
        images["rolling_ic"] = rolling_ic_png(factor_ic, rolling_factors)
    if report is not None and not report.empty:
        images["factor_ic"] = factor_ic_bars_png(report)
    if correlation is not None and not correlation.empty:
        images["correlation"] = correlation_heatmap_png(correlation)
    return images
