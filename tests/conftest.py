"""Shared fixtures: every test gets its own data root and, when it needs one, its own instance."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("FACTOR_DATA_ROOT", str(root))
    return root


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME holding a copy of the project's embedded-default dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(dagster_home: Path):
    from dagster import DagsterInstance

    with DagsterInstance.get() as inst:
        yield inst


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip visibly when a service is down, unless REQUIRE_SERVICES=1 makes that a failure."""
    if service_available(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
def pipeline_resources(data_root: Path):
    """``pipeline_resources(market_data=None, universe=None, news_sources=None, sentiment_scorer=None,
    strategies_file=None)``: the code location's resources over the test's data root
    (``strategies_file`` None = the repository's strategies.yaml)."""
    from resources.market_data import SyntheticMarketData
    from resources.parquet_io_manager import ParquetIOManager, PartitionStoreResource
    from resources.strategies import StrategiesResource
    from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

    from resources.sentiment import NewsSourcesResource, SentimentScorerResource

    from factor_assets.universe import UniverseResource
    from factor_core import settings

    def build(market_data=None, universe=None, news_sources=None, sentiment_scorer=None, strategies_file=None) -> dict:
        store = PartitionStoreResource(root=str(data_root))
        warehouse = DuckDBWarehouse(data_root=str(data_root))
        return {
            "partition_store": store,
            "parquet_io_manager": ParquetIOManager(partitions=store),
            "warehouse": warehouse,
            "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
            "market_data": market_data or SyntheticMarketData(trades_per_minute=2),
            "universe_source": universe or UniverseResource(),
            # offline by default: the synthetic newswire, the test's landing folder, no API key
            "news_sources": news_sources or NewsSourcesResource(landing_dir=str(data_root / "landing")),
            "sentiment_scorer": sentiment_scorer or SentimentScorerResource(),
            "strategies": StrategiesResource(strategies_file=str(strategies_file or settings.strategies_file())),
        }

    return build


def partition_metadata(result, asset: str) -> dict[str, dict]:
    """``{partition key: {name: value}}`` of one asset's materializations in an execution result."""
    out = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path[-1] == asset:
            out[materialization.partition] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return out


@pytest.fixture
def metadata_of():
    return partition_metadata
