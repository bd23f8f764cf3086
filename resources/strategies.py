"""The strategies the research layer backtests: the strategies file, unless a run brings its own list.

``definitions.py`` binds :class:`StrategiesResource` to the ``strategies`` key with
``STRATEGIES_FILE`` (default ``strategies.yaml`` at the repository root). The file
is read when a step runs, not when the code location loads, so a broken file
fails the research steps with an error naming the file, strategy and field,
and never stops the rest of the pipeline from loading.

A run may override the file from the launchpad (``factor_assets.strategy_config``):
its list replaces the file's for that run, validated the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import ConfigurableResource

from factor_core.research.strategies import StrategySpec, load_strategies, parse_strategies


class StrategiesResource(ConfigurableResource):
    """``strategies_file``: absolute path of the YAML file (``factor_core.settings.strategies_file()``)."""

    strategies_file: str

    def specs(self, override: Sequence[Mapping] | None = None) -> list[StrategySpec]:
        """The run's strategies: ``override`` (a run config's list of plain mappings) or the file's."""
        if override is not None:
            return parse_strategies(list(override), "run config 'strategies'")
        return load_strategies(self.strategies_file)
