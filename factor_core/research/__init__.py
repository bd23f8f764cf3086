"""The research layer's pure computation: strategies, factor panel, IC, backtests, metrics, tear sheets.

No Dagster here. The daily assets call, per UTC day (docs/research.md, "For the Dagster layer"):

* ``factor_panel``       -> ``build_factor_panel(bars, day=, next_day_bars=, membership=, extras=)``
* ``factor_ic``          -> ``compute_factor_ic(panel, previous_panel=)``
* ``factor_correlation`` -> ``daily_factor_correlation(panel)``
* ``backtest_daily`` / ``backtest_hourly`` -> ``backtest_days(panel_with_lookback, strategies, days, funding=)``

and the unpartitioned ones, over the stored daily tables:

* ``factor_report``      -> ``factor_report(factor_ic)`` (+ ``overall_factor_correlation``)
* ``backtest_summary``   -> ``summarize_backtests(backtest_daily, backtest_hourly)``
* ``rebalance_signals``  -> ``rebalance_signals(latest_panel, strategies)``
* tear sheets            -> ``factor_core.research.tearsheet`` / ``report``.
"""

from factor_core.research.backtest import (
    BacktestResult,
    backtest_days,
    daily_from_hourly,
    required_panel_days_before,
    run_backtest,
)
from factor_core.research.catalog import PANEL_FACTORS, PLANTED_FACTOR, SENTIMENT_FACTOR, factors_in, is_planted
from factor_core.research.correlation import (
    correlation_matrix,
    daily_factor_correlation,
    overall_factor_correlation,
)
from factor_core.research.ic import compute_factor_ic, factor_report, newey_west_t
from factor_core.research.metrics import SHORT_SAMPLE_DAYS, summarize_backtests
from factor_core.research.panel import (
    HORIZONS_H,
    build_factor_panel,
    forward_returns,
    membership_from_universe,
    planted_signal_rows,
)
from factor_core.research.quantiles import assign_quantiles, quantiles_of
from factor_core.research.signals import rebalance_signals
from factor_core.research.strategies import (
    StrategyConfigError,
    StrategySpec,
    load_strategies,
    parse_strategies,
    skip_reason,
    strategy_fingerprint,
    strategy_scores,
)

__all__ = [
    "HORIZONS_H", "PANEL_FACTORS", "PLANTED_FACTOR", "SENTIMENT_FACTOR", "SHORT_SAMPLE_DAYS",
    "BacktestResult", "StrategyConfigError", "StrategySpec",
    "assign_quantiles", "backtest_days", "build_factor_panel", "compute_factor_ic", "correlation_matrix",
    "daily_factor_correlation", "daily_from_hourly", "factor_report", "factors_in", "forward_returns",
    "is_planted", "load_strategies", "membership_from_universe", "newey_west_t", "overall_factor_correlation",
    "planted_signal_rows", "quantiles_of", "rebalance_signals", "required_panel_days_before", "run_backtest",
    "parse_strategies", "skip_reason", "strategy_fingerprint", "strategy_scores", "summarize_backtests",
]
