"""``compute_factor_bars``: hourly bars plus the registry's factors for one symbol."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

from factor_core.factors.inputs import (
    BAR_NS,
    FUNDING,
    LIQUIDITY,
    LIQUIDITY_DAILY,
    N_BARS,
    TS_NS,
    bar_arrays,
    bars_frame,
    funding_arrays,
    liquidity_arrays,
    liquidity_daily_arrays,
)
from factor_core.factors.registry import FACTOR_NAMES, FACTORS, optional_columns_read
from factor_core.factors.spec import FactorSpec


class _Plan:
    """The specs to run for the requested factors (dependencies first) and the optional columns they read."""

    def __init__(self, wanted: tuple[str, ...] | None) -> None:
        if wanted is None:
            self.specs, self.outputs = FACTORS, FACTOR_NAMES
        else:
            unknown = [n for n in wanted if n not in FACTOR_NAMES]
            if unknown:
                raise ValueError(f"compute_factor_bars: unknown factor(s) {unknown}; see FACTOR_NAMES")
            by_name = {s.name: s for s in FACTORS}
            needed = set()
            stack = list(wanted)
            while stack:  # the requested factors and every factor they are built on
                name = stack.pop()
                if name not in needed:
                    needed.add(name)
                    stack.extend(c for c in by_name[name].inputs if c in by_name)
            self.specs = tuple(s for s in FACTORS if s.name in needed)
            self.outputs = tuple(n for n in FACTOR_NAMES if n in set(wanted))
        self.read = {ns: optional_columns_read(self.specs, ns) for ns in (FUNDING, LIQUIDITY, LIQUIDITY_DAILY)}

    def columns(self, namespace: str) -> list[str]:
        return [c.split(".", 1)[1] for c in self.read[namespace]]

    def needed_by(self) -> dict[str, str]:
        return {col: name for read in self.read.values() for col, name in read.items()}


@lru_cache(maxsize=64)
def _plan(wanted: tuple[str, ...] | None) -> _Plan:
    return _Plan(wanted)


def _run(specs: tuple[FactorSpec, ...], ns: dict[str, object], n_bars: int) -> None:
    """Evaluate ``specs`` in order into ``ns``; a factor whose optional input is absent is all NaN."""
    results: dict[tuple, object] = {}
    for spec in specs:
        if all(col in ns for col in spec.inputs):
            res = results.get(spec.call_key)
            if res is None:
                res = results[spec.call_key] = spec.kernel(*(ns[c] for c in spec.inputs), **spec.params)
            ns[spec.name] = res if spec.output_index is None else res[spec.output_index]
        else:  # funding / liquidity / liquidity_daily not provided
            ns[spec.name] = np.full(n_bars, np.nan)


def compute_factor_bars(
    klines: pd.DataFrame,
    *,
    funding: pd.DataFrame | None = None,
    liquidity: pd.DataFrame | None = None,
    liquidity_daily: pd.DataFrame | None = None,
    factors: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Hourly bars plus the registry's factors for ONE symbol's contiguous 1-minute history.

    Returns one row per hourly bar of the whole input (``BAR_COLUMNS`` then
    ``FACTOR_NAMES``, or only the names in ``factors``, in registry order); the
    caller slices the days it wants. Feed at least ``WARMUP_DAYS`` days before
    the first day you keep: from there on values equal a one-pass computation
    over the full history (within 1e-6 relative), except ``obv`` (cumulative
    from the start of the input, see its description).

    ``funding``: ``schemas.FUNDING`` rows; ``funding_rate`` is the latest rate
    settled strictly before each bar's ``close_time`` (a settlement stamped
    exactly at close_time, e.g. next-day 00:00 for the 23:00 bar, is not used
    yet). So the bars of a day need only the funding events of that day and the
    day before, and their values do not depend on whether later days are present.
    ``liquidity``: ``liquidity.minute_liquidity`` rows (``ts`` = minute open);
    each ``liq_*`` column is the mean of the finite minute values inside the bar.
    ``liquidity_daily``: one row per UTC day (``ts`` = the day's 00:00 UTC) with
    ``liquidity.daily_liquidity`` values; each ``liqd_*`` column carries the row
    of the PREVIOUS day (lag ``LIQUIDITY_DAILY_LAG_DAYS``) on every bar of a day,
    NaN when that day's row is absent. Two rows for one day are an error.
    An optional input that is None or empty gives NaN columns; one that lacks a
    column the registry reads is an error naming the column and the factor.
    """
    plan = _plan(None if factors is None else tuple(factors))
    ns: dict[str, object] = dict(bar_arrays(klines))
    n_bars = ns[TS_NS].size
    ns[N_BARS] = np.int64(n_bars)
    t0_ns = int(ns[TS_NS][0]) if n_bars else 0
    needed_by = plan.needed_by()
    ns.update(funding_arrays(funding, needed_by))
    ns.update(liquidity_arrays(liquidity, plan.columns(LIQUIDITY), t0_ns, BAR_NS, needed_by))
    ns.update(liquidity_daily_arrays(liquidity_daily, plan.columns(LIQUIDITY_DAILY), needed_by))
    _run(plan.specs, ns, n_bars)
    return bars_frame(ns, {name: ns[name] for name in plan.outputs})
