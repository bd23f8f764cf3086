"""Environment-driven settings: the single place where configuration variables are read.

Only non-secret values live here. Secrets (API keys) are never read into
Python module state: resources take them through Dagster's ``EnvVar`` so they
stay out of run config, logs and metadata.

Every variable, its default and its meaning is listed in ``SETTINGS`` and in
the README's configuration table (a test keeps the two in step).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    description: str

    def get(self) -> str:
        value = os.environ.get(self.name, "").strip()
        return value or self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("FACTOR_DATA_ROOT", "./data", "Root of the Parquet tree and of warehouse.duckdb."),
    Setting("FACTOR_PARTITIONS_START", "2024-01-01", "First UTC day of the daily partition dimension."),
    Setting("MARKET_DATA_SOURCE", "synthetic", "Where raw market data comes from: synthetic or binance."),
    Setting("SIM_SEED", "7", "Seed of the market simulator (synthetic source)."),
    Setting(
        "SIM_SIGNAL_IC",
        "0.0",
        "Planted information coefficient of the simulator's hidden signal (0 = none).",
    ),
    Setting("SIM_TRADES_PER_MINUTE", "12", "Mean simulated trades per minute (before seasonality)."),
    Setting("BACKTEST_COST_BPS", "5", "One-way trading cost in basis points charged on turnover."),
    Setting("BACKTEST_QUANTILES", "5", "Number of cross-sectional quantiles (capped at the universe size)."),
    Setting(
        "DEMO_SYMBOLS",
        "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT",
        "Universe registered by `make demo`.",
    ),
    Setting("DEMO_START", "2024-01-01", "First day `make demo` materializes."),
    Setting("DEMO_DAYS", "14", "Number of days `make demo` materializes."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str:
    """The value of setting ``name`` from the environment, or its default."""
    return _BY_NAME[name].get()


def get_date(name: str) -> dt.date:
    raw = get(name)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a date in YYYY-MM-DD form") from exc


def get_float(name: str) -> float:
    raw = get(name)
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


def get_int(name: str) -> int:
    raw = get(name)
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer") from exc
