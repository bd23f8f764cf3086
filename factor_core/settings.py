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
    Setting(
        "FACTOR_EXECUTOR",
        "multiprocess",
        "Where steps run: multiprocess (this machine), celery (Celery workers on any machine) or k8s (a Kubernetes Job per step).",
    ),
    Setting(
        "CELERY_BROKER_URL",
        "redis://127.0.0.1:6379/0",
        "Celery broker of FACTOR_EXECUTOR=celery, for the launcher and the workers alike (may hold a password).",
    ),
    Setting("CELERY_BACKEND_URL", "redis://127.0.0.1:6379/1", "Celery result backend of FACTOR_EXECUTOR=celery."),
    Setting(
        "CELERY_WORKER_LOST_AFTER_S",
        "60",
        "Seconds the Celery worker running a step may stop answering before the run fails naming it.",
    ),
    Setting("MARKET_DATA_SOURCE", "synthetic", "Where raw market data comes from: synthetic, binance or landing."),
    Setting(
        "FACTOR_LANDING_DIR",
        "",
        "Folder of users' own files (MARKET_DATA_SOURCE=landing, and news/*.jsonl); empty = $FACTOR_DATA_ROOT/landing.",
    ),
    Setting("BINANCE_ARCHIVE_URL", "https://data.binance.vision", "Base URL of the Binance public-data archive."),
    Setting("BINANCE_API_URL", "https://api.binance.com", "Base URL of the Binance spot REST API."),
    Setting("BINANCE_FAPI_URL", "https://fapi.binance.com", "Base URL of the Binance USD-M futures REST API."),
    Setting(
        "BINANCE_BOOK_SOURCE",
        "futures_depth",
        "raw_book from the futures bookDepth archive (futures_depth) or the live collector (collector).",
    ),
    Setting("BINANCE_MAX_WAIT_S", "120", "Longest a step waits on Binance rate limits (429/418) before failing."),
    Setting("BOOK_SNAPSHOT_INTERVAL_S", "60", "Seconds between live order-book snapshots (collector)."),
    Setting("BOOK_SNAPSHOT_LEVELS", "20", "Levels per side in each live order-book snapshot."),
    Setting(
        "UNIVERSE_SYMBOLS",
        "",
        "Fixed universe (comma separated); empty = exchangeInfo (binance) or DEMO_SYMBOLS (synthetic).",
    ),
    Setting("UNIVERSE_QUOTE_ASSET", "USDT", "Quote asset of the symbols taken from exchangeInfo."),
    Setting(
        "UNIVERSE_FILE",
        "",
        "CSV of the universe with listing dates (symbol,listed_on,delisted_on); overrides UNIVERSE_SYMBOLS.",
    ),
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


def config_source(name: str) -> str | dict[str, str]:
    """Setting ``name`` as Dagster config: ``{"env": name}`` when it is set, so Dagster reads it at run time
    (a password in it never enters definitions), else its default."""
    value = os.environ.get(name, "").strip()
    return {"env": name} if value else _BY_NAME[name].default


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


def landing_dir() -> str:
    """``FACTOR_LANDING_DIR``, else ``$FACTOR_DATA_ROOT/landing``."""
    explicit = get("FACTOR_LANDING_DIR")
    return explicit or str(os.path.join(get("FACTOR_DATA_ROOT"), "landing"))
