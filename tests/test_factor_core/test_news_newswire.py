"""Synthetic newswire: deterministic, published before the hour it informs, tone following the
planted signal; the as-of join recovers the planted IC and a look-ahead join shows up above it."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from factor_core.news import AliasTable, NewswireConfig, SyntheticNewswire, build_news_items
from factor_core.news.newswire import wire_items
from factor_core.sentiment import NewswireScorer, hourly_asof_sentiment, score_symbol_day
from factor_core.simulator import SimulatorConfig, planted_signal, simulate_day
from tests.test_factor_core.news_helpers import news

DAY = dt.date(2024, 3, 5)
HOUR = pd.Timedelta(hours=1)


def test_the_wire_is_a_pure_function_of_seed_and_day():
    sim = SimulatorConfig(seed=4, signal_ic=0.1)
    first = SyntheticNewswire(["BTCUSDT", "ETHUSDT"], sim).records(DAY)
    wire_items.cache_clear()
    SyntheticNewswire(["ETHUSDT"], sim).records(DAY + dt.timedelta(days=1))  # other work in between
    again = SyntheticNewswire(["BTCUSDT", "ETHUSDT"], sim).records(DAY)
    assert first == again
    other_seed = SyntheticNewswire(["BTCUSDT", "ETHUSDT"], SimulatorConfig(seed=5, signal_ic=0.1)).records(DAY)
    assert [r["title"] for r in other_seed] != [r["title"] for r in first]
    # a symbol's items do not depend on which other symbols the wire covers
    alone = SyntheticNewswire(["ETHUSDT"], sim).records(DAY)
    assert alone == [r for r in first if r["symbols"] == ["ETHUSDT"]]


def test_outlooks_precede_the_hour_they_inform_and_reports_follow_the_minutes_they_describe():
    sim = SimulatorConfig(seed=2, signal_ic=0.2)
    start = pd.Timestamp(DAY.isoformat(), tz="UTC")
    items = wire_items(sim, NewswireConfig(coverage=1.0), "SOLUSDT", DAY)
    outlooks = [w for w in items if w.kind == "outlook"]
    assert len(outlooks) == 24
    for w in outlooks:
        informs = start + int(w.url.rsplit("/", 1)[1]) * HOUR  # T: the hour boundary it informs
        assert informs - HOUR < w.published_at < informs
    for w in (w for w in items if w.kind == "move"):
        hour_start = start + int(w.url.rsplit("/", 1)[1]) * HOUR
        assert hour_start + pd.Timedelta(minutes=w.minutes) < w.published_at < hour_start + HOUR
    assert all(start <= w.published_at < start + pd.Timedelta(days=1) for w in items)


def test_outlook_tone_is_the_planted_signal_through_tanh_when_noise_is_off():
    sim = SimulatorConfig(seed=9)
    items = wire_items(sim, NewswireConfig(coverage=1.0, tone_noise=0.0, move_reports=False), "BTCUSDT", DAY)
    signal = planted_signal("BTCUSDT", DAY, sim)["signal"].to_numpy()
    assert [w.tone for w in items] == pytest.approx(np.tanh(signal / 2.0).tolist(), abs=1e-15)


def test_outlook_tone_correlates_with_the_signal_as_the_noise_says():
    sim = SimulatorConfig(seed=9)
    config = NewswireConfig(coverage=1.0, tone_noise=1.0, move_reports=False)
    tones, signals = [], []
    for k in range(40):
        day = DAY + dt.timedelta(days=k)
        tones += [w.tone for w in wire_items(sim, config, "ETHUSDT", day)]
        signals += planted_signal("ETHUSDT", day, sim)["signal"].tolist()
    corr = np.corrcoef(np.arctanh(tones), signals)[0, 1]  # undo the squashing: corr = 1/sqrt(1+noise^2)
    assert corr == pytest.approx(1 / math.sqrt(2), abs=0.05)


def test_the_newswire_scorer_returns_the_wires_tone_and_rejects_other_items():
    sim = SimulatorConfig(seed=3, signal_ic=0.1)
    wire = SyntheticNewswire(["BTCUSDT"], sim)
    frame = build_news_items(DAY, AliasTable.for_symbols(["BTCUSDT"]), newswire=wire).frame
    scored = score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=NewswireScorer(wire)).frame
    tones = {w.url: w.tone for w in wire_items(sim, wire.config, "BTCUSDT", DAY)}
    assert scored["score"].tolist() == [tones[u] for u in frame["url"]]
    assert set(scored["model"]) == {"synthetic:newswire"}
    foreign = news(("BTC from elsewhere", "https://x.test/1", ["BTCUSDT"]), day=DAY)
    out = score_symbol_day(foreign, day=DAY, symbol="BTCUSDT", scorer=NewswireScorer(wire)).frame
    assert out["status"].tolist() == ["rejected"] and "synthetic newswire" in out["rejected_reason"].iloc[0]


def _cross_sectional_ic(panel: pd.DataFrame, factor: str, target: str) -> float:
    """Mean over timestamps of the Spearman correlation across symbols (alphalens' IC)."""
    values = []
    for _, group in panel.groupby("close_time"):
        group = group[[factor, target]].dropna()
        if len(group) >= 5:
            values.append(group[factor].rank().corr(group[target].rank()))
    return float(np.mean(values))


def test_asof_sentiment_recovers_the_planted_ic_and_a_look_ahead_shows_above_it():
    planted_ic = 0.2
    sim = SimulatorConfig(seed=21, signal_ic=planted_ic, trades_per_minute=1.0)
    symbols = [f"Q{i:02d}USDT" for i in range(16)]
    days = [DAY + dt.timedelta(days=k) for k in range(4)]
    wire = SyntheticNewswire(symbols, sim)
    aliases = AliasTable.for_symbols(symbols)
    scorer = NewswireScorer(wire)
    news_by_day = {d: build_news_items(d, aliases, newswire=wire).frame for d in days}
    rows = []
    for symbol in symbols:
        scored = pd.concat([score_symbol_day(news_by_day[d], day=d, symbol=symbol, scorer=scorer).frame for d in days])
        for day in days[1:]:
            hourly = hourly_asof_sentiment(scored, day, half_life_minutes=60)
            klines = simulate_day(symbol, day, sim).klines
            opens = klines["open"].to_numpy().reshape(24, 60)[:, 0]
            closes = klines["close"].to_numpy().reshape(24, 60)[:, -1]
            hourly["bar_log_return"] = np.log(closes / opens)  # return over [ts, close_time)
            signal = planted_signal(symbol, day, sim).set_index("known_at")["signal"]
            hourly["signal_at_close"] = hourly["close_time"].map(signal)
            rows.append(hourly.assign(symbol=symbol))
    panel = pd.concat(rows).sort_values(["symbol", "ts"]).reset_index(drop=True)
    # The value known at close_time t trades the NEXT bar [t, t + 1h): the honest pairing.
    panel["next_bar_log_return"] = panel.groupby("symbol")["bar_log_return"].shift(-1)
    honest_ic = _cross_sectional_ic(panel, "sentiment", "next_bar_log_return")
    # Look-ahead: the same value paired with the bar it was built during (items up to its end).
    look_ahead_ic = _cross_sectional_ic(panel, "sentiment", "bar_log_return")
    # How much of the planted signal the sentiment carries bounds what it can earn.
    carried = _cross_sectional_ic(panel, "sentiment", "signal_at_close")
    # (measured: carried ~0.35, honest ~0.09, look-ahead ~0.35; 16 symbols x 3 days, IC se ~0.03)
    assert 0.2 < carried < 0.9
    assert honest_ic == pytest.approx(planted_ic * carried, abs=0.06)
    assert 0.02 < honest_ic < planted_ic
    # A leak shows as an IC above what was planted (well beyond the ~0.03 standard error), far above the honest one.
    assert look_ahead_ic > planted_ic + 0.05
    assert look_ahead_ic > 2 * honest_ic
