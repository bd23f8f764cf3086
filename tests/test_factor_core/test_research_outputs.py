"""factor_correlation against scipy, rebalance_signals, tear-sheet PNGs, the HTML report and the text table."""

import base64
import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from factor_core.research import (
    StrategySpec,
    backtest_days,
    compute_factor_ic,
    correlation_matrix,
    daily_factor_correlation,
    factor_report,
    overall_factor_correlation,
    rebalance_signals,
    summarize_backtests,
)
from factor_core.research.report import format_percent, format_summary_table, render_html_report
from factor_core.research.tearsheet import tear_sheet_images
from tests.test_factor_core.research_data import simulated_panel


@pytest.fixture(scope="module")
def small():
    panel, funding = simulated_panel(8, "2024-01-01", 2, signal_ic=0.1, factors=False)
    rng = np.random.default_rng(0)
    panel["mom_24"] = panel["planted_signal"] + rng.standard_normal(len(panel))
    panel.loc[rng.random(len(panel)) < 0.1, "mom_24"] = np.nan
    panel["rank_mom_24"] = panel.groupby("ts")["mom_24"].rank(pct=False)  # any monotone score works here
    return panel, funding


def test_factor_correlation_is_the_mean_hourly_spearman_and_the_overall_is_exact(small):
    panel, _ = small
    daily = daily_factor_correlation(panel, ["planted_signal", "mom_24"])
    for row in daily.itertuples(index=False):
        hourly = []
        for _, hour in panel[panel["date"] == row.date].groupby("ts"):
            pair = hour[["planted_signal", "mom_24"]].dropna()
            hourly.append(stats.spearmanr(pair.iloc[:, 0], pair.iloc[:, 1]).statistic)
        assert row.rank_corr == pytest.approx(np.mean(hourly), abs=1e-12) and row.n_hours == len(hourly)
    overall = overall_factor_correlation(daily)
    all_hours = [stats.spearmanr(*h[["planted_signal", "mom_24"]].dropna().to_numpy().T).statistic
                 for _, h in panel.groupby("ts")]
    assert overall["rank_corr"].iloc[0] == pytest.approx(np.mean(all_hours), abs=1e-12)
    matrix = correlation_matrix(overall)
    assert matrix.loc["mom_24", "planted_signal"] == matrix.loc["planted_signal", "mom_24"]
    assert matrix.loc["mom_24", "mom_24"] == 1.0


def test_rebalance_signals_list_the_latest_top_and_bottom_quantiles_with_scores(small):
    panel, _ = small
    spec = StrategySpec(name="p", factors={"planted_signal": 1.0}, n_quantiles=4, rebalance_every_hours=7,
                        holding_hours=7)
    signals, skipped = rebalance_signals(panel, [spec, StrategySpec(name="x", factors={"sentiment_score": 1.0})])
    assert list(skipped) == ["x"]
    # Rebalance hours are multiples of 7 hours since the epoch: the last one by the panel's end
    # (close_time 2024-01-03 00:00) is 2024-01-02 20:00, decided on the row stamped 19:00.
    assert (pd.Timestamp("2024-01-02 20:00", tz="UTC").value // 3_600_000_000_000) % 7 == 0
    assert (signals["trade_at"] == pd.Timestamp("2024-01-02 20:00", tz="UTC")).all()
    assert (signals["ts"] == pd.Timestamp("2024-01-02 19:00", tz="UTC")).all()
    hour = panel[panel["ts"] == signals["ts"].iloc[0]].set_index("symbol")["rank_planted_signal"]
    long, short = signals[signals["side"] == "long"], signals[signals["side"] == "short"]
    assert set(long["symbol"]) == set(hour.nlargest(2).index) and set(short["symbol"]) == set(hour.nsmallest(2).index)
    assert long["score"].is_monotonic_decreasing and short["score"].is_monotonic_increasing
    assert long["weight"].sum() == pytest.approx(1.0) and short["weight"].sum() == pytest.approx(-1.0)


def test_tear_sheet_images_are_pngs_and_the_html_report_embeds_them(small):
    panel, funding = small
    spec = StrategySpec(name="planted", factors={"planted_signal": 1.0}, fee_bps=2.0)
    result = backtest_days(panel, [spec], ["2024-01-02"], funding=funding)
    ic = compute_factor_ic(panel)
    report = factor_report(ic)
    corr = correlation_matrix(overall_factor_correlation(daily_factor_correlation(panel)))
    images = tear_sheet_images(result.daily, ic, report, corr)
    assert set(images) == {"cumulative_planted", "drawdown", "turnover", "rolling_ic", "factor_ic", "correlation"}
    for png in images.values():
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.01  # an actual picture
    summary = summarize_backtests(result.daily, result.hourly)
    page = render_html_report(summary, images, report=report, skipped={"x": "strategy 'x' skipped: no sentiment"})
    assert page.count("data:image/png;base64,") == len(images)
    assert base64.b64encode(images["drawdown"]).decode() in page
    assert "planted (planted) *" in page and "strategy &#x27;x&#x27; skipped" in page


def test_summary_table_prints_percentages_ratios_dates_and_flags():
    summary = pd.DataFrame([{
        "strategy": "planted", "total_return": 0.098312, "cagr": 12.9103, "annual_volatility": 0.1942,
        "sharpe": 13.72, "sortino": 49.43, "max_drawdown": -0.013812, "calmar": 933.2, "win_rate": 0.7692,
        "mean_ic": 0.09701, "ic_ir": 0.4271, "mean_turnover": 78.21, "total_fee_cost": 0.2031,
        "total_spread_cost": 0.004391, "total_funding": -0.0000812, "start": pd.Timestamp("2024-01-04", tz="UTC"),
        "end": pd.Timestamp("2024-01-16", tz="UTC"), "days": 13, "short_sample": True, "uses_planted_factor": True,
    }])
    text = format_summary_table(summary)
    header, rule, row = text.splitlines()[:3]
    cells = row.split()
    assert cells[:3] == ["planted", "(planted)", "*"]
    assert cells[3:10] == ["9.83%", "1,291%", "19.4%", "13.7", "49.4", "-1.38%", "933"]
    assert cells[-3:] == ["2024-01-04", "2024-01-16", "13"]
    assert "-0.00812%" in cells and "0.0970" in cells and "fewer than 30 days" in text
    assert [format_percent(x) for x in (0.5, 0.0123456, -0.000123, float("nan"))] == ["50.0%", "1.23%", "-0.0123%", "n/a"]
    assert len({len(line) for line in (header, rule, row)}) == 1  # aligned columns
