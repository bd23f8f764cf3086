"""factor_ic and factor_report: scipy per hour, alphalens statistics, Newey-West, day-by-day equality."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from alphalens import performance as al_perf
from alphalens import plotting as al_plot
from scipy import stats

from factor_core.research.ic import compute_factor_ic, factor_report, newey_west_t
from factor_core.research.panel import build_factor_panel
from tests.test_factor_core.research_data import simulated_panel


@pytest.fixture(scope="module")
def planted():
    panel, _ = simulated_panel(12, "2024-02-01", 3, signal_ic=0.2, factors=False)
    return panel


def _random_panel(hours=30, n=9, seed=0, start="2024-01-01"):
    """A panel with ties, NaNs and a symbol missing some hours."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    syms = [f"X{i}USDT" for i in range(n)]
    bars = pd.DataFrame({"ts": np.repeat(ts, n), "symbol": np.tile(syms, hours),
                         "close": 100 * np.exp(rng.standard_normal(hours * n).cumsum() * 0.001)})
    bars["mom_24"] = np.round(rng.standard_normal(len(bars)), 1)  # ties
    bars["vol_24"] = rng.random(len(bars))
    bars.loc[rng.random(len(bars)) < 0.1, "vol_24"] = np.nan
    bars = bars[~((bars["symbol"] == "X0USDT") & (bars.index % 3 == 0))]
    return build_factor_panel(bars)


def test_ic_equals_scipy_pearson_and_spearman_per_hour():
    panel = _random_panel()
    ic = compute_factor_ic(panel)
    checked = 0
    for row in ic.itertuples(index=False):
        hour = panel[panel["ts"] == row.ts]
        pair = hour[[row.factor, f"fwd_ret_{row.horizon_h}h"]].dropna()
        assert row.n_symbols == len(pair)
        if len(pair) < 3:
            assert np.isnan(row.rank_ic) and np.isnan(row.ic)
            continue
        rho = stats.spearmanr(pair.iloc[:, 0], pair.iloc[:, 1]).statistic
        r = stats.pearsonr(pair.iloc[:, 0], pair.iloc[:, 1]).statistic
        assert row.rank_ic == pytest.approx(rho, abs=1e-12)
        assert row.ic == pytest.approx(r, abs=1e-12)
        checked += 1
    assert checked > 100


def _alphalens_factor_data(panel, factor, horizon):
    data = panel[["ts", "symbol", factor, f"fwd_ret_{horizon}h"]].dropna(subset=[factor])
    data = data.rename(columns={"ts": "date", "symbol": "asset", factor: "factor",
                                f"fwd_ret_{horizon}h": f"{horizon}h"})
    data["date"] = data["date"].dt.tz_localize(None)
    index = pd.MultiIndex.from_frame(data[["date", "asset"]])
    frame = data[[f"{horizon}h", "factor"]].set_index(index)
    frame.index = frame.index.set_levels(pd.DatetimeIndex(frame.index.levels[0], freq="h"), level=0)
    return frame


def test_ic_statistics_equal_alphalens(planted):
    factor, horizon = "planted_signal", 4
    ic = compute_factor_ic(planted)
    ours = ic[(ic["factor"] == factor) & (ic["horizon_h"] == horizon)].set_index("ts")
    data = _alphalens_factor_data(planted.dropna(subset=["fwd_ret_4h"]), factor, horizon)
    al_ic = al_perf.factor_information_coefficient(data)[f"{horizon}h"].dropna()
    mine = ours["rank_ic"].dropna()
    np.testing.assert_allclose(mine.to_numpy(), al_ic.to_numpy(), rtol=0, atol=1e-12)
    table = al_plot.plot_information_table(al_perf.factor_information_coefficient(data), return_df=True)
    report = factor_report(ic).set_index(["factor", "horizon_h"]).loc[(factor, horizon)]
    assert report["mean_rank_ic"] == pytest.approx(table.loc[f"{horizon}h", "IC Mean"], abs=1e-12)
    assert report["rank_ic_std"] == pytest.approx(table.loc[f"{horizon}h", "IC Std."], abs=1e-12)
    assert report["rank_ic_ir"] == pytest.approx(table.loc[f"{horizon}h", "Risk-Adjusted IC"], abs=1e-12)
    assert report["rank_ic_t"] == pytest.approx(table.loc[f"{horizon}h", "t-stat(IC)"], abs=1e-9)
    # Factor turnover: alphalens' rank autocorrelation at lag h on the hourly grid.
    al_auto = al_perf.factor_rank_autocorrelation(_alphalens_factor_data(planted, factor, horizon), period=horizon)
    mine_auto = ours["rank_autocorr"].reindex(al_auto.index.tz_localize("UTC"))
    np.testing.assert_allclose(mine_auto.to_numpy(), al_auto.to_numpy(), rtol=0, atol=1e-12)
    assert report["rank_autocorr"] == pytest.approx(al_auto.mean(), abs=1e-12)


def test_newey_west_t_equals_statsmodels_hac():
    rng = np.random.default_rng(5)
    x = np.convolve(rng.standard_normal(400), np.ones(4), mode="valid") * 0.1 + 0.02  # MA(3)
    for lags in (0, 1, 3, 23):
        fit = sm.OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
        assert newey_west_t(x, lags) == pytest.approx(fit.tvalues[0], rel=1e-10)


def test_planted_signal_ic_is_found_and_decays_across_horizons(planted):
    report = factor_report(compute_factor_ic(planted)).set_index(["factor", "horizon_h"])
    one_hour = report.loc[("planted_signal", 1)]
    assert one_hour["mean_rank_ic"] > 0.1 and one_hour["rank_ic_t_nw"] > 3
    assert one_hour["rank_ic_hit_rate"] > 0.5
    # The signal drives one hour only: longer horizons dilute it (and their overlap is accounted for).
    assert report.loc[("planted_signal", 24), "rank_ic_decay"] < 0.5
    assert abs(report.loc[("planted_signal", 1), "rank_autocorr"]) < 0.2  # a fresh signal every hour


def test_day_by_day_ic_equals_one_pass(planted):
    one_pass = compute_factor_ic(planted)
    days = sorted(planted["date"].unique())
    parts = [compute_factor_ic(planted[planted["date"] == d],
                               previous_panel=planted[planted["date"] == p] if p else None)
             for p, d in zip([None, *days[:-1]], days, strict=True)]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True).sort_values(["factor", "horizon_h", "ts"])
                                  .reset_index(drop=True),
                                  one_pass.sort_values(["factor", "horizon_h", "ts"]).reset_index(drop=True))
