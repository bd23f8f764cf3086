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
from pathlib import Path

#: The repository (and project) root: relative paths in settings are taken from here.
REPO_ROOT = Path(__file__).resolve().parent.parent


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
    Setting("AUTOMATION_INTERVAL_S", "30", "Seconds between evaluations of the automation sensor (keep_fresh_sensor)."),
    Setting(
        "FACTOR_MAX_CONCURRENT_STEPS",
        "0",
        "Steps the multiprocess executor runs at once (0 = one per core).",
    ),
    Setting(
        "FACTOR_STEP_WORKERS",
        "0",
        "Worker processes a chunked step uses for its range (0 = one per core; 1 = inline).",
    ),
    Setting("SIM_SEED", "7", "Seed of the market simulator (synthetic source)."),
    Setting(
        "SIM_SIGNAL_IC",
        "0.2",
        "Planted information coefficient of the simulator's hidden signal (0 = none): the planted_signal factor "
        "and the synthetic newswire carry it, so the demo shows the research layer finding a known signal.",
    ),
    Setting("SIM_TRADES_PER_MINUTE", "12", "Mean simulated trades per minute (before seasonality)."),
    Setting(
        "STRATEGIES_FILE",
        "strategies.yaml",
        "Strategies the research layer backtests (YAML); a relative path is taken from the repository root.",
    ),
    Setting(
        "NEWS_SOURCES",
        "",
        "Comma-separated news sources of news_items: synthetic (newswire), landing (news/*.jsonl), feeds; "
        "empty = synthetic,landing with MARKET_DATA_SOURCE=synthetic, else landing.",
    ),
    Setting("NEWS_FEED_URLS", "", "Comma-separated RSS / Atom feed URLs (the feeds source)."),
    Setting(
        "NEWS_ALIASES",
        "",
        "Extra symbol aliases for matching news, SYMBOL=alias|alias;... or JSON {\"SYMBOL\": [\"alias\"]}.",
    ),
    Setting("NEWS_ON_BAD_LINE", "error", "A landing news file with a bad line: error (refuse the file) or skip the line."),
    Setting("NEWS_ON_FEED_ERROR", "error", "A feed that fails or is not RSS / Atom: error (fail the day) or skip it."),
    Setting("OPENAI_BASE_URL", "https://api.openai.com/v1", "OpenAI-compatible endpoint of the sentiment scorer."),
    Setting("SENTIMENT_MODEL", "gpt-4o-mini", "Model the sentiment scorer asks (with OPENAI_API_KEY set)."),
    Setting(
        "SENTIMENT_PRICES",
        "",
        "Price table overrides, USD per 1M tokens: JSON {\"model\": [prompt, completion]}; empty = built-in list prices.",
    ),
    Setting("SENTIMENT_ANONYMISE", "true", "Replace the scored asset's names by a neutral token in the prompt."),
    Setting(
        "SENTIMENT_OFFLINE_SCORER",
        "auto",
        "Scorer without an API key: auto (newswire tone for its items, VADER otherwise) or lexicon:vader.",
    ),
    Setting("SENTIMENT_MAX_CONCURRENCY", "4", "Most LLM requests in flight per step."),
    Setting("SENTIMENT_TIMEOUT_S", "30", "Timeout of one LLM request, seconds."),
    Setting("SENTIMENT_MAX_WAIT_S", "120", "Longest Retry-After the scorer waits on a 429 before failing."),
    Setting("SENTIMENT_ITEMS_PER_REQUEST", "1", "News items per LLM request (same symbol)."),
    Setting("SENTIMENT_HALF_LIFE_MIN", "120", "Half-life of the hourly as-of sentiment's decayed mean, minutes."),
    Setting("SENTIMENT_LOOKBACK_H", "24", "Hours of news the hourly as-of sentiment looks back."),
    Setting(
        "DEMO_SYMBOLS",
        "BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT",
        "Universe registered by `make demo`.",
    ),
    Setting("DEMO_START", "", "First day `make demo` materializes; empty = the last DEMO_DAYS complete UTC days."),
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


def get_bool(name: str) -> bool:
    raw = get(name).lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={get(name)!r} is not a boolean (true or false)")


def get_list(name: str) -> list[str]:
    """A comma-separated setting as its non-empty, stripped entries."""
    return [part.strip() for part in get(name).split(",") if part.strip()]


def secret_configured(name: str) -> bool:
    """Whether the secret ``name`` is set (non-empty) in the environment; its value is not kept anywhere.

    Resources take the value through Dagster's ``EnvVar``; this only decides
    which resource to build (the offline scorer when no API key is set).
    """
    return bool(os.environ.get(name, "").strip())


def landing_dir() -> str:
    """``FACTOR_LANDING_DIR``, else ``$FACTOR_DATA_ROOT/landing``."""
    explicit = get("FACTOR_LANDING_DIR")
    return explicit or str(os.path.join(get("FACTOR_DATA_ROOT"), "landing"))


def strategies_file() -> str:
    """``STRATEGIES_FILE`` as an absolute path (relative to the repository root)."""
    path = Path(get("STRATEGIES_FILE")).expanduser()
    return str(path if path.is_absolute() else REPO_ROOT / path)
