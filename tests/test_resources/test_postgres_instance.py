"""The Postgres instance variant (dagster_home/postgres) against the real server on 127.0.0.1."""

import secrets

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from tests.conftest import REPO_ROOT, require_service

pytestmark = pytest.mark.services


@pytest.fixture
def postgres_home(tmp_path, monkeypatch):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg2

    db_name = f"factor_pipeline_test_{secrets.token_hex(4)}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db_name}"')
    home = tmp_path / "pg_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster_home" / "postgres" / "dagster.yaml").read_text())
    for name, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": db_name,
    }.items():
        monkeypatch.setenv(name, value)
    yield home
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin.close()


def test_runs_partitions_and_materializations_live_in_postgres(postgres_home, pipeline_resources):
    from factor_assets.raw import build_raw_assets
    from partitions import register_symbols, registered_symbols

    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        register_symbols(instance, ["BTCUSDT"])
        result = materialize(
            [build_raw_assets("synthetic")],
            instance=instance,
            partition_key="2024-01-02|BTCUSDT",
            resources=pipeline_resources(),
            selection=["raw_klines"],
        )
        assert result.success

    with DagsterInstance.get() as reopened:  # a second process would see the same state
        assert registered_symbols(reopened) == ["BTCUSDT"]
        assert reopened.get_materialized_partitions(AssetKey("raw_klines")) == {"2024-01-02|BTCUSDT"}
        assert reopened.get_run_by_id(result.run_id).is_success
