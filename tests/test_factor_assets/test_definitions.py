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
        "factor_panel": ["factor_bars", "symbol_universe"],
        "backtest_daily": ["factor_panel"],
        "backtest_summary": ["backtest_daily"],
        "strategy_runs": ["raw_book", "raw_trades", "symbol_universe"],
        "strategy_fills": ["raw_book", "raw_trades", "symbol_universe"],
        "strategy_equity": ["raw_book", "raw_trades", "symbol_universe"],
    }


def test_compute_assets_take_a_range_in_one_run_and_only_duckdb_writers_share_its_pool():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is not None:
            assert node.backfill_policy is not None and node.backfill_policy.max_partitions_per_run is None, key
    # Only the writers of the DuckDB file share its pool; partitioned layers write Parquet and never open it.
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert (node.pools == {"duckdb"}) == (node.partitions_def is None and key.path[-1] != "symbol_universe"), key


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
