"""The research layer through Dagster on a small simulated range: what the assets store is what the pure
functions return, and IC, quantile returns and summary metrics recomputed independently from the STORED
tables (scipy, pandas.qcut, empyrical) agree."""

import datetime as dt
import re

import duckdb
import empyrical
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance
from scipy import stats

from factor_core.research import (
    backtest_days,
    build_factor_panel,
    compute_factor_ic,
    daily_factor_correlation,
    factor_report,
    load_strategies,
    overall_factor_correlation,
    planted_signal_rows,
    strategy_fingerprint,
    summarize_backtests,
)
from factor_core.settings import strategies_file
from tests.conftest import partition_metadata
from tests.test_factor_assets import research_inputs as R
from tests.test_factor_assets.cli_runner import assert_ok, run_cli

SYMBOLS = R.symbols(6)
DAYS = R.days("2024-01-01", 4)
ANNUAL = 1e-6  # annualised figures
EXACT = 1e-9


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """6 symbols x 4 days with a planted signal of IC 0.10: days 1-3 in one range run, then days 3-4
    (what automation requests when day 4 arrives: day 3's labels fill in), then the summaries."""
    from resources.parquet_io_manager import ParquetIOManager, PartitionStoreResource
    from resources.strategies import StrategiesResource
    from resources.warehouse import DuckDBWarehouse, WarehouseIOManager

    from factor_assets.universe import UniverseResource

    root = tmp_path_factory.mktemp("research") / "data"
    root.mkdir()
    store = PartitionStoreResource(root=str(root))
    warehouse = DuckDBWarehouse(data_root=str(root))
    resources = {"partition_store": store, "parquet_io_manager": ParquetIOManager(partitions=store),
                 "warehouse": warehouse, "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
                 "market_data": R.market_data(0.10), "universe_source": UniverseResource(),
                 "strategies": StrategiesResource(strategies_file=strategies_file())}
    R.store_factor_inputs(root, SYMBOLS, DAYS, signal_ic=0.10)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        R.run_planted(instance, resources, SYMBOLS, DAYS)
        first = R.run_daily(instance, resources, DAYS[:3])
        before = R.read_daily(root, "factor_panel", [DAYS[2]])
        R.run_daily(instance, resources, DAYS[2:])
        summary = R.run_summary(instance, resources)
        yield {"root": root, "instance": instance, "first_run": first, "summary_run": summary,
               "panel_day3_before_day4": before}


def _stored_inputs(root, day):
    bars = pd.concat([pq.read_table(root / "factor_bars" / f"symbol={s}" / f"date={day}" / "part-0.parquet")
                      .to_pandas().assign(symbol=s) for s in SYMBOLS], ignore_index=True)
    signals = {s: pq.read_table(root / "planted_signal" / f"symbol={s}" / f"date={day}" / "part-0.parquet").to_pandas()
               for s in SYMBOLS}
    return bars, signals


def _same(stored: pd.DataFrame, expected: pd.DataFrame, **kwargs) -> None:
    """Equal frames; ``date`` lives in the partition path, so a stored file gives it back as the last column."""
    assert set(stored.columns) == set(expected.columns), set(stored.columns) ^ set(expected.columns)
    pd.testing.assert_frame_equal(stored[list(expected.columns)], expected, check_dtype=False, **kwargs)


def _warehouse(root, sql):
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchdf()


# --------------------------------------------------------------------------- the assets store the pure results


def test_stored_panel_is_build_factor_panel_of_the_stored_inputs_with_the_next_days_closes(pipeline):
    root = pipeline["root"]
    for i, day in enumerate(DAYS):
        bars, signals = _stored_inputs(root, day)
        next_bars = _stored_inputs(root, DAYS[i + 1])[0] if i + 1 < len(DAYS) else None
        expected = build_factor_panel(bars, day=day, next_day_bars=next_bars, extras=[planted_signal_rows(signals)])
        stored = R.read_daily(root, "factor_panel", [day])
        _same(stored, expected, check_exact=True)
    assert "planted_signal" in stored.columns and stored["planted_signal"].notna().all()
    assert stored.groupby("ts")["symbol"].nunique().eq(len(SYMBOLS)).all()


def test_labels_of_a_day_fill_in_when_the_next_day_arrives_and_nothing_else_changes(pipeline):
    before, after = pipeline["panel_day3_before_day4"], R.read_daily(pipeline["root"], "factor_panel", [DAYS[2]])
    meta = partition_metadata(pipeline["first_run"], "factor_panel")
    assert meta[DAYS[2]]["next_day_closes"] is False and meta[DAYS[1]]["next_day_closes"] is True
    last = pd.Timestamp(f"{DAYS[2]} 23:00", tz="UTC")
    for h in (1, 4, 24):
        column = f"fwd_ret_{h}h"
        needs_next_day = before["ts"] > last - pd.Timedelta(hours=h)
        assert before.loc[needs_next_day, column].isna().all() and after.loc[needs_next_day, column].notna().all()
        pd.testing.assert_series_equal(before.loc[~needs_next_day, column], after.loc[~needs_next_day, column])
    inputs = [c for c in before.columns if not c.startswith("fwd_ret_")]
    pd.testing.assert_frame_equal(before[inputs], after[inputs])


def test_stored_ic_correlation_and_report_are_the_pure_functions_of_the_stored_panel(pipeline):
    root = pipeline["root"]
    panel = R.read_daily(root, "factor_panel")
    for i, day in enumerate(DAYS):
        previous = panel[panel["date"] == DAYS[i - 1]] if i else None
        expected = compute_factor_ic(panel[panel["date"] == day].reset_index(drop=True), previous_panel=previous)
        _same(R.read_daily(root, "factor_ic", [day]), expected)
        _same(R.read_daily(root, "factor_correlation", [day]), daily_factor_correlation(panel[panel["date"] == day]))
    report = _warehouse(root, "SELECT * FROM factor_report")
    expected = factor_report(R.read_daily(root, "factor_ic"))
    pd.testing.assert_frame_equal(report.drop(columns=["start", "end"]), expected.drop(columns=["start", "end"]),
                                  check_dtype=False, atol=EXACT, rtol=0)
    overall = _warehouse(root, "SELECT * FROM factor_correlation_overall")
    pd.testing.assert_frame_equal(overall, overall_factor_correlation(R.read_daily(root, "factor_correlation")),
                                  check_dtype=False, atol=EXACT, rtol=0)


def test_stored_backtests_are_backtest_days_of_each_days_window(pipeline):
    root = pipeline["root"]
    panel = R.read_daily(root, "factor_panel")
    specs = load_strategies(strategies_file())
    for i, day in enumerate(DAYS):
        window = panel[panel["date"].isin(DAYS[max(0, i - 2): i + 1])]
        funding = pd.concat([pq.read_table(root / "raw_funding" / f"symbol={s}" / f"date={day}" / "part-0.parquet")
                             .to_pandas().assign(symbol=s) for s in SYMBOLS], ignore_index=True)
        today = window[window["date"] == day]
        runnable = [s for s in specs if all(today.get(s.normalized_column(f), pd.Series(dtype=float)).notna().any()
                                            for f in s.factors)]
        expected = backtest_days(window, runnable, [day], funding=funding)
        for asset, rows in (("backtest_daily", expected.daily), ("backtest_hourly", expected.hourly)):
            stored = R.read_daily(root, asset, [day])
            assert set(stored["strategy_fingerprint"]) == {strategy_fingerprint(s) for s in runnable}
            _same(stored.drop(columns="strategy_fingerprint"), rows)
    stored = R.read_daily(root, "backtest_daily")
    assert {"momentum", "low_volatility", "planted_signal"} <= set(stored["strategy"])
    assert not {"composite", "sentiment"} & set(stored["strategy"])  # no sentiment layer: skipped, not run


# --------------------------------------------------------------------------- independent recomputation


def test_ic_recomputed_from_the_stored_panel_with_scipy_agrees(pipeline):
    root = pipeline["root"]
    panel, ic = R.read_daily(root, "factor_panel"), R.read_daily(root, "factor_ic").set_index(["ts", "factor", "horizon_h"])
    checked = 0
    for factor in ("planted_signal", "mom_24", "rsi_14", "liq_quoted_spread_bps"):
        for h in (1, 4, 24):
            for ts, hour in panel.groupby("ts"):
                pairs = hour[[factor, f"fwd_ret_{h}h"]].dropna()
                row = ic.loc[(ts, factor, h)]
                assert row["n_symbols"] == len(pairs)
                if len(pairs) < 3:
                    assert np.isnan(row["rank_ic"])
                    continue
                assert row["rank_ic"] == pytest.approx(stats.spearmanr(pairs[factor], pairs[f"fwd_ret_{h}h"])[0],
                                                       abs=EXACT)
                assert row["ic"] == pytest.approx(stats.pearsonr(pairs[factor], pairs[f"fwd_ret_{h}h"])[0], abs=EXACT)
                checked += 1
    assert checked > 200


def test_quantile_returns_recomputed_from_the_stored_panel_with_pandas_qcut_agree(pipeline):
    """The planted strategy (rank score, 5 quantiles, hourly): bar T holds the qcut quantiles of the row whose
    close_time is T, and earns that row's fwd_ret_1h. The scores are distinct, so no tie rule is needed."""
    root = pipeline["root"]
    panel = R.read_daily(root, "factor_panel")
    hourly = R.read_daily(root, "backtest_hourly").query("strategy == 'planted_signal'").set_index("ts")
    daily = R.read_daily(root, "backtest_daily").query("strategy == 'planted_signal'").set_index("date")
    spec = next(s for s in load_strategies(strategies_file()) if s.name == "planted_signal")
    expected = {}
    for ts, hour in panel.groupby("ts"):
        bar = ts + pd.Timedelta(hours=1)
        if bar not in hourly.index or hour["fwd_ret_1h"].isna().any():
            continue
        q = pd.qcut(hour["rank_planted_signal"], spec.n_quantiles, labels=False) + 1
        means = hour.groupby(q.to_numpy())["fwd_ret_1h"].mean()
        expected[bar] = means
        for k, value in means.items():
            assert hourly.loc[bar, f"q{k}_return"] == pytest.approx(value, abs=EXACT)
        assert hourly.loc[bar, "gross_return"] == pytest.approx(means[5] - means[1], abs=EXACT)
    assert len(expected) >= 24 * len(DAYS) - 2
    fee = hourly["turnover"] * spec.fee_bps / 1e4
    np.testing.assert_allclose(hourly["fee_cost"], fee, atol=EXACT, rtol=0)
    np.testing.assert_allclose(hourly["net_return"],
                               hourly["gross_return"] - hourly["fee_cost"] - hourly["spread_cost"] + hourly["funding"],
                               atol=EXACT, rtol=0)
    for day, bars in hourly.groupby("date"):  # daily rows compound the day's bars
        assert daily.loc[day, "net_return"] == pytest.approx(np.prod(1 + bars["net_return"]) - 1, abs=EXACT)
        assert daily.loc[day, "q5_return"] == pytest.approx(np.prod(1 + bars["q5_return"].fillna(0)) - 1, abs=EXACT)


def test_summary_recomputed_from_the_stored_daily_rows_with_empyrical_agrees(pipeline):
    root = pipeline["root"]
    daily = R.read_daily(root, "backtest_daily")
    summary = _warehouse(root, "SELECT * FROM backtest_summary").set_index("strategy")
    kw = {"period": "daily", "annualization": 365}
    for strategy, rows in daily.sort_values("date").groupby("strategy"):
        r = rows["net_return"].to_numpy()
        row = summary.loc[strategy]
        assert row["total_return"] == pytest.approx(empyrical.cum_returns_final(r), abs=EXACT)
        assert row["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), abs=EXACT)
        assert row["cagr"] == pytest.approx(empyrical.annual_return(r, **kw), rel=ANNUAL)
        assert row["annual_volatility"] == pytest.approx(empyrical.annual_volatility(r, **kw), rel=ANNUAL)
        assert row["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, **kw), rel=ANNUAL)
        assert row["sortino"] == pytest.approx(empyrical.sortino_ratio(r, **kw), rel=ANNUAL)
        assert row["total_fee_cost"] == pytest.approx(rows["fee_cost"].sum(), abs=EXACT)
        assert row["days"] == len(rows) and row["short_sample"]
        assert row["start"] == pd.Timestamp(rows["date"].min(), tz="UTC")
        assert row["end"] == pd.Timestamp(rows["date"].max(), tz="UTC")
    assert bool(summary.loc["planted_signal", "uses_planted_factor"]) and not summary.loc["momentum", "uses_planted_factor"]
    hourly = R.read_daily(root, "backtest_hourly")
    pd.testing.assert_frame_equal(summary.reset_index(), summarize_backtests(daily, hourly), check_dtype=False,
                                  atol=EXACT, rtol=0)


# --------------------------------------------------------------------------- what a researcher sees


def test_tear_sheets_are_attached_as_images_and_written_as_html_pages(pipeline):
    root, result = pipeline["root"], pipeline["summary_run"]
    events = {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
              for e in result.get_asset_materialization_events()}
    backtest = events["backtest_summary"]
    for name in ("cumulative_planted_signal", "cumulative_momentum", "drawdown", "turnover"):
        assert re.fullmatch(r"!\[\w+\]\(data:image/png;base64,[A-Za-z0-9+/=]{2000,}\)", backtest[f"tear_sheet_{name}"].value)
    for name in ("rolling_ic", "factor_ic"):
        assert events["factor_report"][f"tear_sheet_{name}"].value.startswith("![")
    assert events["factor_correlation_overall"]["tear_sheet_correlation"].value.startswith("![")
    assert "planted_signal (planted) *" in backtest["summary"].value  # planted and short sample, marked
    for asset, page in (("backtest_summary", "backtest_summary"), ("factor_report", "factor_report")):
        path = events[asset]["report_html"].value
        assert path == str(root / "reports" / f"{page}.html")
        html = open(path, encoding="utf-8").read()
        assert html.count("data:image/png;base64,") >= 3 and "See also" in html
    assert "(planted)" in open(root / "reports" / "factor_report.html", encoding="utf-8").read()


def test_rebalance_signals_are_the_latest_decision_hour_of_each_strategy(pipeline):
    signals = _warehouse(pipeline["root"], "SELECT * FROM rebalance_signals")
    panel = R.read_daily(pipeline["root"], "factor_panel", [DAYS[-1]])
    last = panel["ts"].max()
    planted = signals[signals["strategy"] == "planted_signal"]
    assert (planted["ts"] == last).all() and (planted["trade_at"] == last + pd.Timedelta(hours=1)).all()
    hour = panel[panel["ts"] == last].set_index("symbol")["rank_planted_signal"]
    quantile = pd.qcut(hour, 5, labels=False) + 1
    for side, k, strongest_first in (("long", 5, False), ("short", 1, True)):
        members = hour[quantile == k].sort_values(ascending=strongest_first)
        rows = planted[planted["side"] == side].sort_values("rank")
        assert rows["symbol"].tolist() == members.index.tolist()
        np.testing.assert_allclose(rows["score"], members.to_numpy(), atol=EXACT)
        np.testing.assert_allclose(rows["weight"].abs(), 1 / len(members), atol=EXACT)
    low_vol = signals[signals["strategy"] == "low_volatility"]
    assert ((low_vol["trade_at"].dt.hour == 0) & (low_vol["trade_at"] == last + pd.Timedelta(hours=1))).all()


def test_report_command_prints_the_summary_table_and_summary_is_its_alias(pipeline, tmp_path):
    env = {"FACTOR_DATA_ROOT": str(pipeline["root"]), "DAGSTER_HOME": str(tmp_path)}
    out = assert_ok(run_cli(["factor-pipeline", "report"], env=env))
    header = next(line for line in out.splitlines() if line.startswith("strategy"))
    assert "Sharpe" in header and "max DD" in header and "start" in header
    planted = next(line for line in out.splitlines() if line.startswith("planted_signal (planted) *"))
    assert re.search(r"-?\d+(\.\d+)?%", planted) and DAYS[0] in planted and DAYS[-1] in planted
    assert "fewer than 30 days" in out and str(pipeline["root"] / "reports" / "backtest_summary.html") in out
    assert assert_ok(run_cli(["factor-pipeline", "summary"], env=env)) == out


def test_lineage_of_the_research_layer(instance):
    from factor_assets import defs
    from partitions import DAILY

    graph = defs.resolve_asset_graph()

    def upstream(child, parent, key):
        mapping = graph.get_partition_mapping(AssetKey(child), AssetKey(parent))
        parent_def = graph.get(AssetKey(parent)).partitions_def
        result = mapping.get_upstream_mapped_partitions_result_for_partitions(
            DAILY.empty_subset().with_partition_keys([key]), DAILY, parent_def, dynamic_partitions_store=instance)
        return sorted(str(k) for k in result.partitions_subset.get_partition_keys())

    instance.add_dynamic_partitions("symbols", ["AAAUSDT", "BBBUSDT"])
    day = "2024-01-05"
    assert upstream("factor_panel", "hourly_closes", day) == ["2024-01-06"]  # the next day's closes, for labels
    assert upstream("factor_panel", "factor_bars", day) == [f"{day}|AAAUSDT", f"{day}|BBBUSDT"]
    assert upstream("factor_panel", "planted_signal", day) == [f"{day}|AAAUSDT", f"{day}|BBBUSDT"]
    assert upstream("factor_panel", "sentiment_hourly", day) == [f"{day}|AAAUSDT", f"{day}|BBBUSDT"]
    assert upstream("factor_ic", "factor_panel", day) == ["2024-01-04", day]
    assert upstream("factor_correlation", "factor_panel", day) == [day]
    assert upstream("backtest_daily", "factor_panel", day) == ["2024-01-03", "2024-01-04", day]
    assert upstream("backtest_daily", "raw_funding", day) == [f"{day}|AAAUSDT", f"{day}|BBBUSDT"]
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    assert upstream("factor_panel", "hourly_closes", yesterday) == []  # today is not a partition yet


def test_daily_research_tables_are_duckdb_views_over_their_parquet_partitions(pipeline):
    root = pipeline["root"]
    for asset in ("hourly_closes", "factor_panel", "factor_ic", "factor_correlation", "backtest_daily",
                  "backtest_hourly", "planted_signal"):
        stored = sum(pq.read_metadata(p).num_rows for p in (root / asset).rglob("part-0.parquet"))
        assert _warehouse(root, f"SELECT count(*) AS n FROM {asset}")["n"].iloc[0] == stored > 0, asset
    days = _warehouse(root, "SELECT DISTINCT CAST(date AS VARCHAR) AS d FROM factor_panel ORDER BY d")["d"].tolist()
    assert days == DAYS
