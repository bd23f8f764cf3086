"""factor_panel: point-in-time membership, normalisations, forward-return labels, planted-signal timing."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from factor_core.research.panel import build_factor_panel, membership_from_universe, planted_signal_rows

HOUR = pd.Timedelta(hours=1)


def _bars(days=2, n=5, seed=1, start="2024-03-01"):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=24 * days, freq="h", tz="UTC")
    syms = [f"A{i}USDT" for i in range(n)]
    close = 50 * np.exp(np.cumsum(rng.standard_normal((len(ts), n)) * 0.01, axis=0))
    bars = pd.DataFrame({"ts": np.repeat(ts, n), "symbol": np.tile(syms, len(ts)), "close": close.ravel()})
    bars["mom_24"] = rng.standard_normal(len(bars))
    bars["vol_24"] = rng.random(len(bars))
    bars.loc[5, "vol_24"] = np.inf  # a division by zero upstream is no value
    return bars


def test_ranks_and_zscores_are_per_hour_against_scipy():
    bars = _bars()
    panel = build_factor_panel(bars)
    for _, hour in panel.groupby("ts"):
        for factor in ("mom_24", "vol_24"):
            values = hour[factor]
            ok = values.notna().to_numpy()
            ranks = (stats.rankdata(values[ok]) - 1) / (ok.sum() - 1)
            np.testing.assert_allclose(hour[f"rank_{factor}"].to_numpy()[ok], ranks, atol=1e-15)
            z = np.clip(stats.zscore(values[ok], ddof=0), -3, 3)
            np.testing.assert_allclose(hour[f"z_{factor}"].to_numpy()[ok], z, atol=1e-12)
            assert hour[f"rank_{factor}"][~ok].isna().all()
    assert np.isnan(panel.loc[(panel["ts"] == bars.loc[5, "ts"]) & (panel["symbol"] == bars.loc[5, "symbol"]),
                              "vol_24"]).all()


def test_forward_returns_are_simple_returns_from_the_stamped_close_and_fill_in_with_the_next_day():
    bars = _bars(days=3)
    day1 = bars[bars["ts"] < "2024-03-02"]
    day2 = bars[(bars["ts"] >= "2024-03-02") & (bars["ts"] < "2024-03-03")]
    alone = build_factor_panel(day1, day="2024-03-01")
    filled = build_factor_panel(day1, day="2024-03-01", next_day_bars=day2)
    wide = bars.pivot(index="ts", columns="symbol", values="close")
    for h in (1, 4, 24):
        expected = (wide.shift(-h) / wide - 1).stack().rename("e").reset_index()
        merged = filled.merge(expected, on=["ts", "symbol"])
        np.testing.assert_allclose(merged[f"fwd_ret_{h}h"], merged["e"], rtol=1e-14)
        # Without the next day the last h hours have no label; the rest is identical.
        last = alone["ts"] > pd.Timestamp("2024-03-01 23:00", tz="UTC") - h * HOUR
        assert alone.loc[last, f"fwd_ret_{h}h"].isna().all()
        np.testing.assert_array_equal(alone.loc[~last, f"fwd_ret_{h}h"], filled.loc[~last, f"fwd_ret_{h}h"])
    assert filled["fwd_ret_24h"].notna().all()


def test_a_symbol_delisted_mid_period_keeps_its_history_and_drops_out_after():
    bars = _bars(days=2)
    # A0 was listed before observation began (null listed_on: a member from the start); A1 is delisted
    # on 2024-03-01 (it traded that day, as factor_core.universe.is_listed says); A3 is unknown to the table.
    universe = pd.DataFrame({"symbol": ["A0USDT", "A1USDT", "A2USDT", "A4USDT"],
                             "listed_on": [None, "2024-01-01", "2024-01-01", "2024-03-02"],
                             "delisted_on": [None, "2024-03-01", None, None]})
    membership = membership_from_universe(universe, symbols=bars["symbol"].unique())
    # Delisting inside a day: A2 stops at 12:00 on 2024-03-01.
    membership.loc[membership["symbol"] == "A2USDT", "listed_until"] = pd.Timestamp("2024-03-01 12:00", tz="UTC")
    panel = build_factor_panel(bars, membership=membership)
    a2 = panel[panel["symbol"] == "A2USDT"]
    assert a2["ts"].max() == pd.Timestamp("2024-03-01 11:00", tz="UTC") and len(a2) == 12
    assert panel.loc[panel["symbol"] == "A1USDT", "date"].unique().tolist() == ["2024-03-01"]
    assert panel.loc[panel["symbol"] == "A4USDT", "date"].unique().tolist() == ["2024-03-02"]
    for always in ("A0USDT", "A3USDT"):
        assert panel.loc[panel["symbol"] == always, "date"].unique().tolist() == ["2024-03-01", "2024-03-02"]
    # No label reaches past a delisting, and the cross-section shrinks accordingly.
    assert a2.loc[a2["ts"] == pd.Timestamp("2024-03-01 11:00", tz="UTC"), "fwd_ret_1h"].isna().all()
    assert a2.loc[a2["ts"] == pd.Timestamp("2024-03-01 10:00", tz="UTC"), "fwd_ret_1h"].notna().all()
    per_hour = panel.groupby("ts")["symbol"].nunique()
    assert per_hour.iloc[0] == 4 and per_hour.iloc[12] == 3 and per_hour.iloc[24] == 3
    assert panel.groupby("ts")["rank_mom_24"].max().eq(1.0).all()


def test_planted_signal_published_at_t_sits_on_the_row_whose_close_time_is_t():
    bars = _bars(days=1, n=2)
    known_at = pd.date_range("2024-03-01 01:00", periods=24, freq="h", tz="UTC")
    signals = {s: pd.DataFrame({"known_at": known_at, "signal": np.arange(24.0) + i})
               for i, s in enumerate(["A0USDT", "A1USDT"])}
    panel = build_factor_panel(bars, extras=[planted_signal_rows(signals)])
    row = panel[(panel["symbol"] == "A1USDT") & (panel["close_time"] == known_at[5])]
    assert row["planted_signal"].tolist() == [6.0]  # signal 5 + offset 1, on ts = known_at - 1h
    assert row["ts"].iloc[0] == known_at[5] - HOUR


def test_bad_input_names_the_symbol_and_hour():
    bars = _bars(days=1, n=2)
    with pytest.raises(ValueError, match="A0USDT.*2024-03-01 00:00"):
        build_factor_panel(pd.concat([bars, bars.iloc[[0]]]))
    with pytest.raises(ValueError, match="missing column.*close"):
        build_factor_panel(bars.drop(columns="close"))


def test_panel_membership_is_the_universe_rule_of_factor_core_universe_for_every_symbol_and_day():
    from factor_core.research.panel import member_mask
    from factor_core.universe import is_listed, listings_of

    universe = pd.DataFrame({"symbol": ["A0USDT", "A1USDT", "A2USDT", "A3USDT"],
                             "listed_on": [None, "2024-03-02", "2024-03-01", "2024-02-01"],
                             "delisted_on": [None, None, "2024-03-02", "2024-02-15"]})
    symbols = ["A0USDT", "A1USDT", "A2USDT", "A3USDT", "A9USDT"]  # A9USDT: not in the table
    membership = membership_from_universe(universe, symbols=symbols)
    listings = listings_of(universe)
    for day in pd.date_range("2024-02-28", "2024-03-05", freq="D", tz="UTC"):
        for hour in (0, 13, 23):
            stamp = day + hour * HOUR
            got = member_mask(pd.Series(symbols), pd.Series([stamp] * len(symbols)), membership)
            expected = [is_listed(listings, s, day.strftime("%Y-%m-%d")) for s in symbols]
            assert got.tolist() == expected, stamp
