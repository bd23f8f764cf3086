"""The research layer through Dagster: point-in-time universe, no look-ahead, strategies from the launchpad,
the optional sentiment input, and errors that name what is wrong."""

import dataclasses
import typing

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from factor_assets.research_layer import research_assets
from factor_assets.strategy_config import StrategyConfig
from factor_assets.universe import UniverseResource
from factor_core.partition_store import PartitionStore
from factor_core.research import StrategySpec
from resources.market_data import LandingMarketData
from tests.conftest import partition_metadata
from tests.test_factor_assets import research_inputs as R

SYMBOLS = R.symbols(5)
DAYS = R.days("2024-01-01", 3)
PANEL_AND_BACKTEST = ["hourly_closes", "factor_panel", "backtest_daily", "backtest_hourly"]
HOUR = pd.Timedelta(hours=1)


@pytest.fixture
def ephemeral():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def _strategies(*specs: dict) -> dict:
    return {"strategies": list(specs)}


def _config(**ops) -> dict:
    return {"ops": {op: {"config": config} for op, config in ops.items()}}


TWO_BUCKETS = {"name": "two_buckets", "factors": {"planted_signal": 1.0}, "n_quantiles": 2, "fee_bps": 1.0}


# --------------------------------------------------------------------------- point-in-time universe


def test_a_symbol_delisted_mid_window_keeps_its_history_and_drops_out_of_later_panels(
        ephemeral, pipeline_resources, data_root, tmp_path):
    universe_file = tmp_path / "universe.csv"
    # S04 trades through its delisting day (day 1); S03 is listed on day 3. Both have stored bars on every day.
    universe_file.write_text(f"symbol,listed_on,delisted_on\nS00USDT,,\nS01USDT,,\nS02USDT,,\n"
                             f"S03USDT,{DAYS[2]},\nS04USDT,,{DAYS[0]}\n")
    resources = pipeline_resources(market_data=R.market_data(0.1), universe=UniverseResource(universe_file=str(universe_file)))
    R.store_factor_inputs(data_root, SYMBOLS, DAYS, signal_ic=0.1)
    materialize(R.all_assets(), instance=ephemeral, resources=resources, selection=["symbol_universe"])
    R.run_planted(ephemeral, resources, SYMBOLS, DAYS)
    R.run_daily(ephemeral, resources, DAYS, selection=PANEL_AND_BACKTEST,
                run_config=_config(backtest=_strategies(TWO_BUCKETS)))

    panel = R.read_daily(data_root, "factor_panel")
    members = panel.groupby("date")["symbol"].unique().map(sorted).to_dict()
    assert members == {DAYS[0]: ["S00USDT", "S01USDT", "S02USDT", "S04USDT"],
                       DAYS[1]: ["S00USDT", "S01USDT", "S02USDT"],
                       DAYS[2]: ["S00USDT", "S01USDT", "S02USDT", "S03USDT"]}
    delisted = panel[panel["symbol"] == "S04USDT"].set_index("ts")
    assert len(delisted) == 24  # its history stays
    last = pd.Timestamp(f"{DAYS[0]} 23:00", tz="UTC")
    assert np.isnan(delisted.loc[last, "fwd_ret_1h"]) and delisted["fwd_ret_24h"].isna().all()  # no label past it
    assert delisted.loc[last - HOUR, "fwd_ret_1h"] == pytest.approx(
        delisted.loc[last, "close"] / delisted.loc[last - HOUR, "close"] - 1, rel=1e-12)
    # The backtest holds what was listed at each decision: with two buckets every scored member is held.
    hourly = R.read_daily(data_root, "backtest_hourly").set_index("ts")
    scored = panel.groupby("close_time")["rank_planted_signal"].count()
    held = hourly["n_long"] + hourly["n_short"]
    np.testing.assert_array_equal(held.to_numpy(), scored.reindex(held.index).fillna(0).to_numpy())
    day = held.index.strftime("%Y-%m-%d")
    assert held[day == DAYS[0]].iloc[1:].eq(4).all() and held[day == DAYS[1]].iloc[1:].eq(3).all()
    assert held[day == DAYS[1]].iloc[0] == 4  # decided at 00:00 from day 1's last row: S04 still in it


# --------------------------------------------------------------------------- no look-ahead


def test_changing_every_price_after_t_changes_nothing_stamped_at_or_before_t(ephemeral, pipeline_resources, data_root):
    resources = pipeline_resources(market_data=R.market_data(0.1))
    R.store_factor_inputs(data_root, SYMBOLS, DAYS, signal_ic=0.1)
    R.run_planted(ephemeral, resources, SYMBOLS, DAYS)
    daily = [*PANEL_AND_BACKTEST, "factor_ic"]
    R.run_daily(ephemeral, resources, DAYS, selection=daily)
    before = {a: R.read_daily(data_root, a, [DAYS[1]]) for a in ("factor_panel", "factor_ic", "backtest_daily",
                                                                   "backtest_hourly")}
    t = pd.Timestamp(DAYS[2], tz="UTC")  # the end of day 2
    rng = np.random.default_rng(5)
    store = PartitionStore(data_root)
    for symbol in SYMBOLS:  # every close of day 3 (hence every return after t) moves
        dims = {"date": DAYS[2], "symbol": symbol}
        bars = store.read("factor_bars", dims).to_pandas().drop(columns=["date", "symbol"])
        bars["close"] *= np.exp(rng.normal(0, 0.02, len(bars)))
        store.publish([store.stage_frame("factor_bars", dims, bars)])
    R.run_daily(ephemeral, resources, DAYS[1:], selection=daily)  # what automation requests after the change
    after = {a: R.read_daily(data_root, a, [DAYS[1]]) for a in before}

    panel_b, panel_a = before["factor_panel"], after["factor_panel"]
    inputs = [c for c in panel_b.columns if not c.startswith("fwd_ret_")]
    pd.testing.assert_frame_equal(panel_a[inputs], panel_b[inputs])
    for h in (1, 4, 24):
        known = panel_b["close_time"] + h * HOUR <= t
        pd.testing.assert_series_equal(panel_a.loc[known, f"fwd_ret_{h}h"], panel_b.loc[known, f"fwd_ret_{h}h"])
        assert not np.allclose(panel_a.loc[~known, f"fwd_ret_{h}h"], panel_b.loc[~known, f"fwd_ret_{h}h"])
    ic_b, ic_a = before["factor_ic"], after["factor_ic"]
    done = ic_b["ts"] + HOUR + pd.to_timedelta(ic_b["horizon_h"], unit="h") <= t
    pd.testing.assert_frame_equal(ic_a[done], ic_b[done])
    assert not ic_a.loc[~done, "rank_ic"].equals(ic_b.loc[~done, "rank_ic"])
    # Every bar of day 2 closed by t: the backtest of day 2 is unchanged, bit for bit.
    pd.testing.assert_frame_equal(after["backtest_daily"], before["backtest_daily"])
    pd.testing.assert_frame_equal(after["backtest_hourly"], before["backtest_hourly"])


# --------------------------------------------------------------------------- strategies as configuration


def test_strategy_config_mirrors_strategy_spec_field_by_field():
    spec_fields = {f.name: f for f in dataclasses.fields(StrategySpec)}
    config_fields = StrategyConfig.model_fields
    assert list(config_fields) == list(spec_fields)
    hints = typing.get_type_hints(StrategySpec)
    for name, field in spec_fields.items():
        assert config_fields[name].annotation == hints[name], name
        if field.default is not dataclasses.MISSING:
            assert config_fields[name].default == field.default, name
        elif field.default_factory is not dataclasses.MISSING:
            assert config_fields[name].default_factory() == field.default_factory(), name
        else:
            assert config_fields[name].is_required(), name


def test_a_run_overrides_the_strategies_and_a_summary_never_mixes_two_definitions(
        ephemeral, pipeline_resources, data_root):
    resources = pipeline_resources(market_data=R.market_data(0.1))
    R.store_factor_inputs(data_root, SYMBOLS, DAYS, signal_ic=0.1)
    R.run_planted(ephemeral, resources, SYMBOLS, DAYS)
    R.run_daily(ephemeral, resources, DAYS, selection=PANEL_AND_BACKTEST,
                run_config=_config(backtest=_strategies(TWO_BUCKETS)))
    assert set(R.read_daily(data_root, "backtest_daily")["strategy"]) == {"two_buckets"}  # the file's are not run

    with pytest.raises(Exception, match=r"no stored backtest_daily rows of the configured strategies"):
        R.run_summary(ephemeral, resources, selection=["backtest_summary"])  # the file's strategies: none stored
    cheaper = {**TWO_BUCKETS, "fee_bps": 0.5}
    R.run_daily(ephemeral, resources, DAYS[2:], selection=["backtest_daily", "backtest_hourly"],
                run_config=_config(backtest=_strategies(cheaper)))
    result = R.run_summary(ephemeral, resources, selection=["backtest_summary"],
                           run_config=_config(backtest_summary=_strategies(cheaper)))
    metadata = partition_metadata(result, "backtest_summary")[None]
    assert metadata["days"] == 1 and metadata["stale_days"] == {"two_buckets": 2}  # days 1-2: the old fee
    result = R.run_summary(ephemeral, resources, selection=["backtest_summary"],
                           run_config=_config(backtest_summary=_strategies(TWO_BUCKETS)))
    assert partition_metadata(result, "backtest_summary")[None]["stale_days"] == {"two_buckets": 1}


@pytest.mark.parametrize(("strategy", "message"), [
    ({"name": "slow", "factors": {"mom_24": 1.0}, "rebalance_every_hours": 24, "holding_hours": 72},
     r"strategy 'slow': field 'holding_hours' = 72: .*up to 47 hours"),
    ({"name": "typo", "factors": {"mom_42": 1.0}},
     r"run config 'strategies': strategy #1 \('typo'\): .*field 'factors' names unknown factor\(s\) \['mom_42'\]"),
    ({"name": "neg", "factors": {"vol_24": -1.0}}, r"strategy 'neg': field 'factors' = \{'vol_24': -1.0\}"),
])
def test_a_bad_strategy_fails_the_run_naming_the_strategy_and_field_and_stores_nothing(
        ephemeral, pipeline_resources, data_root, strategy, message):
    resources = pipeline_resources(market_data=R.market_data(0.1))
    R.store_factor_inputs(data_root, SYMBOLS[:3], DAYS[:1], signal_ic=0.1)
    with pytest.raises(Exception, match=message):
        R.run_daily(ephemeral, resources, DAYS[:1], selection=PANEL_AND_BACKTEST,
                    run_config=_config(backtest=_strategies(strategy)))
    assert not (data_root / "backtest_daily").exists()


def test_a_missing_strategies_file_names_the_file(ephemeral, pipeline_resources, data_root, tmp_path):
    resources = pipeline_resources(market_data=R.market_data(0.1), strategies_file=tmp_path / "nowhere.yaml")
    R.store_factor_inputs(data_root, SYMBOLS[:3], DAYS[:1], signal_ic=0.1)
    with pytest.raises(Exception, match=r"nowhere.yaml: strategies file not found"):
        R.run_daily(ephemeral, resources, DAYS[:1], selection=PANEL_AND_BACKTEST)


# --------------------------------------------------------------------------- optional inputs


def test_sentiment_joins_the_panel_where_it_exists_and_its_strategies_run_only_there(
        ephemeral, pipeline_resources, data_root):
    resources = pipeline_resources(market_data=R.market_data(0.0))
    R.store_factor_inputs(data_root, SYMBOLS, DAYS[:2])
    rng = np.random.default_rng(3)
    store = PartitionStore(data_root)
    ts = pd.date_range(DAYS[1], periods=24, freq="h", tz="UTC").as_unit("ns")
    written = {}
    for symbol in SYMBOLS:  # the sentiment layer's rows for day 2 only; one hour without news
        score = rng.uniform(-1, 1, 24)
        score[5] = np.nan
        written[symbol] = score
        frame = pd.DataFrame({"ts": ts, "close_time": ts + HOUR, "sentiment_score": score,
                              "sentiment_items": np.where(np.isnan(score), 0, 2)})
        store.publish([store.stage("sentiment_hourly", {"date": DAYS[1], "symbol": symbol},
                                   pa.Table.from_pandas(frame, preserve_index=False))])
    R.run_daily(ephemeral, resources, DAYS[:2], selection=PANEL_AND_BACKTEST, sentiment=R.test_sentiment_hourly)

    day1, day2 = (R.read_daily(data_root, "factor_panel", [d]) for d in DAYS[:2])
    assert "sentiment_score" not in day1.columns
    for symbol, score in written.items():
        rows = day2[day2["symbol"] == symbol].sort_values("ts")
        np.testing.assert_array_equal(rows["sentiment_score"].to_numpy(), score)
    assert day2.loc[day2["ts"] == ts[5], "rank_sentiment_score"].isna().all()
    stored = R.read_daily(data_root, "backtest_daily")
    ran = stored.groupby("date")["strategy"].apply(set).to_dict()
    # Day 1 (every factor still warming up, no sentiment): nothing can run, and the day is stored empty, typed.
    first = pq.read_table(data_root / "backtest_daily" / f"date={DAYS[0]}" / "part-0.parquet")
    assert first.num_rows == 0 and first.schema.field("net_return").type == pa.float64()
    assert "sentiment" not in ran.get(DAYS[0], set()) and {"sentiment", "composite"} <= ran[DAYS[1]]


def test_the_planted_signal_exists_only_with_the_synthetic_source(ephemeral, pipeline_resources, tmp_path):
    binance = {key.path[-1] for assets in research_assets("binance") for key in assets.keys}
    assert "planted_signal" not in binance and "factor_panel" in binance
    panel = next(a for a in research_assets("binance") if "factor_panel" in {k.path[-1] for k in a.keys})
    assert "planted_signal" not in {k.path[-1] for k in panel.dependency_keys}
    resources = pipeline_resources(market_data=LandingMarketData(landing_dir=str(tmp_path)))
    with pytest.raises(Exception, match="planted_signal exists only with MARKET_DATA_SOURCE=synthetic"):
        R.run_planted(ephemeral, resources, SYMBOLS[:1], DAYS[:1])


def test_stored_planted_signal_is_the_simulators_and_is_declared_planted(ephemeral, pipeline_resources, data_root):
    import datetime as dt

    from factor_core.simulator import planted_signal as simulated_signal

    resources = pipeline_resources(market_data=R.market_data(0.1))
    result = R.run_planted(ephemeral, resources, SYMBOLS[:2], DAYS[:2])
    for symbol in SYMBOLS[:2]:
        for day in DAYS[:2]:
            stored = pq.read_table(data_root / "planted_signal" / f"symbol={symbol}" / f"date={day}" / "part-0.parquet")
            expected = simulated_signal(symbol, dt.date.fromisoformat(day), R.simulator_config(0.1))
            pd.testing.assert_frame_equal(stored.to_pandas(), expected)
    assert partition_metadata(result, "planted_signal")[f"{DAYS[0]}|{SYMBOLS[0]}"]["planted_ic"] == pytest.approx(0.1)
    from factor_assets import defs
    node = defs.resolve_asset_graph().get(next(k for k in defs.resolve_asset_graph().get_all_asset_keys()
                                               if k.path[-1] == "planted_signal"))
    assert node.tags.get("planted") == "true" and node.description.startswith("PLANTED")
