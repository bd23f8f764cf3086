"""The research layer's assets, for the configured market-data source (assembled by ``definitions.py``).

cross_section: ``hourly_closes``, ``factor_panel`` (and ``planted_signal`` with the synthetic source);
research: ``factor_ic``, ``factor_correlation``, ``factor_report`` + ``factor_correlation_overall``;
backtest: ``backtest_daily`` + ``backtest_hourly``, ``backtest_summary``, ``rebalance_signals``.
"""

from factor_assets.backtest import BACKTEST_ASSETS
from factor_assets.panel import panel_assets
from factor_assets.research import RESEARCH_ASSETS


def research_assets(source: str) -> list:
    return [*panel_assets(source), *RESEARCH_ASSETS, *BACKTEST_ASSETS]


__all__ = ["research_assets"]
