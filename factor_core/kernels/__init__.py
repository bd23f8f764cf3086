"""Numba kernels of the factor library: one operation each, NumPy arrays in and out.

Modules by concern (each kernel's docstring names its reference definition):

* ``resample``: 1-minute bars -> coarser bars (``resample_minutes`` and its pieces);
* ``returns``: returns over ``n`` bars, fixed-weight combinations;
* ``windows``: rolling sums, means, moments, ratios, OLS slope;
* ``talib_equivalents``: TA-Lib contracts (SMA-seeded EMA, MACD, Wilder RSI / ATR,
  Bollinger bands, OBV);
* ``bar_liquidity``: liquidity and order-flow estimators on bars (Amihud, price
  impact, Corwin–Schultz, turnover, order-flow imbalance);
* ``joins``: as-of joins and binning of events onto bars, without look-ahead;
* ``microstructure``: order-book and trade estimators used by ``factor_core.liquidity``.

Conventions shared by every kernel (unless its docstring says otherwise):

* Inputs are 1-D ``float64`` arrays of equal length, oldest first; outputs are
  new ``float64`` arrays of the same length, ``NaN`` where the value is not
  defined (warm-up, division by zero, missing input).
* **Leading NaN** (a series that starts late) is skipped the way TA-Lib's
  Python wrapper does it: the computation starts at the first index where all
  inputs are finite, so look-backs count from there.
* **Interior NaN** in a *recursive* kernel (EMA, Wilder, OBV) propagates
  forward: the state is lost. Window kernels (``rolling_*``) return NaN for
  every window that contains a NaN, except the ``*_nan`` variants.
* Nothing here divides by zero: a zero denominator gives NaN, never ``inf``.
* Every ``@njit`` has ``cache=True``. Numba's cache tracks only the source file
  of the function itself: after editing a kernel that a kernel in *another*
  module calls (``rolling_sum``, ``rolling_moments``, ``first_finite``...), delete
  ``factor_core/kernels/__pycache__`` or the callers keep the old compiled code.

Nothing in this package imports pandas or Dagster.
"""

from factor_core.kernels.bar_liquidity import (
    amihud,
    corwin_schultz,
    order_flow_imbalance,
    price_impact,
    spread_cs,
    turnover_ratio,
)
from factor_core.kernels.common import first_finite, first_finite2, first_finite3, safe_ratio
from factor_core.kernels.joins import NS_PER_DAY, asof_values, bin_nanmean, lagged_day_values, prevailing_index
from factor_core.kernels.microstructure import (
    band_book_metrics,
    interp_cumulative_depth,
    roll_spread,
    snapshot_book_metrics,
    vpin,
)
from factor_core.kernels.resample import ResampledBars, resample_minutes
from factor_core.kernels.returns import log_return, simple_return, weighted_sum3
from factor_core.kernels.talib_equivalents import (
    atr_wilder,
    bb_position_width,
    bbands,
    bollinger,
    ema_talib,
    macd,
    obv_talib,
    obv_window,
    rsi_wilder,
)
from factor_core.kernels.windows import (
    realized_vol,
    rolling_mean_nan,
    rolling_moments,
    rolling_ols_slope,
    rolling_ratio,
    rolling_std,
    rolling_sum,
    volume_momentum,
)

__all__ = [
    "NS_PER_DAY",
    "ResampledBars",
    "amihud",
    "asof_values",
    "atr_wilder",
    "band_book_metrics",
    "bb_position_width",
    "bbands",
    "bin_nanmean",
    "bollinger",
    "corwin_schultz",
    "ema_talib",
    "first_finite",
    "first_finite2",
    "first_finite3",
    "interp_cumulative_depth",
    "lagged_day_values",
    "log_return",
    "macd",
    "obv_talib",
    "obv_window",
    "order_flow_imbalance",
    "prevailing_index",
    "price_impact",
    "realized_vol",
    "resample_minutes",
    "roll_spread",
    "rolling_mean_nan",
    "rolling_moments",
    "rolling_ols_slope",
    "rolling_ratio",
    "rolling_std",
    "rolling_sum",
    "rsi_wilder",
    "safe_ratio",
    "simple_return",
    "snapshot_book_metrics",
    "spread_cs",
    "turnover_ratio",
    "volume_momentum",
    "vpin",
    "weighted_sum3",
]
