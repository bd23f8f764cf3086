"""Strategies as configuration: the default file, loader errors, skip reasons and the score definition."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factor_core.research.catalog import PLANTED_FACTOR, SENTIMENT_FACTOR
from factor_core.research.strategies import (
    StrategyConfigError,
    StrategySpec,
    load_strategies,
    skip_reason,
    strategy_scores,
)

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "strategies.yaml"


def test_default_file_holds_the_brief_composite_single_factors_and_a_planted_strategy():
    specs = {s.name: s for s in load_strategies(DEFAULT_FILE)}
    composite = specs["composite"]
    assert composite.factors == {"mom_24": 0.35, "vol_24": 0.25, "amihud_24": 0.20, SENTIMENT_FACTOR: 0.20}
    assert set(composite.lower_is_better) == {"vol_24", "amihud_24"}
    assert specs["momentum"].factors == {"mom_24": 1.0}
    assert specs["low_volatility"].lower_is_better == ["vol_24"]
    assert specs["sentiment"].factors == {SENTIMENT_FACTOR: 1.0}
    planted = [s for s in specs.values() if s.uses_planted_factor]
    assert [s.factors for s in planted] == [{PLANTED_FACTOR: 1.0}]
    # Plain types only, so a Dagster Config can mirror every field and round-trip it.
    for spec in specs.values():
        assert StrategySpec.from_mapping(spec.to_dict()) == spec


def _write(tmp_path, text):
    path = tmp_path / "strategies.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  - name: a\n    factors: {mom_24: 1}\n    holding: 3\n", r"#1 \('a'\).*unknown field\(s\) \['holding'\]"),
        ("  - name: a\n    factors: {mom_24: -1}\n", r"'a'.*field 'factors'.*> 0"),
        ("  - name: a\n    factors: {mom_24: 1}\n    rebalance_every_hours: 4\n    holding_hours: 6\n",
         r"'a'.*field 'holding_hours' = 6.*multiple of rebalance_every_hours \(4\)"),
        ("  - name: a\n    factors: {mom_2: 1}\n", r"'a'.*unknown factor\(s\) \['mom_2'\]"),
        ("  - name: a\n    factors: {mom_24: 1}\n    side: short\n", r"'a'.*field 'side' = 'short'"),
        ("  - name: a\n    factors: {mom_24: 1}\n    n_quantiles: 11\n", r"'a'.*'n_quantiles' = 11"),
        ("  - name: a\n    factors: {mom_24: 1}\n  - name: a\n    factors: {vol_24: 1}\n", r"\['a'\] defined more"),
        ("  - factors: {mom_24: 1}\n", r"#1 \(None\).*missing required field\(s\) \['name'\]"),
    ],
)
def test_loader_errors_name_the_file_strategy_and_field(tmp_path, body, message):
    path = _write(tmp_path, "strategies:\n" + body)
    with pytest.raises(StrategyConfigError, match=message) as err:
        load_strategies(path)
    assert str(path) in str(err.value)


def test_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(StrategyConfigError, match="nope.yaml: strategies file not found"):
        load_strategies(tmp_path / "nope.yaml")
    with pytest.raises(StrategyConfigError, match="top-level 'strategies:'"):
        load_strategies(_write(tmp_path, "- name: a\n"))


def _panel():
    return pd.DataFrame({
        "ts": pd.Timestamp("2024-01-01", tz="UTC"), "symbol": ["A", "B", "C", "D"],
        "rank_mom_24": [0.0, 1 / 3, 2 / 3, 1.0], "rank_vol_24": [1.0, np.nan, 0.0, 0.5],
        "z_mom_24": [-1.5, -0.5, 0.5, 1.5], "z_vol_24": [1.0, np.nan, -1.0, 0.0],
    })


def test_score_is_the_weighted_mean_of_present_normalised_factors_with_lower_is_better_inverted():
    spec = StrategySpec(name="c", factors={"mom_24": 0.6, "vol_24": 0.4}, lower_is_better=["vol_24"])
    panel = _panel()
    expected = []
    for mom, vol in zip(panel["rank_mom_24"], panel["rank_vol_24"], strict=True):
        parts = [(0.6, mom)] + ([(0.4, 1.0 - vol)] if np.isfinite(vol) else [])
        expected.append(sum(w * v for w, v in parts) / sum(w for w, _ in parts))
    np.testing.assert_allclose(strategy_scores(panel, spec), expected, rtol=1e-15)
    z_spec = StrategySpec(name="z", factors={"vol_24": 1.0}, lower_is_better=["vol_24"], normalization="zscore")
    np.testing.assert_array_equal(strategy_scores(panel, z_spec), [-1.0, np.nan, 1.0, -0.0])


def test_a_strategy_whose_factor_is_absent_is_skipped_with_the_reason():
    spec = StrategySpec(name="sent", factors={SENTIMENT_FACTOR: 1.0})
    reason = skip_reason(spec, _panel().columns)
    assert "'sent' skipped" in reason and SENTIMENT_FACTOR in reason
    assert skip_reason(StrategySpec(name="m", factors={"mom_24": 1.0}), _panel().columns) is None
