"""The liquidity columns the factor registry reads: the one place to edit when ``factor_core.liquidity`` changes.

Each row becomes one factor: ``liq_<column>`` (the mean of the bar's minutes of
``liquidity.minute_liquidity``) or ``liqd_<column>`` (the previous UTC day's
``liquidity.daily_liquidity`` value on every bar). A column that
``factor_core.liquidity`` does not produce (``MINUTE_COLUMNS`` / ``DAILY_KEYS``)
fails the import of ``factor_core.factors`` with the factor and the column named.
"""

from __future__ import annotations

from typing import NamedTuple


class LiquidityInput(NamedTuple):
    column: str
    description: str
    unit: str


#: ``liquidity.minute_liquidity`` columns averaged into each bar (``liq_*``).
MINUTE_INPUTS: tuple[LiquidityInput, ...] = (
    LiquidityInput("quoted_spread_bps", "quoted spread (ask - bid) / mid", "bps"),
    LiquidityInput("effective_spread_bps", "effective spread 2*side*(price - mid)/mid of trades", "bps"),
    LiquidityInput("depth_10bps_usd", "book notional within ±10 bps of mid, both sides", "quote currency"),
    LiquidityInput("depth_50bps_usd", "book notional within ±50 bps of mid, both sides", "quote currency"),
    LiquidityInput("depth_imbalance", "(bid - ask) / (bid + ask) notional within ±50 bps", "fraction"),
    LiquidityInput("trade_imbalance", "(buy - sell) / (buy + sell) aggressor base volume", "fraction"),
)

#: ``liquidity.daily_liquidity`` keys joined from the previous UTC day (``liqd_*``).
DAILY_INPUTS: tuple[LiquidityInput, ...] = (
    LiquidityInput("effective_spread_bps", "notional-weighted effective spread of the day's trades", "bps"),
    LiquidityInput("kyle_lambda_bps_per_sqrt_usd",
                   "Kyle's lambda as Hasbrouck (2009) estimates it: 5-minute returns on signed square-root dollar volume",
                   "bps per sqrt(quote)"),
    LiquidityInput("price_impact_1m_bps_per_musd", "1-minute log return (bps) per 1M signed quote volume (OLS slope)",
                   "bps per 1M quote"),
    LiquidityInput("amihud_per_musd", "Amihud illiquidity on 1-minute bars", "abs log return per 1M quote"),
    LiquidityInput("roll_spread_bps", "Roll spread of trade-by-trade prices (NaN if the autocovariance is >= 0)",
                   "bps"),
    LiquidityInput("cs_spread_bps", "Corwin-Schultz (2012) spread on consecutive 1-minute bars, gap-adjusted", "bps"),
    LiquidityInput("vpin", "VPIN over 50 equal-volume buckets sized by previous days' volume, rolling across days, "
                   "exchange aggressor flags", "fraction"),
)
