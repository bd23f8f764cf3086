"""The API key is absent from everything a Dagster run of the sentiment layer wrote.

The runs: news_items -> llm_sentiment (the fake server, key through ``EnvVar``) ->
sentiment_hourly -> llm_cost, the DuckDB views over them, then a run with a
refused key. Searched: every file under the test's folders (Parquet, the answer
cache's SQLite and WAL, warehouse.duckdb, the Dagster instance's SQLite storage
and compute logs), every run record (run config, tags) and event of the instance,
the captured logs (every logger at DEBUG) and the failure's full error text.
"""

from __future__ import annotations

import logging

from dagster._serdes import serialize_value

from factor_assets.definitions import sentiment_resources
from partitions import register_symbols
from resources.warehouse import DuckDBWarehouse
from tests.fake_openai import FakeOpenAI
from tests.test_factor_assets.sentiment_runs import LANDED, SYMBOLS, failure_text, land_news, run

KEY = "sk-proj-NEVER-WRITTEN-7a6b5c4d3e2f"
WRONG_KEY = "sk-proj-WRONG-NEVER-WRITTEN-0099"


def test_the_api_key_is_absent_from_files_instance_logs_and_errors(
        instance, dagster_home, data_root, tmp_path, monkeypatch, caplog, pipeline_resources):
    landing = tmp_path / "landing"
    land_news(landing, LANDED)
    monkeypatch.setenv("FACTOR_LANDING_DIR", str(landing))
    monkeypatch.setenv("NEWS_SOURCES", "landing,synthetic")
    register_symbols(instance, SYMBOLS)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(api_key=KEY) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        resources = {**pipeline_resources(), **sentiment_resources("synthetic")}
        for assets in (["news_items"], ["llm_sentiment", "sentiment_hourly"], ["llm_cost"]):
            assert run(instance, resources, assets).success
        assert server.calls > 4 and all(r.headers["Authorization"] == f"Bearer {KEY}" for r in server.requests)
        DuckDBWarehouse(data_root=str(data_root)).query("SELECT count(*) FROM llm_sentiment")

        land_news(landing, [*LANDED, {"published_at": "2024-01-02T15:00:00Z", "title": "Bitcoin miners sell"}])
        monkeypatch.setenv("OPENAI_API_KEY", WRONG_KEY)
        refused = {**resources, **sentiment_resources("synthetic")}
        run(instance, refused, ["news_items"])
        failed = run(instance, refused, ["llm_sentiment"], raise_on_error=False)
        assert not failed.success and "refused" in failure_text(failed)

    blobs: dict[str, bytes] = {}
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_relative_to(landing):
            blobs[str(path)] = path.read_bytes()
    for dagster_run in instance.get_runs():
        blobs[f"run {dagster_run.run_id}"] = serialize_value(dagster_run).encode()
        blobs[f"events {dagster_run.run_id}"] = "\n".join(
            serialize_value(e) for e in instance.all_logs(dagster_run.run_id)).encode()
    blobs["captured logs"] = caplog.text.encode()
    blobs["failure"] = failure_text(failed).encode()

    # The search sees what matters: the instance's storage, the cache, the warehouse, metadata and the error.
    names = " ".join(blobs)
    assert "sentiment.sqlite" in names and "warehouse.duckdb" in names and str(dagster_home) in names
    assert any(n.endswith(".db") and n.startswith(str(dagster_home)) for n in blobs)
    events = b"".join(v for k, v in blobs.items() if k.startswith("events"))
    assert b"calls_made" in events and server.url.encode() in blobs["failure"]
    assert caplog.records
    for name, blob in blobs.items():
        for secret in (KEY, WRONG_KEY):
            assert secret.encode() not in blob, f"{secret[:14]}... found in {name}"
