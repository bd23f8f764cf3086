"""Run config of the research steps: strategies overridable from the launchpad.

``StrategyConfig`` mirrors ``factor_core.research.StrategySpec`` field by field
(same names, types and defaults; a test keeps them in step). Left empty,
``strategies`` means "the strategies file" (``STRATEGIES_FILE``); given, the
list replaces the file for that run, e.g. in the launchpad:

.. code-block:: yaml

    ops:
      backtest:
        config:
          strategies:
            - name: momentum_8h
              factors: {mom_24: 1.0}
              rebalance_every_hours: 8
              holding_hours: 8
              fee_bps: 3

The same config shape serves ``backtest`` (backtest_daily / backtest_hourly),
``backtest_summary`` and ``rebalance_signals``; give the summary the same list
as the backtest it summarises (rows computed under another definition of a
strategy are reported as stale, never mixed in).
"""

from __future__ import annotations

from dagster import Config
from pydantic import Field

from factor_core.research.strategies import StrategySpec

_DEFAULTS = StrategySpec(name="defaults", factors={"mom_24": 1.0})


class StrategyConfig(Config):
    """One strategy (docs/research.md, "Scores" and "Backtests"); the fields of ``StrategySpec``."""

    name: str
    factors: dict[str, float] = Field(description="factor -> weight (> 0); several = a composite")
    lower_is_better: list[str] = Field(default_factory=list, description="factors entering inverted")
    normalization: str = Field(default=_DEFAULTS.normalization, description="rank | zscore")
    rebalance_every_hours: int = _DEFAULTS.rebalance_every_hours
    holding_hours: int = Field(default=_DEFAULTS.holding_hours, description="a multiple of rebalance_every_hours")
    n_quantiles: int = _DEFAULTS.n_quantiles
    side: str = Field(default=_DEFAULTS.side, description="long_short | long_only")
    fee_bps: float = _DEFAULTS.fee_bps
    charge_spread: bool = _DEFAULTS.charge_spread
    charge_funding: bool = _DEFAULTS.charge_funding


class StrategiesConfig(Config):
    """``strategies``: this run's list, replacing the strategies file; empty = the file (STRATEGIES_FILE)."""

    strategies: list[StrategyConfig] | None = None

    def override(self) -> list[dict] | None:
        """The run's strategies as plain mappings for ``StrategySpec.from_mapping``, or None for the file."""
        if self.strategies is None:
            return None
        return [s.model_dump() for s in self.strategies]
