"""Cost-aware cross-sectional quantile backtests of configured strategies, bar by bar.

Timing (no look-ahead): the bar ``[T, T+1h)`` holds positions decided at ``T``
from the panel row whose ``close_time`` is ``T`` (``ts = T - 1h``), i.e. scores
known at the bar's open. It earns the bar's simple return
``close(T) / close(T - 1h) - 1`` (``close(t)`` = close of the bar stamped ``t``).

Portfolio (docs/research.md, "Backtests"): at every rebalance hour ``T``
(``hours since epoch % rebalance_every_hours == 0``) a tranche is formed: the
score's quantiles (``quantiles.assign_quantiles``), ``+1/n`` on each symbol of
the top quantile and, long-short, ``-1/n`` on each of the bottom one. A tranche
lives ``holding_hours``; the ``K = holding / rebalance`` live tranches share the
capital (weight ``1/K`` each). Weights are constant fractions of equity between
rebalances (no drift: the alphalens / vectorised convention).

Per bar: ``turnover = sum |w_T - w_(T-1h)|``, ``fee_cost = turnover * fee_bps / 1e4``,
``spread_cost = sum |dw_i| * quoted_spread_bps_i / 2 / 1e4`` (the spread of the row
the decision used), ``funding = -sum w_i * rate_i`` over settlements inside the bar
(longs pay positive rates), ``net = gross - fee_cost - spread_cost + funding``.

Locality: a bar depends only on panel rows of the ``lookback_hours = holding + 1``
hours before it and on the funding settlements inside it. Hence a day needs the
day's panel, the previous ``ceil(lookback / 24)`` days' panels and the day's funding
events; no state is carried, and day-by-day results equal one pass exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from factor_core.research.quantiles import quantiles_of
from factor_core.research.strategies import MAX_QUANTILES, StrategySpec, skip_reason, strategy_scores
from factor_core.timeutil import NS_PER_HOUR

SPREAD_COLUMN = "liq_quoted_spread_bps"
HOUR = pd.Timedelta(hours=1)
QUANTILE_COLUMNS = tuple(f"q{k}_return" for k in range(1, MAX_QUANTILES + 1))


_F, _I, _S, _B, _T = "float64", "int64", "str", "bool", "datetime64[ns, UTC]"
#: Column types of ``backtest_hourly`` / ``backtest_daily`` (also of the empty tables when no strategy runs).
HOURLY_DTYPES: dict[str, str] = {
    "strategy": _S, "ts": _T, "close_time": _T, "date": _S, "rebalance": _B, "n_long": _I, "n_short": _I,
    "exposure": _F, "gross_return": _F, "fee_cost": _F, "spread_cost": _F, "funding": _F, "net_return": _F,
    "turnover": _F, "n_spread_missing": _I, "ic": _F, **{c: _F for c in QUANTILE_COLUMNS},
}
DAILY_DTYPES: dict[str, str] = {
    "strategy": _S, "date": _S, "ts": _T, "n_bars": _I, "hours_invested": _I, "gross_return": _F, "fee_cost": _F,
    "spread_cost": _F, "funding": _F, "net_return": _F, "turnover": _F, "mean_ic": _F, "n_quantiles": _I,
    "n_spread_missing": _I, "uses_planted_factor": _B, **{c: _F for c in QUANTILE_COLUMNS},
}


def empty_table(dtypes: dict[str, str]) -> pd.DataFrame:
    """No rows, every column typed (so a stored empty day has the same schema as any other)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


@dataclass(frozen=True)
class BacktestResult:
    hourly: pd.DataFrame  # backtest_hourly rows
    daily: pd.DataFrame  # backtest_daily rows
    skipped: dict[str, str]  # strategy -> reason


def hours_since_epoch(stamps: pd.DatetimeIndex) -> np.ndarray:
    """Whole hours since 1970-01-01 00:00 UTC (the rebalance clock), whatever the index's time unit."""
    return np.asarray(stamps.as_unit("ns").asi8 // NS_PER_HOUR, dtype=np.int64)


def _wide(panel: pd.DataFrame, values: np.ndarray, grid: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray:
    frame = pd.DataFrame({"ts": panel["ts"].to_numpy(), "symbol": panel["symbol"].to_numpy(), "v": values})
    table = frame.pivot(index="ts", columns="symbol", values="v")
    return table.reindex(index=grid, columns=symbols).to_numpy(dtype="float64", na_value=np.nan)


def _tranche_weights(labels: np.ndarray, n_quantiles: int, side: str) -> np.ndarray:
    top = labels == n_quantiles
    weights = top / np.maximum(top.sum(axis=1, keepdims=True), 1)
    if side == "long_short":
        bottom = labels == 1
        weights = weights - bottom / np.maximum(bottom.sum(axis=1, keepdims=True), 1)
    return weights


def _funding_matrix(funding: pd.DataFrame | None, bars: pd.DatetimeIndex, symbols: list[str]) -> np.ndarray:
    """Sum of funding rates settled inside each bar ``[T, T+1h)``, per symbol (0 without a settlement)."""
    out = np.zeros((len(bars), len(symbols)))
    if funding is None or funding.empty:
        return out
    missing = [c for c in ("symbol", "ts", "funding_rate") if c not in funding.columns]
    if missing:
        raise ValueError(f"raw_funding rows lack column(s) {missing}; expected symbol, ts, funding_rate")
    rates = funding["funding_rate"].to_numpy(dtype="float64", na_value=np.nan)
    settled = pd.to_datetime(funding["ts"], utc=True)
    bad = ~np.isfinite(rates)
    if bad.any():
        row = funding[bad].iloc[0]
        raise ValueError(f"raw_funding: funding_rate {row['funding_rate']!r} of symbol {row['symbol']} at "
                         f"{row['ts']} is not a number; re-materialize raw_funding for that day")
    bar_index = bars.get_indexer(settled.dt.floor("h"))
    sym_index = pd.Index(symbols).get_indexer(funding["symbol"].astype(str))
    keep = (bar_index >= 0) & (sym_index >= 0)
    np.add.at(out, (bar_index[keep], sym_index[keep]), rates[keep])
    return out


def _row_rank_ic(score: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Spearman correlation per row over the columns where both are finite (NaN below 3 pairs)."""
    both = np.isfinite(score) & np.isfinite(returns)
    rs = pd.DataFrame(np.where(both, score, np.nan)).rank(axis=1).to_numpy()
    rr = pd.DataFrame(np.where(both, returns, np.nan)).rank(axis=1).to_numpy()
    n = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ds = rs - (np.nansum(rs, axis=1, keepdims=True) / n[:, None])
        dr = rr - (np.nansum(rr, axis=1, keepdims=True) / n[:, None])
        num = np.nansum(ds * dr, axis=1)
        den = np.sqrt(np.nansum(ds * ds, axis=1) * np.nansum(dr * dr, axis=1))
        ic = num / den
    return np.where((n >= 3) & (den > 0), ic, np.nan)


def run_backtest(
    panel: pd.DataFrame,
    spec: StrategySpec,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    funding: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``backtest_hourly`` rows of ``spec`` for the bars ``start <= T < end`` (whole hours, UTC).

    ``panel`` must hold the factor_panel rows from ``start - spec.lookback_hours`` on
    (fewer rows = no positions where scores are missing). ``funding``: raw_funding rows
    (``symbol``, ``ts``, ``funding_rate``) of the period; ignored unless ``charge_funding``.
    """
    # Nanosecond stamps, as every stored table has them (pandas 3 parses day strings to microseconds).
    start, end = (pd.Timestamp(t).tz_convert("UTC").as_unit("ns") for t in (start, end))
    reason = skip_reason(spec, panel.columns)
    if reason:
        raise KeyError(reason)
    lookback = spec.lookback_hours
    grid = pd.date_range(start - lookback * HOUR, end - HOUR, freq="h")  # score/close stamps
    bars = grid[lookback:]  # bar T uses stamp T - 1h
    window = panel[(panel["ts"] >= grid[0]) & (panel["ts"] <= grid[-1])] if len(grid) else panel.iloc[:0]
    symbols = sorted(window["symbol"].astype(str).unique())
    score = _wide(window, strategy_scores(window, spec), grid, symbols)
    close = _wide(window, window["close"].to_numpy(dtype="float64", na_value=np.nan), grid, symbols)
    spread = (_wide(window, window[SPREAD_COLUMN].to_numpy(dtype="float64", na_value=np.nan), grid, symbols)
              if SPREAD_COLUMN in window.columns else np.full(score.shape, np.nan))
    n_grid, n_sym = score.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        bar_return = np.full((n_grid, n_sym), np.nan)
        bar_return[1:] = close[1:] / close[:-1] - 1.0  # bar at grid[j]: close(j) / close(j-1) - 1

    # Labels of the tranche formed at bar j (decided on stamp j-1); 0 where j is not a rebalance hour.
    hours = hours_since_epoch(grid)
    every = spec.rebalance_every_hours
    labels = np.zeros((n_grid, n_sym), dtype=np.int64)
    for j in np.flatnonzero(hours % every == 0):
        if j >= 1:
            labels[j] = quantiles_of(score[j - 1], spec.n_quantiles)

    earned = np.where(np.isfinite(bar_return), bar_return, 0.0)  # a held symbol without a price earns 0
    k_tranches = spec.tranches
    latest = np.arange(n_grid) - hours % every  # latest rebalance bar <= j
    weights = np.zeros((n_grid, n_sym))
    q_sum = np.zeros((n_grid, MAX_QUANTILES))
    q_live = np.zeros((n_grid, MAX_QUANTILES), dtype=bool)
    for offset in range(k_tranches):
        formed = latest - offset * every
        live = labels[np.maximum(formed, 0)] * (formed >= 0)[:, None]
        weights += _tranche_weights(live, spec.n_quantiles, spec.side) / k_tranches
        for k in range(1, spec.n_quantiles + 1):
            members = live == k
            count = members.sum(axis=1)
            q_sum[:, k - 1] += np.where(count > 0, (members * earned).sum(axis=1) / np.maximum(count, 1), 0.0)
            q_live[:, k - 1] |= count > 0
    quantile_return = np.where(q_live, q_sum / k_tranches, np.nan)

    j = np.arange(lookback, n_grid)  # output bars
    traded = np.abs(weights[j] - weights[j - 1])
    turnover = traded.sum(axis=1)
    fee_cost = turnover * spec.fee_bps / 1e4
    decision_spread = spread[j - 1]
    spread_known = np.isfinite(decision_spread)
    spread_cost = ((traded * np.where(spread_known, decision_spread, 0.0)).sum(axis=1) / 2.0 / 1e4
                   if spec.charge_spread else np.zeros(len(j)))
    gross = (weights[j] * earned[j]).sum(axis=1)
    funding_return = (-(weights[j] * _funding_matrix(funding, bars, symbols)).sum(axis=1)
                      if spec.charge_funding else np.zeros(len(j)))
    net = gross - fee_cost - spread_cost + funding_return

    hourly = pd.DataFrame({
        "strategy": spec.name,
        "ts": bars,
        "close_time": bars + HOUR,
        "date": bars.strftime("%Y-%m-%d"),
        "rebalance": hours[j] % every == 0,
        "n_long": (weights[j] > 0).sum(axis=1),
        "n_short": (weights[j] < 0).sum(axis=1),
        "exposure": np.abs(weights[j]).sum(axis=1),
        "gross_return": gross,
        "fee_cost": fee_cost,
        "spread_cost": spread_cost,
        "funding": funding_return,
        "net_return": net,
        "turnover": turnover,
        "n_spread_missing": ((traded > 0) & ~spread_known).sum(axis=1) if spec.charge_spread else 0,
        "ic": _row_rank_ic(score[j - 1], bar_return[j]),
    })
    for k, column in enumerate(QUANTILE_COLUMNS):
        hourly[column] = quantile_return[j, k]
    return hourly


def _compound(values: pd.Series) -> float:
    x = values.to_numpy(dtype="float64", na_value=np.nan)
    if not np.isfinite(x).any():
        return float("nan")
    return float(np.prod(1.0 + np.where(np.isfinite(x), x, 0.0)) - 1.0)


def daily_from_hourly(hourly: pd.DataFrame, specs: Iterable[StrategySpec] = ()) -> pd.DataFrame:
    """``backtest_daily`` rows: one per (strategy, date) of ``backtest_hourly``.

    ``gross_return``, ``net_return`` and ``q*_return`` are compounded over the day's
    bars (NaN bars count as 0); ``fee_cost``, ``spread_cost``, ``funding`` and
    ``turnover`` are sums of the per-bar fractions; ``mean_ic`` is the mean hourly IC.
    """
    specs = list(specs)
    quantiles = {s.name: s.n_quantiles for s in specs}
    planted = {s.name: s.uses_planted_factor for s in specs}
    rows = []
    for (strategy, date), bars in hourly.groupby(["strategy", "date"], sort=True):
        row = {
            "strategy": strategy, "date": date, "ts": pd.Timestamp(date, tz="UTC").as_unit("ns"),
            "n_bars": len(bars), "hours_invested": int((bars["exposure"] > 0).sum()),
            "gross_return": _compound(bars["gross_return"]),
            "fee_cost": float(bars["fee_cost"].sum()), "spread_cost": float(bars["spread_cost"].sum()),
            "funding": float(bars["funding"].sum()), "net_return": _compound(bars["net_return"]),
            "turnover": float(bars["turnover"].sum()), "mean_ic": float(bars["ic"].mean()),
            "n_quantiles": quantiles.get(strategy, 0),
            "n_spread_missing": int(bars["n_spread_missing"].sum()),
            "uses_planted_factor": planted.get(strategy, False),
        }
        row.update({c: _compound(bars[c]) for c in QUANTILE_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def backtest_days(
    panel: pd.DataFrame,
    strategies: Sequence[StrategySpec],
    days: Sequence[str],
    *,
    funding: pd.DataFrame | None = None,
) -> BacktestResult:
    """``backtest_hourly`` and ``backtest_daily`` rows of every strategy for the UTC ``days``
    (typed empty tables when no strategy can run).

    ``panel``: factor_panel rows of ``days`` plus the ``ceil(max lookback_hours / 24)``
    days before the first (``required_panel_days_before``). ``funding``: raw_funding of
    ``days`` with a ``symbol`` column. Strategies whose factors are absent are skipped,
    with the reason in ``skipped``.
    """
    days = sorted(days)
    if not days:
        raise ValueError("backtest_days: no days given")
    start = pd.Timestamp(days[0], tz="UTC")
    end = pd.Timestamp(days[-1], tz="UTC") + pd.Timedelta(days=1)
    panel = panel.assign(ts=pd.to_datetime(panel["ts"], utc=True))
    hourly_frames, skipped, ran = [], {}, []
    for spec in strategies:
        reason = skip_reason(spec, panel.columns)
        if reason:
            skipped[spec.name] = reason
            continue
        ran.append(spec)
        hourly = run_backtest(panel, spec, start=start, end=end, funding=funding)
        hourly_frames.append(hourly[hourly["date"].isin(days)])
    hourly = pd.concat(hourly_frames, ignore_index=True) if hourly_frames else empty_table(HOURLY_DTYPES)
    daily = daily_from_hourly(hourly, ran) if not hourly.empty else empty_table(DAILY_DTYPES)
    return BacktestResult(hourly=hourly, daily=daily, skipped=skipped)


def required_panel_days_before(strategies: Iterable[StrategySpec]) -> int:
    """Days of factor_panel before a day that its backtest reads (the partition mapping's offset)."""
    lookback = max((s.lookback_hours for s in strategies), default=1)
    return -(-lookback // 24)
