import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from factor_assets import defs

REPO = Path(__file__).resolve().parents[2]


def _spec(name: str):
    return defs.resolve_asset_graph().get(AssetKey(name))


def test_every_layer_is_an_asset_with_declared_lineage():
    graph = defs.resolve_asset_graph()
    parents = {key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys) for key in graph.get_all_asset_keys()}
    assert parents == {
        "symbol_universe": [],
        "raw_klines": [],
        "raw_trades": [],
        "raw_book": [],
        "raw_funding": [],
        "raw_quotes": [],
        "liquidity_metrics": ["raw_book", "raw_klines", "raw_quotes", "raw_trades"],
        "liquidity_daily": ["raw_book", "raw_klines", "raw_quotes", "raw_trades"],
        "factor_bars": ["liquidity_daily", "liquidity_metrics", "raw_funding", "raw_klines"],
        "planted_signal": [],
        "hourly_closes": ["factor_bars"],
        "factor_panel": ["factor_bars", "hourly_closes", "planted_signal", "sentiment_hourly", "symbol_universe"],
        "factor_ic": ["factor_panel"],
        "factor_correlation": ["factor_panel"],
        "factor_report": ["factor_ic"],
        "factor_correlation_overall": ["factor_correlation"],
        "backtest_daily": ["factor_panel", "raw_funding"],
        "backtest_hourly": ["factor_panel", "raw_funding"],
        "backtest_summary": ["backtest_daily", "backtest_hourly"],
        "rebalance_signals": ["factor_panel"],
        "news_items": ["symbol_universe"],
        "llm_sentiment": ["news_items"],
        "sentiment_hourly": ["llm_sentiment"],
        "llm_cost": ["llm_sentiment"],
        "strategy_runs": ["raw_book", "raw_trades", "symbol_universe"],
        "strategy_fills": ["raw_book", "raw_trades", "symbol_universe"],
        "strategy_equity": ["raw_book", "raw_trades", "symbol_universe"],
    }
    assert all(graph.get(k).is_materializable for k in graph.get_all_asset_keys())  # nothing declared only


def test_compute_assets_take_a_range_in_one_run_and_only_duckdb_writers_share_its_pool():
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    for key in keys:
        node = graph.get(key)
        if node.partitions_def is not None:
            assert node.backfill_policy is not None and node.backfill_policy.max_partitions_per_run is None, key
    # Only the writers of the DuckDB file share its pool; partitioned layers write Parquet and never open it.
    for key in keys:
        node = graph.get(key)
        assert (node.pools == {"duckdb"}) == (node.partitions_def is None and key.path[-1] != "symbol_universe"), key
    # The one step that calls the LLM runs in its own pool.
    assert {key.path[-1] for key in graph.get_all_asset_keys() if graph.get(key).pools == {"llm_api"}} == {"llm_sentiment"}


def test_definitions_validate_through_the_dagster_cli(dagster_home):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
