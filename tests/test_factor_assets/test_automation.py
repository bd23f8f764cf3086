"""Declarative automation on the real asset graph: exactly the partitions whose inputs changed, nothing else.

Materializations are reported to the instance directly (what a finished run
records), and the code location's own automation conditions are evaluated
tick by tick with ``evaluate_automation_conditions``.
"""

import datetime as dt

import pytest
from dagster import DagsterInstance, MetadataValue

from factor_assets.automation import AUTOMATION_SENSOR, LISTINGS_METADATA_KEY
from factor_assets.liquidity import VPIN_WINDOW_DAYS
from factor_core.factors import WARMUP_DAYS
from tests.test_factor_assets.automation_ticks import NOW, AutomationTicks
from tests.test_factor_assets.automation_ticks import january as _days
from tests.test_factor_assets.automation_ticks import mark as _mark

RAW = ["raw_klines", "raw_trades", "raw_book", "raw_funding", "raw_quotes"]
PER_SYMBOL = ["liquidity_metrics", "liquidity_daily", "factor_bars", "planted_signal"]
DAILY = ["hourly_closes", "factor_panel", "factor_ic", "factor_correlation", "backtest_daily", "backtest_hourly"]
SUMMARIES = ["factor_report", "factor_correlation_overall", "backtest_summary", "rebalance_signals"]
DOWNSTREAM = [*PER_SYMBOL, *DAILY, *SUMMARIES]
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]


def Automation(instance, now=NOW) -> AutomationTicks:
    return AutomationTicks(instance, DOWNSTREAM, unpartitioned=SUMMARIES, now=now)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        inst.add_dynamic_partitions("symbols", SYMBOLS)
        yield inst


def _history(instance, days, symbols=SYMBOLS):
    keys = [f"{d}|{s}" for d in days for s in symbols]
    for asset in (*RAW, *PER_SYMBOL):
        _mark(instance, asset, keys)
    for asset in DAILY:
        _mark(instance, asset, days)
    for asset in SUMMARIES:
        _mark(instance, asset, [None])


def _requested(ticks, asset):
    return sorted(k for tick in ticks for k in tick.get(asset, []))


def test_a_new_day_flows_through_every_layer_and_nothing_else(instance):
    _history(instance, _days(20, 30))
    auto = Automation(instance)
    assert auto.run() == []  # history is complete: nothing to do
    new = [f"2024-01-31|{s}" for s in SYMBOLS]
    for asset in RAW:
        _mark(instance, asset, new)
    ticks = auto.run()
    # Per-symbol layers chain within one tick (the planted signal comes with the bars); each cross-sectional
    # hop follows in the next. The new day's closes also recompute the day before: its labels fill in.
    both = ["2024-01-30", "2024-01-31"]
    assert ticks == [
        {"liquidity_metrics": new, "liquidity_daily": new, "factor_bars": new, "planted_signal": new},
        {"hourly_closes": ["2024-01-31"], "factor_panel": both, "factor_ic": both, "factor_correlation": both,
         "backtest_daily": both, "backtest_hourly": both},
        dict.fromkeys(SUMMARIES, [None]),
    ]


def test_a_late_update_of_an_old_day_reaches_the_days_whose_lookback_reads_it(instance):
    _history(instance, _days(1, 31))
    auto = Automation(instance)
    assert auto.run() == []
    _mark(instance, "raw_klines", ["2024-01-05|BBBUSDT"])
    ticks = auto.run()
    # The liquidity of day d reads the bars of d-6..d (its rolling VPIN window), each exactly once.
    window = [f"{d}|BBBUSDT" for d in _days(5, 5 + VPIN_WINDOW_DAYS)]
    assert _requested(ticks, "liquidity_metrics") == window
    assert _requested(ticks, "liquidity_daily") == window
    # factor_bars of day d reads raw_klines of d-WARMUP_DAYS..d, and liquidity_daily of d-1.
    touched = [f"{d}|BBBUSDT" for d in _days(5, min(31, 5 + WARMUP_DAYS))]
    assert _requested(ticks, "factor_bars") == touched
    assert _requested(ticks, "planted_signal") == ["2024-01-05|BBBUSDT"]  # produced beside the bars
    bar_days = sorted({k.split("|")[0] for k in touched})
    assert _requested(ticks, "hourly_closes") == bar_days
    # factor_panel of day d reads the factor_bars of d and the closes of d+1 (its labels).
    panel_days = _days(4, min(31, 5 + WARMUP_DAYS))
    assert _requested(ticks, "factor_panel") == panel_days
    assert _requested(ticks, "factor_correlation") == panel_days
    # factor_ic of day d reads the panel of d-1..d; the backtest of day d the panel of d-2..d.
    assert _requested(ticks, "factor_ic") == _days(4, min(31, 6 + WARMUP_DAYS))
    assert _requested(ticks, "backtest_daily") == _days(4, min(31, 7 + WARMUP_DAYS))
    assert _requested(ticks, "backtest_hourly") == _requested(ticks, "backtest_daily")
    for summary in SUMMARIES:
        assert _requested(ticks, summary) == [None]
    assert not any(k.startswith("2024-01-05|") and not k.endswith("BBBUSDT") for t in ticks for k in t.get("factor_bars", []))


def test_history_that_was_never_materialized_does_not_block_the_newest_day(instance):
    auto = Automation(instance)
    new = [f"2024-01-31|{s}" for s in SYMBOLS]
    for asset in RAW:
        _mark(instance, asset, new)
    ticks = auto.run()
    assert _requested(ticks, "factor_bars") == new  # 20 days of look-back missing: not a blocker
    assert _requested(ticks, "factor_panel") == ["2024-01-31"]
    for daily in ("factor_ic", "factor_correlation", "backtest_daily", "backtest_hourly"):
        assert _requested(ticks, daily) == ["2024-01-31"], daily  # the previous days' panels are missing too
    assert _requested(ticks, "backtest_summary") == [None]


def test_a_new_symbol_gets_its_layers_and_the_days_cross_section_is_rebuilt(instance):
    _history(instance, _days(25, 31))
    auto = Automation(instance)
    assert auto.run() == []
    instance.add_dynamic_partitions("symbols", ["DDDUSDT"])
    auto.later()
    assert auto.run() == []  # registered but no data: nothing to compute, nothing blocked
    for asset in RAW:
        _mark(instance, asset, ["2024-01-31|DDDUSDT"])
    ticks = auto.run()
    assert _requested(ticks, "factor_bars") == ["2024-01-31|DDDUSDT"]
    assert _requested(ticks, "liquidity_metrics") == ["2024-01-31|DDDUSDT"]
    assert _requested(ticks, "planted_signal") == ["2024-01-31|DDDUSDT"]  # where its bars are, not its history
    assert _requested(ticks, "hourly_closes") == ["2024-01-31"]
    # The 30th reads the 31st's closes, but waits for DDDUSDT's bars of the 30th: without listing dates a
    # registered symbol counts as listed from the start (a universe file or observed listings say otherwise).
    assert _requested(ticks, "factor_panel") == ["2024-01-31"]


def test_a_cross_section_waits_for_every_listed_symbol_but_not_for_a_delisted_one(instance):
    _history(instance, _days(25, 29))
    listings = {"AAAUSDT": [None, None], "BBBUSDT": [None, None], "CCCUSDT": [None, "2024-01-29"]}
    _mark(instance, "symbol_universe", [None], {LISTINGS_METADATA_KEY: MetadataValue.json(listings)})
    auto = Automation(instance)
    assert auto.run() == []
    for asset in RAW:
        _mark(instance, asset, ["2024-01-30|AAAUSDT"])
    assert _requested(auto.run(), "factor_panel") == []  # BBBUSDT (listed) has no 2024-01-30 yet
    for asset in RAW:
        _mark(instance, asset, ["2024-01-30|BBBUSDT"])
    ticks = auto.run()
    # CCCUSDT, delisted on the 29th, is not awaited; the 29th's labels read the 30th's closes.
    assert _requested(ticks, "factor_panel") == ["2024-01-29", "2024-01-30"]
    assert _requested(ticks, "backtest_daily") == ["2024-01-29", "2024-01-30"]


def test_a_late_sentiment_update_reaches_that_days_panel_and_what_reads_it_and_nothing_else(instance):
    _history(instance, _days(1, 31))
    auto = Automation(instance)
    assert auto.run() == []
    _mark(instance, "sentiment_hourly", ["2024-01-15|AAAUSDT"])
    ticks = auto.run()
    assert _requested(ticks, "factor_panel") == ["2024-01-15"]
    assert _requested(ticks, "factor_correlation") == ["2024-01-15"]
    assert _requested(ticks, "factor_ic") == _days(15, 16)
    assert _requested(ticks, "backtest_daily") == _days(15, 17)
    assert not any(_requested(ticks, a) for a in (*PER_SYMBOL, "hourly_closes"))
    for summary in SUMMARIES:
        assert _requested(ticks, summary) == [None]


def test_the_research_layer_waits_for_the_days_funding_but_never_for_the_planted_signal(instance):
    _history(instance, _days(25, 30))
    auto = Automation(instance)
    assert auto.run() == []
    new = [f"2024-01-31|{s}" for s in SYMBOLS]
    for asset in RAW:
        if asset != "raw_funding":
            _mark(instance, asset, new)
    ticks = auto.run()
    assert _requested(ticks, "factor_panel") == ["2024-01-30", "2024-01-31"]
    assert _requested(ticks, "backtest_daily") == ["2024-01-30"]  # the 31st waits for its funding settlements
    _mark(instance, "raw_funding", new)
    assert "2024-01-31" in _requested(auto.run(), "backtest_daily")


def test_no_automation_requests_a_delisted_symbols_partitions_after_its_delisting(instance):
    listings = {"CCCUSDT": [None, "2024-01-29"]}
    _mark(instance, "symbol_universe", [None], {LISTINGS_METADATA_KEY: MetadataValue.json(listings)})
    auto = Automation(instance)
    late = ["2024-01-30|CCCUSDT", "2024-01-29|CCCUSDT"]
    for asset in RAW:
        _mark(instance, asset, late)  # data arriving anyway (say, a landed file)
    ticks = auto.run()
    assert _requested(ticks, "factor_bars") == ["2024-01-29|CCCUSDT"]


def test_the_automation_sensor_runs_by_default_in_the_code_server_and_emits_backfills():
    assert AUTOMATION_SENSOR.default_status.value == "RUNNING"
    assert AUTOMATION_SENSOR.emit_backfills  # one tick's requests become one backfill
    assert AUTOMATION_SENSOR._use_user_code_server  # the custom conditions evaluate in the code location


def test_a_settled_tick_carries_no_state_per_missing_partition_so_ticks_stay_cheap_at_any_universe_size():
    """The cursor Dagster stores every tick must not enumerate never-materialized (day, symbol) partitions
    (146 k per asset at 200 symbols x 2 years): 20 times the symbols, about the same cursor."""
    from dagster_shared.serdes import serialize_value

    sizes = {}
    for n in (3, 60):
        with DagsterInstance.ephemeral() as inst:
            symbols = [f"S{i:03d}USDT" for i in range(n)]
            inst.add_dynamic_partitions("symbols", symbols)
            _history(inst, _days(29, 31), symbols[:3])  # some partitions stored, the rest never materialized
            # (a distinct evaluation time per instance: Dagster caches multi-partition keys by time)
            auto = Automation(inst, now=NOW + dt.timedelta(minutes=n))  # the first tick records the initial state
            assert auto.tick() == {}
            sizes[n] = len(serialize_value(auto.cursor))
    assert sizes[60] < 1.2 * sizes[3], sizes
