"""Declarative automation of the sentiment layer on the real asset graph (``evaluate_automation_conditions``).

Materializations are reported to the instance directly; each tick's requested
partitions of the sentiment assets are then reported as materialized, until a
tick requests nothing.
"""

import datetime as dt

import pytest
from dagster import AssetKey, DagsterInstance, MetadataValue

from factor_assets.automation import LISTINGS_METADATA_KEY
from factor_assets.definitions import defs
from tests.test_factor_assets.automation_ticks import NOW, AutomationTicks
from tests.test_factor_assets.automation_ticks import january as _days
from tests.test_factor_assets.automation_ticks import mark as _mark

SENTIMENT = ["news_items", "llm_sentiment", "sentiment_hourly", "llm_cost"]
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]


def Ticks(instance, now=NOW) -> AutomationTicks:
    return AutomationTicks(instance, SENTIMENT, now=now)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        inst.add_dynamic_partitions("symbols", SYMBOLS)
        yield inst


def _history(instance, days):
    keys = [f"{d}|{s}" for d in days for s in SYMBOLS]
    _mark(instance, "news_items", days)
    _mark(instance, "llm_sentiment", keys)
    _mark(instance, "sentiment_hourly", keys)
    _mark(instance, "llm_cost", days)


def _keys(days, symbols=SYMBOLS):
    return sorted(f"{d}|{s}" for d in days for s in symbols)


def test_a_new_news_day_is_scored_aggregated_and_costed_for_every_symbol_and_nothing_else(instance):
    _history(instance, _days(20, 30))
    ticks = Ticks(instance)
    assert ticks.settle() == {}
    _mark(instance, "news_items", ["2024-01-31"])
    assert ticks.settle() == {
        "llm_sentiment": _keys(["2024-01-31"]),
        "sentiment_hourly": _keys(["2024-01-31"]),
        "llm_cost": ["2024-01-31"],
    }


def test_a_corrected_news_day_reaches_the_next_days_hourly_sentiment_through_its_look_back(instance):
    _history(instance, _days(20, 31))
    ticks = Ticks(instance)
    assert ticks.settle() == {}
    _mark(instance, "news_items", ["2024-01-25"])  # e.g. a landed file corrected that day
    requested = ticks.settle()
    assert requested["llm_sentiment"] == _keys(["2024-01-25"])
    assert requested["sentiment_hourly"] == _keys(["2024-01-25", "2024-01-26"])  # D reads D-1, never D+1
    assert requested["llm_cost"] == ["2024-01-25"]


def test_a_new_day_requests_its_news_items_once_it_is_complete(instance):
    _history(instance, _days(20, 31))
    ticks = Ticks(instance)
    assert ticks.settle() == {}
    ticks.now = NOW + dt.timedelta(days=1)  # 2024-02-01 has ended: a new daily partition
    assert ticks.tick() == {"news_items": ["2024-02-01"]}


def test_scores_wait_for_their_days_news_and_a_delisted_symbol_is_not_scored_or_awaited(instance):
    listings = {"CCCUSDT": [None, "2024-01-29"]}
    _mark(instance, "symbol_universe", [None], {LISTINGS_METADATA_KEY: MetadataValue.json(listings)})
    _history(instance, _days(25, 28))
    ticks = Ticks(instance)
    assert ticks.settle() == {}
    _mark(instance, "news_items", ["2024-01-30"])
    requested = ticks.settle()
    assert requested["llm_sentiment"] == _keys(["2024-01-30"], ["AAAUSDT", "BBBUSDT"])
    assert requested["llm_cost"] == ["2024-01-30"]  # CCCUSDT, delisted on the 29th, is not awaited
    assert "2024-01-29" not in " ".join(requested.get("llm_sentiment", []))  # no news that day: nothing to score


def test_the_hourly_look_back_mapping_reads_the_previous_day_and_never_the_next():
    hourly, scores = defs.get_assets_def("sentiment_hourly"), defs.get_assets_def("llm_sentiment")
    mapping = hourly.get_partition_mapping(AssetKey("llm_sentiment"))
    with DagsterInstance.ephemeral() as inst:
        inst.add_dynamic_partitions("symbols", SYMBOLS)
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            hourly.partitions_def.subset_with_partition_keys(["2024-01-10|BBBUSDT"]),
            hourly.partitions_def,
            scores.partitions_def,
            current_time=NOW,
            dynamic_partitions_store=inst,
        ).partitions_subset.get_partition_keys()
    assert sorted(upstream) == ["2024-01-09|BBBUSDT", "2024-01-10|BBBUSDT"]
