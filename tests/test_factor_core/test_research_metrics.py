"""backtest_summary metrics against empyrical on the daily series; conventions and short-sample flag."""

import empyrical
import numpy as np
import pandas as pd
import pytest

from factor_core.research.metrics import SHORT_SAMPLE_DAYS, summarize_backtests


def _daily(returns, name="s", start="2024-01-01"):
    n = len(returns)
    dates = pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame({"strategy": name, "date": dates, "net_return": returns, "hours_invested": 24,
                         "turnover": np.linspace(1, 2, n), "fee_cost": 1e-4, "spread_cost": 2e-4,
                         "funding": -1e-5, "mean_ic": np.nan})


def test_summary_equals_empyrical_on_daily_net_returns():
    rng = np.random.default_rng(0)
    r = rng.normal(0.001, 0.02, 90)
    hourly = pd.DataFrame({"strategy": "s", "ic": rng.normal(0.05, 0.1, 90 * 24)})
    row = summarize_backtests(_daily(r), hourly).iloc[0]
    kw = {"period": "daily", "annualization": 365}
    assert row["total_return"] == pytest.approx(empyrical.cum_returns_final(r), rel=1e-12)
    assert row["cagr"] == pytest.approx(empyrical.annual_return(r, **kw), rel=1e-9)
    assert row["annual_volatility"] == pytest.approx(empyrical.annual_volatility(r, **kw), rel=1e-9)
    assert row["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, **kw), rel=1e-9)
    assert row["sortino"] == pytest.approx(empyrical.sortino_ratio(r, **kw), rel=1e-9)
    assert row["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)
    assert row["calmar"] == pytest.approx(empyrical.calmar_ratio(r, **kw), rel=1e-9)
    # The stated formula, independently: mean / std(ddof=1) * sqrt(365).
    assert row["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(365), rel=1e-12)
    assert row["mean_ic"] == pytest.approx(hourly["ic"].mean())
    assert row["ic_ir"] == pytest.approx(hourly["ic"].mean() / hourly["ic"].std(ddof=1))
    assert row["win_rate"] == pytest.approx((r > 0).mean())
    assert row["total_fee_cost"] == pytest.approx(90e-4) and row["total_funding"] == pytest.approx(-90e-5)
    assert row["start"] == pd.Timestamp("2024-01-01", tz="UTC") and row["end"] == pd.Timestamp("2024-03-30", tz="UTC")
    assert row["days"] == 90 and not row["short_sample"]


def test_drawdown_starts_from_one_and_short_samples_are_flagged():
    row = summarize_backtests(_daily([-0.10, 0.05, -0.02])).iloc[0]
    # The first day's loss counts from 1 (anchored at the peak 1, not at the first close of 0.9, which gives -2 %).
    assert row["max_drawdown"] == pytest.approx(-0.10)
    assert row["total_return"] == pytest.approx(0.9 * 1.05 * 0.98 - 1)
    assert row["days"] == 3 < SHORT_SAMPLE_DAYS and row["short_sample"]


def test_days_without_positions_are_not_losses_in_the_win_rate():
    daily = _daily([0.0, 0.01, -0.01, 0.02])
    daily.loc[0, "hours_invested"] = 0
    row = summarize_backtests(daily).iloc[0]
    assert row["win_rate"] == pytest.approx(2 / 3)
    both = summarize_backtests(pd.concat([daily, _daily([0.01] * 3, name="t")]))
    assert both["strategy"].tolist() == ["s", "t"]
