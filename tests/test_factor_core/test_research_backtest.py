"""Backtests: timing, quantiles as pandas.qcut, costs, funding by side, tranches, day-by-day equality."""

import numpy as np
import pandas as pd
import pytest

from factor_core.research.backtest import backtest_days, required_panel_days_before, run_backtest
from factor_core.research.quantiles import assign_quantiles
from factor_core.research.strategies import StrategySpec

HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-05-01", tz="UTC")


def _panel(score, close, spread=None, start=T0, symbols=None):
    """Long panel from [hours x symbols] matrices of rank_f scores, closes and quoted spreads (bps)."""
    hours, n = score.shape
    symbols = symbols or [f"S{i}USDT" for i in range(n)]
    ts = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    frame = pd.DataFrame({"ts": np.repeat(ts, n), "symbol": np.tile(symbols, hours),
                          "close": close.ravel(), "rank_f": score.ravel()})
    frame["date"] = frame["ts"].dt.strftime("%Y-%m-%d")
    if spread is not None:
        frame["liq_quoted_spread_bps"] = spread.ravel()
    return frame


def _spec(**kw):
    base = dict(name="s", factors={"f": 1.0}, n_quantiles=2, fee_bps=0.0, charge_spread=False, charge_funding=False)
    base.update(kw)
    return StrategySpec(**base)


def _random(hours=72, n=7, seed=0):
    rng = np.random.default_rng(seed)
    score = rng.standard_normal((hours, n))
    score[rng.random(score.shape) < 0.05] = np.nan
    close = 100 * np.exp(np.cumsum(rng.standard_normal((hours, n)) * 0.01, axis=0))
    spread = rng.uniform(1, 10, (hours, n))
    return score, close, spread


def test_positions_come_from_the_score_known_at_the_bar_open():
    _, close, _ = _random()
    bar_return = close[1:] / close[:-1] - 1
    score = np.full(close.shape, np.nan)
    score[:-1] = bar_return  # row t scores the return of the next bar: legitimate once known at its close
    hourly = run_backtest(_panel(score, close), _spec(n_quantiles=3), start=T0 + 24 * HOUR, end=T0 + 71 * HOUR)
    assert hourly["ic"].min() == pytest.approx(1.0)  # bar T pairs the score of row T - 1h with close(T)/close(T-1h)
    assert (hourly["gross_return"] > 0).all()


def test_quantile_returns_use_pandas_qcut_of_the_previous_hour_score():
    score, close, _ = _random()
    spec = _spec(n_quantiles=3)
    hourly = run_backtest(_panel(score, close), spec, start=T0 + 2 * HOUR, end=T0 + 72 * HOUR)
    for row in hourly.itertuples(index=False):
        j = int((row.ts - T0) / HOUR)
        s = pd.Series(score[j - 1])
        labels = pd.qcut(s.dropna(), 3, labels=False) + 1
        r = close[j] / close[j - 1] - 1
        for k in (1, 2, 3):
            members = labels.index[labels == k]
            assert getattr(row, f"q{k}_return") == pytest.approx(r[members].mean(), abs=1e-15)
        assert row.gross_return == pytest.approx(row.q3_return - row.q1_return, abs=1e-15)
        assert np.isnan(row.q4_return)


def test_tie_rule_orders_equal_scores_by_row_order_like_qcut_on_first_ranks():
    score = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 3.0])
    labels = assign_quantiles(score, np.zeros(6), 3)
    expected = pd.qcut(pd.Series(score).rank(method="first"), 3, labels=False) + 1
    np.testing.assert_array_equal(labels, expected.to_numpy())
    # Fewer than two scores: no quantile; two scores with 5 quantiles: bottom and top.
    np.testing.assert_array_equal(assign_quantiles(np.array([np.nan, 1.0]), np.zeros(2), 5), [0, 0])
    np.testing.assert_array_equal(assign_quantiles(np.array([np.nan, 1.0, 2.0]), np.zeros(3), 5), [0, 1, 5])


def test_turnover_fee_and_half_spread_are_charged_on_every_unit_traded():
    score = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [4, 3, 2, 1], [4, 3, 2, 1]], dtype=float)
    close = np.full((4, 4), 10.0)
    spread = np.array([[2, 4, 6, 8], [10, 20, 30, 40], [1, 1, 1, 1], [1, 1, 1, 1]], dtype=float)
    spec = _spec(fee_bps=10.0, charge_spread=True)
    hourly = run_backtest(_panel(score, close, spread), spec, start=T0 + HOUR, end=T0 + 4 * HOUR)
    # 01:00 enters long S2,S3 / short S0,S1 (0.5 each, turnover 2) on row 00:00's spreads;
    # 02:00 flips every position (turnover 4) at row 01:00's spreads; 03:00 trades nothing.
    assert hourly["turnover"].tolist() == [2.0, 4.0, 0.0]
    assert hourly["fee_cost"].tolist() == pytest.approx([2 * 10e-4, 4 * 10e-4, 0.0])
    expected_spread = [0.5 * (2 + 4 + 6 + 8) / 2 / 1e4, 1.0 * (10 + 20 + 30 + 40) / 2 / 1e4, 0.0]
    assert hourly["spread_cost"].tolist() == pytest.approx(expected_spread)
    np.testing.assert_allclose(hourly["net_return"], hourly["gross_return"] - hourly["fee_cost"]
                               - hourly["spread_cost"], atol=1e-18)


@pytest.mark.parametrize("side", ["long_short", "long_only"])
def test_a_position_held_across_a_settlement_pays_rate_times_notional_with_the_sign_by_side(side):
    score = np.tile([1.0, 2.0], (30, 1))  # S1 always top (long), S0 always bottom (short when long-short)
    close = np.full((30, 2), 10.0)
    funding = pd.DataFrame({"symbol": ["S1USDT", "S0USDT", "S1USDT", "S0USDT"],
                            "ts": [T0 + 8 * HOUR, T0 + 8 * HOUR, T0 + 16 * HOUR, T0 + 40 * HOUR],
                            "funding_rate": [3e-4, -2e-4, -1e-4, 5e-4]})
    spec = _spec(side=side, charge_funding=True)
    hourly = run_backtest(_panel(score, close), spec, start=T0 + HOUR, end=T0 + 24 * HOUR, funding=funding)
    paid = hourly.set_index("ts")["funding"]
    short = -1.0 if side == "long_short" else 0.0
    # Long 1 unit of S1 pays a positive rate; the short S0 leg receives a positive rate, pays a negative one.
    assert paid[T0 + 8 * HOUR] == pytest.approx(-(1.0 * 3e-4) - short * (-2e-4), abs=1e-18)
    assert paid[T0 + 16 * HOUR] == pytest.approx(-(1.0 * -1e-4), abs=1e-18)
    assert (paid.drop([T0 + 8 * HOUR, T0 + 16 * HOUR]) == 0).all()  # 40h is outside the period
    off = run_backtest(_panel(score, close), _spec(side=side), start=T0 + HOUR, end=T0 + 24 * HOUR, funding=funding)
    assert (off["funding"] == 0).all()


def test_overlapping_tranches_share_the_capital():
    score, close, _ = _random(hours=48, n=6, seed=3)
    spec = _spec(rebalance_every_hours=2, holding_hours=6)
    hourly = run_backtest(_panel(score, close), spec, start=T0 + 12 * HOUR, end=T0 + 48 * HOUR)
    weights = []
    for row in hourly.itertuples(index=False):
        j = int((row.ts - T0) / HOUR)
        w = np.zeros(6)
        for formed in (j - j % 2 - o for o in (0, 2, 4)):  # the three live tranches
            labels = assign_quantiles(score[formed - 1], np.zeros(6), 2)
            w += ((labels == 2) / max((labels == 2).sum(), 1) - (labels == 1) / max((labels == 1).sum(), 1)) / 3
        r = close[j] / close[j - 1] - 1
        assert row.gross_return == pytest.approx(w @ r, abs=1e-15)
        weights.append(w)
    turnover = np.abs(np.diff(np.array(weights), axis=0)).sum(axis=1)
    np.testing.assert_allclose(hourly["turnover"].to_numpy()[1:], turnover, atol=1e-12)


def test_day_by_day_equals_one_pass_given_the_previous_days_panel():
    score, close, spread = _random(hours=24 * 5, n=8, seed=4)
    panel = _panel(score, close, spread)
    funding = pd.DataFrame({"symbol": "S3USDT", "ts": pd.date_range(T0, periods=15, freq="8h"),
                            "funding_rate": np.linspace(-3e-4, 3e-4, 15)})
    specs = [_spec(name="h1", charge_spread=True, charge_funding=True, fee_bps=4.0),
             _spec(name="tranches", rebalance_every_hours=3, holding_hours=12, n_quantiles=4, charge_funding=True),
             _spec(name="daily", rebalance_every_hours=24, holding_hours=24, side="long_only", fee_bps=1.0)]
    days = sorted(panel["date"].unique())[1:]
    one = backtest_days(panel, specs, days, funding=funding)
    before = required_panel_days_before(specs)
    assert before == 2  # holding 24h + 1h of look-back
    parts = []
    for i, day in enumerate(days, start=1):
        window = panel[panel["date"].isin(sorted(panel["date"].unique())[max(0, i - before): i + 1])]
        parts.append(backtest_days(window, specs, [day], funding=funding[funding["ts"].dt.strftime("%Y-%m-%d") == day]))
    for table in ("hourly", "daily"):
        stitched = pd.concat([getattr(p, table) for p in parts]).sort_values(["strategy", "ts"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(stitched, getattr(one, table).sort_values(["strategy", "ts"])
                                      .reset_index(drop=True), check_exact=True)


def test_daily_rows_compound_returns_and_sum_costs():
    score, close, spread = _random(hours=48, n=6, seed=5)
    result = backtest_days(_panel(score, close, spread), [_spec(fee_bps=3.0, charge_spread=True)], ["2024-05-02"])
    day = result.daily.iloc[0]
    bars = result.hourly
    assert day["net_return"] == pytest.approx(np.prod(1 + bars["net_return"]) - 1, abs=1e-15)
    assert day["gross_return"] == pytest.approx(np.prod(1 + bars["gross_return"]) - 1, abs=1e-15)
    assert day["q2_return"] == pytest.approx(np.prod(1 + bars["q2_return"]) - 1, abs=1e-15)
    assert day["fee_cost"] == pytest.approx(bars["fee_cost"].sum(), abs=1e-18)
    assert day["turnover"] == pytest.approx(bars["turnover"].sum())
    assert day["n_bars"] == 24


def test_a_delisted_symbol_leaves_the_book_and_missing_factors_skip_a_strategy():
    score, close, _ = _random(hours=48, n=4, seed=6)
    panel = _panel(score, close)
    gone = (panel["symbol"] == "S3USDT") & (panel["ts"] >= T0 + 30 * HOUR)
    panel = panel[~gone]
    panel.loc[panel["symbol"] == "S3USDT", "rank_f"] = 10.0  # always top quantile while listed
    spec = _spec()
    result = backtest_days(panel, [spec, StrategySpec(name="needs_sentiment", factors={"sentiment_score": 1.0})],
                           ["2024-05-02"])
    assert list(result.skipped) == ["needs_sentiment"] and "sentiment_score" in result.skipped["needs_sentiment"]
    hourly = result.hourly.set_index("ts")
    # Row 29:00 is its last score, so bar 30:00 still holds it beside another top name (S3 earns 0: no
    # close); from 31:00 on three symbols remain and the top half of three is one name.
    other = [s for s in np.argsort(score[29, :3])[-1:]][0]
    r_other = close[30, other] / close[29, other] - 1
    assert hourly.loc[T0 + 30 * HOUR, "n_long"] == 2
    assert hourly.loc[T0 + 30 * HOUR, "q2_return"] == pytest.approx(r_other / 2, abs=1e-15)
    assert (hourly.loc[T0 + 31 * HOUR:, "n_long"] == 1).all()
    assert hourly["net_return"].notna().all()


def test_backtest_tables_stamp_in_nanoseconds_like_every_stored_table():
    from tests.test_factor_core.research_data import simulated_panel

    panel, funding = simulated_panel(4, "2024-01-01", 2, factors=False)
    spec = StrategySpec(name="p", factors={"planted_signal": 1.0})
    result = backtest_days(panel, [spec], ["2024-01-02"], funding=funding)
    for frame, columns in ((result.hourly, ("ts", "close_time")), (result.daily, ("ts",))):
        for column in columns:
            assert str(frame[column].dtype) == "datetime64[ns, UTC]", column


def test_the_tables_have_the_documented_types_and_stay_typed_when_no_strategy_runs():
    from factor_core.research.backtest import DAILY_DTYPES, HOURLY_DTYPES
    from tests.test_factor_core.research_data import simulated_panel

    panel, funding = simulated_panel(4, "2024-01-01", 2, factors=False)
    ran = backtest_days(panel, [StrategySpec(name="p", factors={"planted_signal": 1.0})], ["2024-01-02"], funding=funding)
    none = backtest_days(panel, [StrategySpec(name="s", factors={"sentiment_score": 1.0})], ["2024-01-02"])
    assert none.skipped and none.hourly.empty and none.daily.empty
    for result in (ran, none):
        for frame, dtypes in ((result.hourly, HOURLY_DTYPES), (result.daily, DAILY_DTYPES)):
            assert list(frame.columns) == list(dtypes)
            assert {c: str(frame[c].dtype) for c in frame.columns if c not in ("strategy", "date")} == \
                {c: str(pd.Series(dtype=t).dtype) for c, t in dtypes.items() if c not in ("strategy", "date")}


def test_scores_a_rounding_error_apart_fall_back_to_the_tie_rule_instead_of_failing():
    from factor_core.research.quantiles import quantiles_of

    # Five distinct values (two are one ulp away from 0.6), but pandas' interpolated bin edges coincide.
    x = np.array([0.6, 0.3, np.nextafter(0.6, 1.0), np.nextafter(0.6, 0.0), 0.75])
    assert np.unique(x).size == x.size
    with pytest.raises(ValueError, match="Bin edges must be unique"):
        pd.qcut(x, 5, labels=False)
    expected = pd.qcut(pd.Series(x).rank(method="first"), 5, labels=False).to_numpy() + 1
    np.testing.assert_array_equal(quantiles_of(x, 5), expected)
