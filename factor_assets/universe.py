"""Universe layer: which symbols exist, when they were listed and delisted, and the sensor that grows the partitions.

``universe_sensor`` reads the exchange's ``exchangeInfo`` (or the configured
``UNIVERSE_SYMBOLS``), registers every new trading symbol as a dynamic
``symbol`` partition and requests a ``symbol_universe`` run whenever the
observed universe changed. Delisted symbols keep their partitions and
history: nothing is ever removed.
"""

import datetime as dt
import hashlib
import json

import pandas as pd
from dagster import (
    AddDynamicPartitionsRequest,
    AssetExecutionContext,
    AssetKey,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)

from factor_assets.automation import LISTINGS_METADATA_KEY
from factor_core import settings, universe
from factor_core.binance.rest import fetch_exchange_info_sync
from partitions import SYMBOLS_PARTITION_NAME
from resources.market_data import BINANCE_POOL, MarketDataResource
from resources.parquet_io_manager import PartitionStoreResource

UNIVERSE_GROUP = "universe"
UNIVERSE_SENSOR_INTERVAL_S = 3600


def observe_universe(market_data: MarketDataResource) -> dict[str, dict]:
    """``{symbol: {status, base_asset, quote_asset}}`` as the configured source sees it now."""
    fixed = [s.strip() for s in settings.get("UNIVERSE_SYMBOLS").split(",") if s.strip()]
    if fixed:
        return universe.from_fixed_list(fixed)
    if market_data.name == "binance":
        entries = fetch_exchange_info_sync(api_url=market_data.api_url, max_wait_s=market_data.max_wait_s)
        return universe.from_exchange_info(entries, settings.get("UNIVERSE_QUOTE_ASSET") or None)
    return universe.from_fixed_list(s.strip() for s in settings.get("DEMO_SYMBOLS").split(",") if s.strip())


@asset(
    group_name=UNIVERSE_GROUP,
    io_manager_key="parquet_io_manager",
    kinds={"parquet"},
    pool=BINANCE_POOL if settings.get("MARKET_DATA_SOURCE") == "binance" else None,
    description=(
        "Every symbol ever observed, with status, listing and delisting dates (as first observed). "
        "Symbols are never dropped, so past cross-sections keep delisted names."
    ),
)
def symbol_universe(
    context: AssetExecutionContext, market_data: MarketDataResource, partition_store: PartitionStoreResource
) -> pd.DataFrame:
    # The previous version of this same asset is its memory of past listings.
    store = partition_store.store
    previous = store.read("symbol_universe", {}).to_pandas() if store.exists("symbol_universe", {}) else None
    table = universe.update_universe(previous, observe_universe(market_data), dt.datetime.now(dt.UTC).date())
    context.add_output_metadata(
        {
            "trading": MetadataValue.int(int((table["status"] == universe.TRADING).sum())),
            "delisted": MetadataValue.int(int(table["delisted_on"].notna().sum())),
            # Read by the automation conditions and sensors: point-in-time membership.
            LISTINGS_METADATA_KEY: MetadataValue.json(
                {s: list(pair) for s, pair in universe.listings_of(table).items()}
            ),
        }
    )
    return table


def _fingerprint(current: dict[str, dict]) -> str:
    return hashlib.sha256(json.dumps({s: i["status"] for s, i in sorted(current.items())}).encode()).hexdigest()[:16]


@sensor(
    minimum_interval_seconds=UNIVERSE_SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING
    if settings.get("MARKET_DATA_SOURCE") == "binance"
    else DefaultSensorStatus.STOPPED,
    description="Registers new trading symbols as partitions and refreshes symbol_universe when the universe changes.",
)
def universe_sensor(context: SensorEvaluationContext, market_data: MarketDataResource):
    current = observe_universe(market_data)
    fingerprint = _fingerprint(current)
    if fingerprint == context.cursor:
        return SkipReason(f"universe unchanged ({len(universe.trading(current))} trading symbols)")
    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
    new = [s for s in universe.trading(current) if s not in known]
    return SensorResult(
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(SYMBOLS_PARTITION_NAME, new)] if new else [],
        run_requests=[RunRequest(run_key=f"universe-{fingerprint}", asset_selection=[AssetKey("symbol_universe")])],
        cursor=fingerprint,
    )


UNIVERSE_ASSETS = [symbol_universe]
UNIVERSE_SENSORS = [universe_sensor]
