"""Simulated inputs for the research-layer tests: factor_bars of several symbols and the planted signal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from factor_core.factors import compute_factor_bars, resample_bars
from factor_core.liquidity import minute_liquidity
from factor_core.research.panel import build_factor_panel, planted_signal_rows
from factor_core.simulator import SimulatedDay, SimulatorConfig, simulate_day


def symbols(n: int) -> list[str]:
    return [f"S{i:02d}USDT" for i in range(n)]


def simulate(n_symbols: int, start: str, days: int, *, signal_ic: float = 0.0,
             seed: int = 11) -> dict[str, list[SimulatedDay]]:
    """Simulated days per symbol; cheap settings (one trade a minute, one book snapshot an hour)."""
    config = SimulatorConfig(seed=seed, signal_ic=signal_ic, trades_per_minute=1.0,
                             book_interval_s=3600, book_levels=1)
    first = dt.date.fromisoformat(start)
    return {s: [simulate_day(s, first + dt.timedelta(days=d), config) for d in range(days)]
            for s in symbols(n_symbols)}


def factor_inputs(simulated: dict[str, list[SimulatedDay]], *, factors: bool = True,
                  klines_transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None):
    """(factor_bars of every symbol, planted-signal frames per symbol, funding rows with ``symbol``).

    With ``factors`` every registry factor is computed, the liquidity ones (quoted
    spread) from the simulated book and trades; ``factors=False`` gives bars without
    factor columns (resample only), for tests that need prices and the planted signal.
    ``klines_transform`` rewrites each symbol's 1-minute bars before anything is computed.
    """
    bars, signals, funding = [], {}, []
    for symbol, days in simulated.items():
        minutes = pd.concat([d.klines for d in days], ignore_index=True)
        if klines_transform is not None:
            minutes = klines_transform(minutes)
        rates = pd.concat([d.funding for d in days], ignore_index=True)
        funding.append(rates.assign(symbol=symbol))
        signals[symbol] = pd.concat([d.planted_signal for d in days], ignore_index=True)
        if factors:
            liquidity = pd.concat([minute_liquidity(d.book, d.trades, d.klines) for d in days], ignore_index=True)
            frame = compute_factor_bars(minutes, funding=rates, liquidity=liquidity)
        else:
            frame = resample_bars(minutes)
        bars.append(frame.assign(symbol=symbol))
    return pd.concat(bars, ignore_index=True), signals, pd.concat(funding, ignore_index=True)


def simulated_panel(n_symbols: int, start: str, days: int, *, signal_ic: float = 0.0, seed: int = 11,
                    factors: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(factor_panel of every day, funding rows) with the planted signal as an extra factor."""
    bars, signals, funding = factor_inputs(simulate(n_symbols, start, days, signal_ic=signal_ic, seed=seed),
                                           factors=factors)
    return build_factor_panel(bars, extras=[planted_signal_rows(signals)]), funding
