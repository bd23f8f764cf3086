"""Cross-sectional panel: every symbol's hourly factors at each timestamp, normalised.

Normalisation is per timestamp, across symbols only (no time-series
statistics), so a row stamped at bar t uses nothing but that bar's factor
values: no look-ahead can enter here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

PANEL_KEYS = ("ts", "close_time", "date", "symbol")
Z_PREFIX = "z_"
#: Composite score: weights on the cross-sectional z-scores of these factors.
DEFAULT_SCORE_WEIGHTS: dict[str, float] = {"mom_composite": 1.0}


def cross_sectional_zscore(values: pd.Series, by: pd.Series, clip: float) -> pd.Series:
    """(x - mean) / std over each group (population std), clipped to ±clip.

    A group with fewer than two finite values, or no dispersion, gives NaN:
    a rank among one symbol carries no information.
    """
    finite = values.where(np.isfinite(values))
    grouped = finite.groupby(by)
    mean = grouped.transform("mean")
    std = grouped.transform(lambda x: x.std(ddof=0))
    count = grouped.transform("count")
    z = (finite - mean) / std.where(std > 0)
    return z.where(count >= 2).clip(-clip, clip)


def build_panel(
    bars: pd.DataFrame,
    factor_names: Sequence[str],
    score_weights: Mapping[str, float] = DEFAULT_SCORE_WEIGHTS,
    *,
    clip: float = 3.0,
) -> pd.DataFrame:
    """One row per (ts, symbol): close, the bar's simple return, z-scored factors and a score.

    ``bars`` is the factor_bars layer of several symbols (columns ``ts``,
    ``close_time``, ``date``, ``symbol``, ``close``, ``log_ret_1`` and the
    factors). ``bar_return`` is the simple return earned over bar ``ts``
    (close over previous close); the backtest pairs it with the score of the
    *previous* bar, which was known when the position was taken.
    """
    unknown = [name for name in score_weights if name not in factor_names]
    if unknown:
        raise ValueError(f"score weights name unknown factor(s) {unknown}; known: {list(factor_names)}")
    missing = [c for c in (*PANEL_KEYS, "close", "log_ret_1") if c not in bars.columns]
    if missing:
        raise ValueError(f"factor_bars frame lacks column(s) {missing}")

    ordered = bars.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    panel = ordered[list(PANEL_KEYS)].copy()
    panel["close"] = ordered["close"].astype("float64")
    panel["bar_return"] = np.expm1(ordered["log_ret_1"].astype("float64"))
    z_columns = {}
    for name in factor_names:
        if name in ordered.columns:
            z_columns[Z_PREFIX + name] = cross_sectional_zscore(
                ordered[name].astype("float64"), ordered["ts"], clip
            )
    panel = pd.concat([panel, pd.DataFrame(z_columns)], axis=1)

    weighted = sum(panel[Z_PREFIX + f].fillna(0.0) * w for f, w in score_weights.items())
    weight_present = sum(panel[Z_PREFIX + f].notna() * abs(w) for f, w in score_weights.items())
    panel["score"] = (weighted / weight_present.where(weight_present > 0)).astype("float64")
    return panel
