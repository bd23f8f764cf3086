import numpy as np
import pandas as pd
import pytest

from factor_core.backtest import BacktestConfig, run_backtest, summarize
from factor_core.panel import build_panel, cross_sectional_zscore

SYMBOLS = [f"S{i:02d}USDT" for i in range(20)]


def _panel(scores: np.ndarray, returns: np.ndarray, start="2024-01-01") -> pd.DataFrame:
    """Long panel from [T x N] score and bar-return matrices."""
    ts = pd.date_range(start, periods=scores.shape[0], freq="h", tz="UTC")
    rows = pd.DataFrame(
        {
            "ts": np.repeat(ts, scores.shape[1]),
            "symbol": np.tile(SYMBOLS[: scores.shape[1]], scores.shape[0]),
            "score": scores.ravel(),
            "bar_return": returns.ravel(),
        }
    )
    return rows


def _planted(ic: float, periods: int, n: int, seed: int):
    """Scores known at bar t-1 that predict the return of bar t with correlation ``ic``."""
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((periods, n))
    noise = rng.standard_normal((periods, n))
    returns = np.zeros((periods, n))
    returns[1:] = 0.01 * (ic * scores[:-1] + np.sqrt(1 - ic**2) * noise[1:])
    return scores, returns


def test_backtest_finds_a_planted_signal_and_its_spread_is_monotone():
    scores, returns = _planted(0.1, periods=3000, n=20, seed=1)
    result = run_backtest(_panel(scores, returns), BacktestConfig(n_quantiles=5, cost_bps=0))
    # Mean rank IC over 3000 cross-sections of 20: standard error ~ 0.23/sqrt(3000) ~ 0.004.
    assert result["ic"].mean() == pytest.approx(0.1 * 0.98, abs=0.02)
    quantile_means = [result[f"q{k}_return"].mean() for k in range(1, 6)]
    assert quantile_means == sorted(quantile_means)
    assert result["long_short_gross"].mean() > 0


def test_backtest_finds_nothing_where_nothing_is_planted():
    scores, returns = _planted(0.0, periods=3000, n=20, seed=2)
    result = run_backtest(_panel(scores, returns), BacktestConfig(cost_bps=0))
    assert abs(result["ic"].mean()) < 0.02  # ~5 standard errors
    stats = dict(summarize(result).itertuples(index=False))
    assert abs(stats["ic_t_stat"]) < 4


def test_positions_use_the_previous_bar_score_only():
    # The score at bar t equals bar t's own return: a look-ahead leak would earn it.
    rng = np.random.default_rng(3)
    returns = rng.standard_normal((500, 10)) * 0.01
    result = run_backtest(_panel(returns.copy(), returns), BacktestConfig(cost_bps=0))
    assert abs(result["ic"].mean()) < 0.05
    # Shifting the score one bar earlier makes it a perfect predictor, so the wiring is right.
    leaked = np.vstack([returns[1:], np.zeros((1, 10))])
    perfect = run_backtest(_panel(leaked, returns), BacktestConfig(cost_bps=0))
    assert perfect["ic"].iloc[1:-1].min() == pytest.approx(1.0)


def test_costs_are_turnover_times_cost_bps():
    scores = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    returns = np.full((4, 4), 0.001)
    result = run_backtest(_panel(scores, returns), BacktestConfig(n_quantiles=2, cost_bps=10))
    # Bar 0: no score yet. Bar 1: enter long S02,S03 / short S00,S01 (turnover 2).
    # Bar 2: flip every position (turnover 4). Bar 3: unchanged (0).
    assert result["turnover"].tolist() == [0.0, 2.0, 4.0, 0.0]
    assert result["cost"].tolist() == pytest.approx([0.0, 0.002, 0.004, 0.0])
    assert result["long_short_net"].tolist() == pytest.approx((result["long_short_gross"] - result["cost"]).tolist())


def test_a_missing_bar_puts_no_stale_score_on_the_next_one():
    scores, returns = _planted(0.0, periods=6, n=4, seed=4)
    panel = _panel(scores, returns)
    panel = panel[panel["ts"] != panel["ts"].unique()[2]]  # bar 2 missing for everyone
    result = run_backtest(panel, BacktestConfig(n_quantiles=2, cost_bps=0))
    assert len(result) == 6  # put back on the hourly grid
    assert result.loc[3, "n_symbols"] == 0  # bar 3 has no previous-bar score
    assert result.loc[3, "long_short_gross"] == 0.0


def test_summary_metrics_match_hand_computation():
    daily = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC"),
            "long_short_net": [0.01, -0.02, 0.03, 0.0],
            "turnover": [2.0, 0.0, 2.0, 0.0],
            "cost": [0.001, 0.0, 0.001, 0.0],
            "ic": [0.1, np.nan, 0.3, 0.2],
            "n_symbols": [5, 5, 5, 0],
            "q1_return": [0.0, 0.0, 0.0, 0.0],
        }
    )
    stats = dict(summarize(daily, periods_per_year=100).itertuples(index=False))
    assert stats["total_return"] == pytest.approx(1.01 * 0.98 * 1.03 - 1)
    assert stats["max_drawdown"] == pytest.approx(-0.02)
    assert stats["mean_ic"] == pytest.approx(0.2)
    assert stats["periods_traded"] == 3
    assert stats["hit_rate"] == pytest.approx(2 / 3)  # the bar without positions is not a loss
    assert stats["total_cost"] == pytest.approx(0.002)
    net = np.array([0.01, -0.02, 0.03, 0.0])
    assert stats["sharpe"] == pytest.approx(net.mean() / net.std(ddof=1) * 10)


def test_zscore_is_per_timestamp_and_needs_two_symbols():
    values = pd.Series([1.0, 3.0, 10.0, np.inf, 5.0])
    groups = pd.Series(["a", "a", "b", "b", "c"])
    z = cross_sectional_zscore(values, groups, clip=3.0)
    assert z.tolist()[:2] == [-1.0, 1.0]
    assert np.isnan(z.iloc[2]) and np.isnan(z.iloc[3]) and np.isnan(z.iloc[4])


def test_panel_score_is_the_weighted_mean_of_available_zscores():
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    bars = pd.DataFrame(
        {
            "ts": [ts] * 3,
            "close_time": [ts + pd.Timedelta(hours=1)] * 3,
            "date": ["2024-01-01"] * 3,
            "symbol": ["AAUSDT", "BBUSDT", "CCUSDT"],
            "close": [1.0, 2.0, 3.0],
            "log_ret_1": [0.0, np.log(1.1), np.nan],
            "f1": [1.0, 2.0, 3.0],
            "f2": [3.0, 2.0, 1.0],
        }
    )
    panel = build_panel(bars, ["f1", "f2"], {"f1": 1.0, "f2": 1.0})
    assert panel["score"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert panel["bar_return"].iloc[1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown factor"):
        build_panel(bars, ["f1"], {"nope": 1.0})
