"""strategy_runs through Dagster: declared lineage, stored results equal to the pure engine, the equity picture, automation."""

import base64
import datetime as dt

import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetKey, AssetMaterialization, evaluate_automation_conditions, materialize

from factor_assets import defs
from factor_assets.raw import build_raw_assets
from factor_assets.strategy_runs import STRATEGY_RUN_ASSETS
from factor_assets.universe import UNIVERSE_ASSETS
from factor_core.partition_store import PartitionStore
from factor_core.replay import ReplayCatalog, parse_options
from factor_core.replay.engine import (
    DEFAULT_FILE, Engine, equity_frame, fills_frame, load_strategy_config, stored_events, summary_frame,
)
from partitions import register_symbols
from resources.warehouse import DuckDBWarehouse
from tests.conftest import partition_metadata

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DAY = "2024-01-02"
RAW = build_raw_assets("synthetic")
GRAPH = [*UNIVERSE_ASSETS, RAW, *STRATEGY_RUN_ASSETS]


def _materialize_raw(instance, resources, days=(DAY,)):
    result = materialize([RAW], instance=instance, resources=resources, selection=["raw_trades", "raw_book"],
                         tags={"dagster/asset_partition_range_start": f"{days[0]}|{SYMBOLS[0]}",
                               "dagster/asset_partition_range_end": f"{days[-1]}|{SYMBOLS[-1]}"})
    assert result.success


def _engine_directly(root, day: str):
    """The same strategies run by the pure engine over the stored files, outside Dagster."""
    config = load_strategy_config(DEFAULT_FILE)
    request = parse_options(
        f'{{"symbols":{SYMBOLS!r},"from":"{day}","to":"{(dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()}",'
        f'"dataTypes":["trade","book_snapshot_{config.book_levels}_0ms"]}}'.replace("'", '"')
    )
    specs = [s.with_symbols(tuple(SYMBOLS)) for s in config.strategies]
    engine = Engine(specs, start_us=request.start_ns // 1000, end_us=request.end_ns // 1000,
                    equity_interval_us=config.equity_interval_s * 1_000_000)
    return engine.run(stored_events(ReplayCatalog(PartitionStore(root)), request))


def test_strategy_runs_reads_the_day_of_every_listed_symbol_through_declared_inputs():
    graph = defs.resolve_asset_graph()
    for name in ("strategy_runs", "strategy_fills", "strategy_equity"):
        node = graph.get(AssetKey(name))
        assert sorted(k.to_user_string() for k in node.parent_keys) == ["raw_book", "raw_trades", "symbol_universe"]
        assert node.backfill_policy is not None and node.backfill_policy.max_partitions_per_run is None


def test_stored_results_equal_the_engine_run_on_the_files_and_the_ui_gets_an_equity_picture(
    instance, pipeline_resources, data_root
):
    register_symbols(instance, SYMBOLS)
    resources = pipeline_resources()
    _materialize_raw(instance, resources)
    result = materialize(GRAPH, instance=instance, resources=resources, partition_key=DAY,
                         selection=["strategy_runs", "strategy_fills", "strategy_equity"])
    assert result.success

    stored = {name: pq.read_table(data_root / name / f"date={DAY}" / "part-0.parquet").to_pandas()
              for name in ("strategy_runs", "strategy_fills", "strategy_equity")}
    expected = _engine_directly(data_root, DAY)
    pd.testing.assert_frame_equal(stored["strategy_runs"], summary_frame(expected), check_dtype=False)
    pd.testing.assert_frame_equal(stored["strategy_fills"], fills_frame(expected), check_dtype=False)
    pd.testing.assert_frame_equal(stored["strategy_equity"], equity_frame(expected), check_dtype=False)
    assert set(stored["strategy_runs"]["strategy"]) == {s.name for s in load_strategy_config().strategies}
    assert len(stored["strategy_fills"]) > 0
    assert (stored["strategy_equity"].groupby("strategy").size() == 24 * 60 + 1).all()  # every minute + the close

    metadata = partition_metadata(result, "strategy_runs")[DAY]
    image = metadata["equity_curve"]
    assert image.startswith("![equity](data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1].rstrip(")")).startswith(b"\x89PNG\r\n\x1a\n")
    assert metadata["symbols"] == SYMBOLS
    assert partition_metadata(result, "strategy_fills")[DAY]["rows"] == len(stored["strategy_fills"])
    # The warehouse sees the Parquet partitions as views of the same names.
    warehouse = DuckDBWarehouse(data_root=str(data_root))
    counts = warehouse.query("SELECT (SELECT count(*) FROM strategy_runs) AS runs, (SELECT count(*) FROM strategy_fills) AS fills")
    assert counts.iloc[0].tolist() == [len(stored["strategy_runs"]), len(stored["strategy_fills"])]


def test_a_strategy_symbol_not_listed_that_day_is_left_out_and_reported(instance, pipeline_resources, data_root, tmp_path):
    register_symbols(instance, SYMBOLS)
    resources = pipeline_resources()
    _materialize_raw(instance, resources)
    config = {"strategies": [{"name": "taker", "kind": "book_imbalance_taker", "symbols": ["BTCUSDT", "SOLUSDT"]}]}
    result = materialize(GRAPH, instance=instance, resources=resources, partition_key=DAY,
                         selection=["strategy_runs", "strategy_fills", "strategy_equity"],
                         run_config={"ops": {"tick_strategies": {"config": config}}})
    assert result.success
    summary = pq.read_table(data_root / "strategy_runs" / f"date={DAY}" / "part-0.parquet").to_pandas()
    assert summary["symbols"].tolist() == ["BTCUSDT"]
    assert partition_metadata(result, "strategy_runs")[DAY]["symbols_not_listed"] == {"taker": ["SOLUSDT"]}


def test_a_symbol_not_yet_listed_that_day_by_the_universe_is_not_traded(instance, pipeline_resources, data_root, tmp_path):
    from factor_assets.universe import UniverseResource

    register_symbols(instance, SYMBOLS)
    universe_file = tmp_path / "universe.csv"
    universe_file.write_text("symbol,listed_on,delisted_on\nBTCUSDT,,\nETHUSDT,2024-01-05,\n")
    resources = pipeline_resources(universe=UniverseResource(universe_file=str(universe_file)))
    _materialize_raw(instance, resources)
    assert materialize(GRAPH, instance=instance, resources=resources, selection=["symbol_universe"]).success
    result = materialize(GRAPH, instance=instance, resources=resources, partition_key=DAY,
                         selection=["strategy_runs", "strategy_fills", "strategy_equity"])
    assert result.success
    summary = pq.read_table(data_root / "strategy_runs" / f"date={DAY}" / "part-0.parquet").to_pandas()
    assert set(summary["symbols"]) == {"BTCUSDT"}  # ETHUSDT's ticks exist, but it was listed only from 2024-01-05
    assert partition_metadata(result, "strategy_runs")[DAY]["symbols"] == ["BTCUSDT"]


def test_a_listed_symbol_without_its_ticks_fails_the_day_naming_the_partition(instance, pipeline_resources, data_root):
    register_symbols(instance, SYMBOLS)
    resources = pipeline_resources()
    _materialize_raw(instance, resources)
    (data_root / "raw_book" / "symbol=ETHUSDT" / f"date={DAY}" / "part-0.parquet").unlink()
    result = materialize(GRAPH, instance=instance, resources=resources, partition_key=DAY,
                         selection=["strategy_runs", "strategy_fills", "strategy_equity"], raise_on_error=False)
    assert not result.success
    message = str(result.all_events)
    assert f"raw_book: {DAY}|ETHUSDT" in message and "never materialized" in message
    assert not (data_root / "strategy_runs" / f"date={DAY}").exists()


def test_automation_requests_the_day_once_every_listed_symbol_has_its_ticks(instance):
    register_symbols(instance, SYMBOLS)
    t0 = dt.datetime(2024, 1, 3, 6, tzinfo=dt.UTC)
    first = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=t0)
    _mark(instance, ["raw_trades", "raw_book"], [f"{DAY}|{SYMBOLS[0]}"])
    half = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=t0 + dt.timedelta(minutes=1),
                                          cursor=first.cursor)
    assert DAY not in half.get_requested_partitions(AssetKey("strategy_runs"))
    _mark(instance, ["raw_trades", "raw_book"], [f"{DAY}|{SYMBOLS[1]}"])
    full = evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=t0 + dt.timedelta(minutes=2),
                                          cursor=half.cursor)
    for name in ("strategy_runs", "strategy_fills", "strategy_equity"):
        assert full.get_requested_partitions(AssetKey(name)) == {DAY}


def _mark(instance, assets, keys) -> None:
    for asset in assets:
        for key in keys:
            instance.report_runless_asset_event(AssetMaterialization(asset_key=asset, partition=key))
