"""Rebalance signals: each strategy's latest long and short lists, with scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from factor_core.research.backtest import HOUR, hours_since_epoch
from factor_core.research.quantiles import quantiles_of
from factor_core.research.strategies import StrategySpec, skip_reason, strategy_scores

SIGNAL_COLUMNS = ("strategy", "ts", "trade_at", "side", "rank", "symbol", "score", "weight")


def rebalance_signals(panel: pd.DataFrame, strategies: Sequence[StrategySpec]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The latest rebalance of every strategy: one row per symbol to hold (``SIGNAL_COLUMNS``).

    For each strategy the latest panel hour ``ts`` whose ``close_time`` is one of
    its rebalance hours gives the decision: ``trade_at = close_time`` (when the
    scores become known and the trade is made), ``side`` long (top quantile) or
    short (bottom quantile, long-short only), ``rank`` 1 = strongest score on that
    side, ``weight`` the tranche weight (+1/n or -1/n). Returns (signals, skipped).
    """
    rows, skipped = [], {}
    ts_all = pd.to_datetime(panel["ts"], utc=True)
    for spec in strategies:
        reason = skip_reason(spec, panel.columns)
        if reason:
            skipped[spec.name] = reason
            continue
        stamps = pd.DatetimeIndex(ts_all.unique()).sort_values()
        decisions = stamps[hours_since_epoch(stamps + HOUR) % spec.rebalance_every_hours == 0]
        scores = strategy_scores(panel, spec)
        chosen = None
        for stamp in decisions[::-1]:  # latest decision hour with at least two scored symbols
            at = (ts_all == stamp).to_numpy()
            if np.isfinite(scores[at]).sum() >= 2:
                chosen = stamp
                break
        if chosen is None:
            skipped[spec.name] = f"strategy {spec.name!r}: no rebalance hour in the panel with two scored symbols"
            continue
        at = (ts_all == chosen).to_numpy()
        symbols = panel.loc[at, "symbol"].astype(str).to_numpy()
        hour_scores = scores[at]
        labels = quantiles_of(hour_scores, spec.n_quantiles)
        sides = [("long", labels == spec.n_quantiles, 1.0)]
        if spec.side == "long_short":
            sides.append(("short", labels == 1, -1.0))
        for side, members, sign in sides:
            idx = np.flatnonzero(members)
            idx = idx[np.argsort(-sign * hour_scores[idx], kind="stable")]
            for rank, i in enumerate(idx, start=1):
                rows.append({"strategy": spec.name, "ts": chosen, "trade_at": chosen + HOUR, "side": side,
                             "rank": rank, "symbol": symbols[i], "score": float(hour_scores[i]),
                             "weight": sign / len(idx)})
    return pd.DataFrame(rows, columns=list(SIGNAL_COLUMNS)), skipped
