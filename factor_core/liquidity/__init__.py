"""Order-book, quote and trade liquidity of one symbol-day (pure functions, no Dagster).

Inputs are the canonical raw frames (``schemas.BOOK``, ``schemas.TRADES``,
``schemas.KLINES``, ``schemas.QUOTES``). Formulas, units and references:
``docs/liquidity.md``.

* :func:`minute_liquidity`: one row per minute (``MINUTE_COLUMNS``); uses nothing after
  the end of the minute.
* :func:`compute_daily`: the day's summary (``DAILY_KEYS``) with the reason of every null
  value and the :class:`LiquidityState` the next day needs; :func:`daily_liquidity` returns
  the numbers only.
* :mod:`factor_core.liquidity.matching`: the quote in force at each trade (shared with
  the raw-layer quality check).

Users with 1-minute bars only are first-class: with klines alone, ``amihud_per_musd``,
``price_impact_1m_bps_per_musd``, ``roll_spread_1m_bps``, ``cs_spread_bps``, ``vpin_bvc``,
``volume`` and ``quote_volume`` are computed; the rest are NaN with a reason.
"""

from factor_core.liquidity.book import DEPTH_BPS
from factor_core.liquidity.daily import (
    DAILY_KEYS,
    IMPACT_MIN_MINUTES,
    KYLE_INTERVAL_NS,
    KYLE_MIN_INTERVALS,
    VPIN_BUCKETS_PER_DAY,
    VPIN_VOLUME_DAYS,
    VPIN_WINDOW,
    DailyLiquidity,
    LiquidityState,
    VpinBuckets,
    compute_daily,
    daily_liquidity,
    rolling_vpin_state,
)
from factor_core.liquidity.matching import MAX_SNAPSHOT_AGE_S, QuoteSeries, prevailing_quotes, quote_in_force
from factor_core.liquidity.minute import MINUTE_COLUMNS, minute_liquidity

__all__ = [
    "DAILY_KEYS",
    "DEPTH_BPS",
    "IMPACT_MIN_MINUTES",
    "KYLE_INTERVAL_NS",
    "KYLE_MIN_INTERVALS",
    "MAX_SNAPSHOT_AGE_S",
    "MINUTE_COLUMNS",
    "VPIN_BUCKETS_PER_DAY",
    "VPIN_VOLUME_DAYS",
    "VPIN_WINDOW",
    "DailyLiquidity",
    "LiquidityState",
    "QuoteSeries",
    "VpinBuckets",
    "compute_daily",
    "rolling_vpin_state",
    "daily_liquidity",
    "minute_liquidity",
    "prevailing_quotes",
    "quote_in_force",
]
