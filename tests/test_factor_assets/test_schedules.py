import datetime as dt

from dagster import AssetKey, SkipReason, build_schedule_context

from factor_assets.collection import PER_SYMBOL_DAILY_ASSETS, daily_ingestion_schedule
from factor_assets.definitions import defs
from partitions import register_symbols


def test_daily_ingestion_requests_yesterday_for_every_symbol_in_one_run(instance):
    register_symbols(instance, ["ETHUSDT"])
    register_symbols(instance, ["BTCUSDT"])
    context = build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime(2024, 3, 2, 2, 30, tzinfo=dt.UTC)
    )
    request = daily_ingestion_schedule(context)
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-01|ETHUSDT"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-01|BTCUSDT"
    assert request.asset_selection == [AssetKey(a) for a in PER_SYMBOL_DAILY_ASSETS]
    assert request.run_key == "daily-2024-03-01"  # a re-evaluated tick never launches twice


def test_daily_ingestion_skips_without_symbols(instance):
    context = build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(2024, 3, 2, 2, 30, tzinfo=dt.UTC))
    assert isinstance(daily_ingestion_schedule(context), SkipReason)


def test_the_scheduled_assets_share_partitions_and_take_ranges_in_one_run():
    graph = defs.resolve_asset_graph()
    for name in PER_SYMBOL_DAILY_ASSETS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def == graph.get(AssetKey("raw_klines")).partitions_def, name
        assert node.backfill_policy is not None and node.backfill_policy.max_partitions_per_run is None, name
