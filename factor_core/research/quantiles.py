"""Cross-sectional quantile membership, one rule for the backtest, the signals and the reports.

Reference: ``pd.qcut(score, q, labels=False) + 1`` per timestamp. Tie rule:
scores are first ranked with ``method="first"`` in row order (the panel sorts
rows by symbol within an hour, so equal scores are ordered alphabetically by
symbol) and the quantiles are cut on those ranks, i.e.
``pd.qcut(score.rank(method="first"), q, labels=False) + 1``. When an hour's
scores are all distinct, ``pd.qcut(score, q, labels=False) + 1`` itself is used
(the two agree except where pandas' float bin edges land on a score, which
only its own computation reproduces); with ties, or with distinct scores so
close that pandas' interpolated edges coincide (``pd.qcut`` refuses them), the
rank rule never fails on duplicate bin edges and splits a tie across a
boundary deterministically.
Quantile 1 holds the lowest scores, ``q`` the highest. Hours with fewer than
two finite scores get no quantile (0).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

MIN_SYMBOLS = 2


@lru_cache(maxsize=4096)
def _labels_of_ranks(n: int, n_quantiles: int) -> np.ndarray:
    """``pd.qcut(1..n, q, labels=False) + 1``: the quantile of each first-rank (cached per (n, q))."""
    labels = pd.qcut(np.arange(1, n + 1, dtype="float64"), n_quantiles, labels=False) + 1
    labels.setflags(write=False)
    return labels


def quantiles_of(values: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Quantile 1..q of each finite value of ONE cross-section (0 for NaN, all 0 if < 2 finite)."""
    values = np.asarray(values, dtype="float64")
    out = np.zeros(values.size, dtype=np.int64)
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size < MIN_SYMBOLS:
        return out
    x = values[finite]
    if np.unique(x).size == x.size:
        try:
            # Exactly pandas' own cut (its float edges decide scores that sit on an edge).
            out[finite] = pd.qcut(x, n_quantiles, labels=False) + 1
            return out
        except ValueError:
            pass  # distinct scores a rounding error apart collapse pandas' edges: the tie rule decides
    ranks = pd.Series(x).rank(method="first").to_numpy().astype(np.int64)
    out[finite] = _labels_of_ranks(int(x.size), int(n_quantiles))[ranks - 1]
    return out


def assign_quantiles(score: np.ndarray, group: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Quantile 1..n_quantiles of each finite ``score`` within its ``group`` (e.g. hour); 0 = none.

    Rows of a group are taken in their given order (the tie order).
    """
    score = np.asarray(score, dtype="float64")
    out = np.zeros(score.size, dtype=np.int64)
    codes, _ = pd.factorize(np.asarray(group))
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for rows in np.split(order, bounds):
        if rows.size:
            out[rows] = quantiles_of(score[rows], n_quantiles)
    return out
