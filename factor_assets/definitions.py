"""The code location: every asset, resource, sensor, schedule and executor of factor-pipeline, assembled here.

Nothing is registered by side effect; this module is what `dagster dev`,
`dagster asset materialize -m factor_assets` and workspace.yaml load. The
environment is read here (through ``factor_core.settings``) and nowhere else
in the Dagster layer: resources receive plain values.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, EnvVar, multiprocess_executor

from factor_assets.automation import AUTOMATION_SENSOR
from factor_assets.collection import book_snapshot_job, build_book_snapshot_sensor
from factor_assets.ingestion import ingestion_triggers
from factor_assets.factors import FACTOR_ASSETS
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.news import NEWS_ASSETS, build_news_landing_sensor
from factor_assets.raw import build_raw_assets
from factor_assets.research_layer import research_assets
from factor_assets.sentiment import build_sentiment_assets
from factor_assets.strategy_runs import STRATEGY_RUN_ASSETS
from factor_assets.universe import UNIVERSE_ASSETS, UNIVERSE_SENSORS, UniverseResource
from factor_core import settings
from resources.market_data import BinanceMarketData, LandingMarketData, MarketDataResource, SyntheticMarketData
from resources.parquet_io_manager import ParquetIOManager, PartitionStoreResource
from resources.sentiment import news_sources_resource, sentiment_scorer_resource
from resources.strategies import StrategiesResource
from resources.warehouse import DuckDBWarehouse, WarehouseIOManager


def market_data_resource(source: str, data_root: str) -> MarketDataResource:
    if source == "synthetic":
        return SyntheticMarketData(
            seed=settings.get_int("SIM_SEED"),
            signal_ic=settings.get_float("SIM_SIGNAL_IC"),
            trades_per_minute=settings.get_float("SIM_TRADES_PER_MINUTE"),
        )
    if source == "binance":
        return BinanceMarketData(
            archive_url=settings.get("BINANCE_ARCHIVE_URL"),
            api_url=settings.get("BINANCE_API_URL"),
            fapi_url=settings.get("BINANCE_FAPI_URL"),
            book_source=settings.get("BINANCE_BOOK_SOURCE"),
            max_wait_s=settings.get_float("BINANCE_MAX_WAIT_S"),
            book_interval_s=settings.get_int("BOOK_SNAPSHOT_INTERVAL_S"),
            book_levels=settings.get_int("BOOK_SNAPSHOT_LEVELS"),
            collector_root=str(Path(data_root) / "_landing"),
        )
    if source == "landing":
        return LandingMarketData(landing_dir=settings.landing_dir())
    raise ValueError(f"MARKET_DATA_SOURCE={source!r}: expected one of synthetic, binance, landing")


def sentiment_resources(source: str) -> dict:
    """``news_sources`` and ``sentiment_scorer``; the API key only as an ``EnvVar`` (no key: the offline scorer)."""
    return {
        "news_sources": news_sources_resource(
            sources=settings.get("NEWS_SOURCES"), market_source=source, feed_urls=settings.get("NEWS_FEED_URLS"),
            landing_dir=settings.landing_dir(), aliases=settings.get("NEWS_ALIASES"),
            on_bad_line=settings.get("NEWS_ON_BAD_LINE"), on_feed_error=settings.get("NEWS_ON_FEED_ERROR"),
        ),
        "sentiment_scorer": sentiment_scorer_resource(
            api_key=EnvVar("OPENAI_API_KEY") if settings.secret_configured("OPENAI_API_KEY") else "",
            base_url=settings.get("OPENAI_BASE_URL"), model=settings.get("SENTIMENT_MODEL"),
            prices=settings.get("SENTIMENT_PRICES"), anonymise=settings.get_bool("SENTIMENT_ANONYMISE"),
            offline=settings.get("SENTIMENT_OFFLINE_SCORER"),
            max_concurrency=settings.get_int("SENTIMENT_MAX_CONCURRENCY"), timeout_s=settings.get_float("SENTIMENT_TIMEOUT_S"),
            max_wait_s=settings.get_float("SENTIMENT_MAX_WAIT_S"), items_per_request=settings.get_int("SENTIMENT_ITEMS_PER_REQUEST"),
        ),
    }


def build_resources(source: str) -> dict:
    data_root = settings.get("FACTOR_DATA_ROOT")
    warehouse = DuckDBWarehouse(data_root=data_root)
    partition_store = PartitionStoreResource(root=data_root)
    return {
        "partition_store": partition_store,
        "parquet_io_manager": ParquetIOManager(partitions=partition_store),
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "warehouse": warehouse,
        "market_data": market_data_resource(source, data_root),
        "universe_source": UniverseResource(
            universe_file=settings.get("UNIVERSE_FILE"),
            fixed_symbols=settings.get("UNIVERSE_SYMBOLS"),
            quote_asset=settings.get("UNIVERSE_QUOTE_ASSET"),
            demo_symbols=settings.get("DEMO_SYMBOLS"),
        ),
        **sentiment_resources(source),
        "strategies": StrategiesResource(strategies_file=settings.strategies_file()),
    }


# Step processes are forked from a server that has already imported the code
# location (Numba kernels included), which halves per-step start-up on small machines.
EXECUTOR = multiprocess_executor.configured(
    {
        "max_concurrent": settings.get_int("FACTOR_MAX_CONCURRENT_STEPS"),
        "start_method": {"forkserver": {"preload_modules": ["factor_assets"]}},
    },
    name="preloaded_multiprocess",
)


def executor_for(kind: str):
    """FACTOR_EXECUTOR: this machine's processes, Celery workers on any machine, or Kubernetes Jobs (docs/operations.md)."""
    if kind == "multiprocess":
        return EXECUTOR
    if kind == "celery":
        from factor_assets.celery_executor import celery_executor  # celery is imported only when used

        return celery_executor(
            broker=settings.config_source("CELERY_BROKER_URL"),
            backend=settings.config_source("CELERY_BACKEND_URL"),
            worker_lost_after_s=settings.get_float("CELERY_WORKER_LOST_AFTER_S"),
        )
    if kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor  # one Kubernetes Job per step; settings from the K8sRunLauncher
        except ImportError as exc:
            raise ValueError("FACTOR_EXECUTOR=k8s needs dagster-k8s: pip install 'factor-pipeline[k8s]'") from exc
        return k8s_job_executor
    raise ValueError(f"FACTOR_EXECUTOR={kind!r}: expected multiprocess, celery or k8s")


SOURCE = settings.get("MARKET_DATA_SOURCE")
INGESTION_SENSORS, INGESTION_SCHEDULES = ingestion_triggers(SOURCE)
COLLECTING = SOURCE == "binance" and settings.get("BINANCE_BOOK_SOURCE") == "collector"
RESOURCES = build_resources(SOURCE)
SENTIMENT_ASSETS = build_sentiment_assets(settings.get_float("SENTIMENT_LOOKBACK_H"), settings.get_float("SENTIMENT_HALF_LIFE_MIN"))

defs = Definitions(
    assets=[
        *UNIVERSE_ASSETS, build_raw_assets(SOURCE), *LIQUIDITY_ASSETS, *FACTOR_ASSETS,
        *NEWS_ASSETS, *SENTIMENT_ASSETS, *research_assets(SOURCE), *STRATEGY_RUN_ASSETS,
    ],
    jobs=[book_snapshot_job],
    resources=RESOURCES,
    sensors=[
        AUTOMATION_SENSOR,
        *UNIVERSE_SENSORS,
        *INGESTION_SENSORS,
        build_book_snapshot_sensor(COLLECTING, settings.get_int("BOOK_SNAPSHOT_INTERVAL_S")),
        build_news_landing_sensor(RESOURCES["news_sources"].uses("landing")),
    ],
    schedules=INGESTION_SCHEDULES,
    executor=executor_for(settings.get("FACTOR_EXECUTOR")),
)
