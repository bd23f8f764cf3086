"""Simulated inputs for the research-layer tests: factor_bars of several symbols and the planted signal."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from factor_core.factors import compute_factor_bars, resample_bars
from factor_core.research.panel import build_factor_panel, planted_signal_rows
from factor_core.simulator import SimulatorConfig, simulate_day


def symbols(n: int) -> list[str]:
    return [f"S{i:02d}USDT" for i in range(n)]


def simulated_inputs(n_symbols: int, start: str, days: int, *, signal_ic: float = 0.0, seed: int = 11,
                     factors: bool = True):
    """(factor_bars of every symbol, planted-signal frames per symbol, funding rows) over ``days`` days.

    The simulator is cheap here (one trade a minute, hourly book) because only the
    klines and funding are used. ``factors=False`` gives bars without the factor
    columns (resample only), for tests that need prices and the planted signal only.
    """
    config = SimulatorConfig(seed=seed, signal_ic=signal_ic, trades_per_minute=1.0,
                             book_interval_s=3600, book_levels=1)
    first = dt.date.fromisoformat(start)
    bars, signals, funding = [], {}, []
    for symbol in symbols(n_symbols):
        klines, sig = [], []
        for offset in range(days):
            day = simulate_day(symbol, first + dt.timedelta(days=offset), config)
            klines.append(day.klines)
            sig.append(day.planted_signal)
            funding.append(day.funding.assign(symbol=symbol))
        minutes = pd.concat(klines, ignore_index=True)
        frame = compute_factor_bars(minutes) if factors else resample_bars(minutes)
        bars.append(frame.assign(symbol=symbol))
        signals[symbol] = pd.concat(sig, ignore_index=True)
    return pd.concat(bars, ignore_index=True), signals, pd.concat(funding, ignore_index=True)


def simulated_panel(n_symbols: int, start: str, days: int, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(factor_panel of every day, funding rows) with the planted signal as an extra factor."""
    bars, signals, funding = simulated_inputs(n_symbols, start, days, **kw)
    return build_factor_panel(bars, extras=[planted_signal_rows(signals)]), funding
