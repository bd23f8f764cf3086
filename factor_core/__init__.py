"""Pure computation for factor-pipeline: schemas, simulator, kernels, backtest maths.

Nothing in this package imports Dagster, so every function here can be tested
and benchmarked on its own. The Dagster code location (``factor_assets``) is
thin glue around it.
"""
