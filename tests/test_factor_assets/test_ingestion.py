"""What starts raw runs: the daily schedule, the archive sensor and the landing sensor."""

import datetime as dt
import json

import pytest
from dagster import AssetMaterialization, MetadataValue, SensorResult, SkipReason, build_schedule_context, build_sensor_context

from factor_assets.automation import LISTINGS_METADATA_KEY
from factor_assets.ingestion import (
    RAW_SELECTION,
    archive_sensor,
    build_daily_schedule,
    contiguous_blocks,
    landing_sensor,
    last_complete_day,
)
from partitions import register_symbols
from resources.market_data import BinanceMarketData, LandingMarketData
from tests.binance_replica import BinanceReplica, Fault, kline_rows, klines_csv

SYMBOLS = ["ETHUSDT", "BTCUSDT", "SOLUSDT"]  # registration order, not alphabetical


def _ranges(requests) -> list[tuple[str, str]]:
    return [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests]


def _delist(instance, listings) -> None:
    instance.report_runless_asset_event(AssetMaterialization(
        asset_key="symbol_universe", metadata={LISTINGS_METADATA_KEY: MetadataValue.json(listings)}))


def test_contiguous_blocks_follow_registration_order():
    assert contiguous_blocks(["A", "B", "C", "D"], {"A", "B", "D"}) == [["A", "B"], ["D"]]
    assert contiguous_blocks(["A", "B"], set()) == []


# --------------------------------------------------------------------------- daily schedule


def _schedule_requests(instance, source="synthetic"):
    schedule = build_daily_schedule(source)
    context = build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(2024, 3, 2, 2, 30, tzinfo=dt.UTC))
    return schedule, schedule(context)


def test_daily_schedule_requests_yesterday_of_every_listed_symbol_as_one_range(instance):
    register_symbols(instance, ["ETHUSDT"])
    register_symbols(instance, ["BTCUSDT", "SOLUSDT"])
    schedule, requests = _schedule_requests(instance)
    assert _ranges(requests) == [("2024-03-01|ETHUSDT", "2024-03-01|SOLUSDT")]  # one run for the whole day
    assert requests[0].asset_selection == RAW_SELECTION  # raw only: automation carries the rest
    assert schedule.default_status.value == "RUNNING"
    assert build_daily_schedule("landing").default_status.value == "STOPPED"  # files drive the landing source


def test_daily_schedule_skips_delisted_and_already_ingested_symbols(instance):
    for symbol in SYMBOLS:
        register_symbols(instance, [symbol])
    _delist(instance, {"BTCUSDT": [None, "2024-02-29"]})
    _, requests = _schedule_requests(instance)
    assert _ranges(requests) == [("2024-03-01|ETHUSDT", "2024-03-01|ETHUSDT"), ("2024-03-01|SOLUSDT", "2024-03-01|SOLUSDT")]
    for symbol in ("ETHUSDT", "SOLUSDT"):
        instance.report_runless_asset_event(AssetMaterialization(asset_key="raw_klines", partition=f"2024-03-01|{symbol}"))
    _, skipped = _schedule_requests(instance)
    assert isinstance(skipped, SkipReason) and "already has 2024-03-01" in skipped.skip_message


def test_daily_schedule_skips_without_symbols(instance):
    _, result = _schedule_requests(instance)
    assert isinstance(result, SkipReason)


# --------------------------------------------------------------------------- archive sensor


@pytest.fixture
def replica():
    with BinanceReplica() as server:
        yield server


def _publish(replica, symbol, day):
    replica.put_archive("spot", "daily", "klines", symbol, day, klines_csv(kline_rows(day)), interval="1m")


def _tick(instance, market_data, cursor=None):
    with build_sensor_context(instance=instance, resources={"market_data": market_data}, cursor=cursor) as context:
        result = archive_sensor(context)
        return result, (result.cursor if isinstance(result, SensorResult) and result.cursor else context.cursor)


def test_archive_sensor_requests_a_day_once_its_checksum_files_appear(instance, replica):
    for symbol in SYMBOLS:
        register_symbols(instance, [symbol])
    market_data = BinanceMarketData(archive_url=replica.url, api_url=replica.url, fapi_url=replica.url)
    day = last_complete_day().isoformat()
    result, cursor = _tick(instance, market_data)
    assert isinstance(result, SkipReason) and f"{day} is not published yet" in result.skip_message
    probes = [r.path for r in replica.requests]
    assert len(probes) == 1 and probes[0].endswith(f"ETHUSDT-1m-{day}.zip.CHECKSUM")  # one cheap probe, no zip

    _publish(replica, "ETHUSDT", day)
    _publish(replica, "BTCUSDT", day)
    result, cursor = _tick(instance, market_data, cursor)
    assert _ranges(result.run_requests) == [(f"{day}|ETHUSDT", f"{day}|BTCUSDT")]
    assert not any(r.path.endswith(".zip") for r in replica.requests)
    _publish(replica, "SOLUSDT", day)
    result, cursor = _tick(instance, market_data, cursor)
    assert _ranges(result.run_requests) == [(f"{day}|SOLUSDT", f"{day}|SOLUSDT")]  # only the one still pending
    assert json.loads(cursor)["day"] > day  # the day is complete: the sensor moves on


def test_archive_sensor_backs_off_when_the_archive_is_unreachable(instance, replica):
    register_symbols(instance, ["ETHUSDT"])
    day = last_complete_day().isoformat()
    path = f"/data/spot/daily/klines/ETHUSDT/1m/ETHUSDT-1m-{day}.zip.CHECKSUM"
    replica.inject(path, *[Fault(status=503)] * 10)
    market_data = BinanceMarketData(archive_url=replica.url, api_url=replica.url, fapi_url=replica.url)
    result, cursor = _tick(instance, market_data)
    assert isinstance(result, SkipReason) and "archive probe failed" in result.skip_message
    probes = len(replica.requests)
    result, cursor = _tick(instance, market_data, cursor)
    assert "backing off after 1 failed probe(s)" in result.skip_message
    assert len(replica.requests) == probes  # no traffic while backing off


# --------------------------------------------------------------------------- landing sensor


@pytest.fixture
def landing_dir(tmp_path):
    path = tmp_path / "landing"
    path.mkdir()
    return path


def _land(landing_dir, name: str, day: str) -> None:
    (landing_dir / name).write_bytes(klines_csv(kline_rows(day)))


def _landing_tick(instance, landing_dir, cursor=None):
    with build_sensor_context(instance=instance, resources={"market_data": LandingMarketData(landing_dir=str(landing_dir))},
                              cursor=cursor) as context:
        result = landing_sensor(context)
        return result, (result.cursor if isinstance(result, SensorResult) else context.cursor)


def test_a_landed_file_requests_exactly_its_partitions_and_registers_its_symbol(instance, landing_dir):
    _land(landing_dir, "BTCUSDT-1m-2024-03-01.csv", "2024-03-01")
    _land(landing_dir, "BTCUSDT-1m-2024-03-02.csv", "2024-03-02")
    result, cursor = _landing_tick(instance, landing_dir)
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["BTCUSDT"]]
    assert _ranges(result.run_requests) == [("2024-03-01|BTCUSDT", "2024-03-02|BTCUSDT")]
    assert result.run_requests[0].asset_selection == RAW_SELECTION

    again, cursor = _landing_tick(instance, landing_dir, cursor)
    assert isinstance(again, SkipReason)  # handled files are not requested again

    (landing_dir / "BTCUSDT-1m-2024-03-02.csv").write_bytes(klines_csv(kline_rows("2024-03-02", seed=5)))  # corrected
    replaced, cursor = _landing_tick(instance, landing_dir, cursor)
    assert _ranges(replaced.run_requests) == [("2024-03-02|BTCUSDT", "2024-03-02|BTCUSDT")]


def test_a_bad_file_is_reported_once_by_name_and_never_requested(instance, landing_dir):
    _land(landing_dir, "btc usdt-1m-2024-03-01.csv", "2024-03-01")
    _land(landing_dir, "BTCUSDT-1m-2010-01-01.csv", "2010-01-01")  # before the partitions start
    first, cursor = _landing_tick(instance, landing_dir)
    assert isinstance(first, SensorResult) and not first.run_requests
    message = first.skip_reason.skip_message
    assert "btc usdt-1m-2024-03-01.csv" in message and "outside the partitions" in message
    second, cursor = _landing_tick(instance, landing_dir, cursor)
    assert isinstance(second, SkipReason) and "btc usdt" not in second.skip_message  # reported once


def test_a_file_of_a_delisted_symbol_after_its_delisting_is_not_requested(instance, landing_dir):
    register_symbols(instance, ["LUNAUSDT"])
    _delist(instance, {"LUNAUSDT": [None, "2024-03-01"]})
    _land(landing_dir, "LUNAUSDT-1m-2024-03-01.csv", "2024-03-01")
    _land(landing_dir, "LUNAUSDT-1m-2024-03-02.csv", "2024-03-02")
    result, _ = _landing_tick(instance, landing_dir)
    assert _ranges(result.run_requests) == [("2024-03-01|LUNAUSDT", "2024-03-01|LUNAUSDT")]
