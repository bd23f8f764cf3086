"""The factor table: every factor column as data (name, kernel, named inputs, parameters, named output).

In the spirit of Qlib's Alpha158: a factor is a declaration, not code. The
registry (``registry.py``) resolves the table at import: it checks every input
column and kernel argument, derives look-back, warm-up and start invariance
from the parameters (``contracts.py``), and drives the computation, the column
names and the data dictionary. Rows are computed in this order; a factor may
read the factors above it. The liquidity rows come from ``liquidity_inputs.py``.
"""

from __future__ import annotations

from factor_core import kernels as K
from factor_core.factors.inputs import CLOSE_TIME_NS, LIQUIDITY_BAR_INDEX, LIQUIDITY_DAILY_TS, N_BARS, TS_NS
from factor_core.factors.liquidity_inputs import DAILY_INPUTS, MINUTE_INPUTS
from factor_core.factors.spec import Factor

#: Days between a daily liquidity summary and the bars it is joined to (``liqd_*``).
LIQUIDITY_DAILY_LAG_DAYS = 1

_CLOSE = {"close": "close"}
_BB = {"kernel": K.bollinger, "inputs": _CLOSE, "params": {"n": 20, "k": 2.0}, "group": "bands"}
_BB_REF = "talib.BBANDS(close, 20, 2, 2, matype=0)"
_MACD = {"kernel": K.macd, "inputs": _CLOSE, "params": {"fast": 12, "slow": 26, "signal": 9}, "group": "trend",
         "reference": "talib.EMA(close, 12) - talib.EMA(close, 26); signal = talib.EMA(line, 9)"}

FACTOR_TABLE: tuple[Factor, ...] = (
    *(Factor(f"log_ret_{n}", K.log_return, _CLOSE, {"n": n}, group="returns", unit="log return",
             description=f"log return over {n} bar(s): ln(close_t / close_(t-{n}))",
             reference="np.log(close / close.shift(n))")
      for n in (1, 4, 24)),
    *(Factor(f"mom_{n}", K.simple_return, _CLOSE, {"n": n}, group="momentum", unit="fraction",
             description=f"{n}-hour momentum: simple return close_t / close_(t-{n}) - 1",
             reference="close.pct_change(n)")
      for n in (12, 24, 72)),
    Factor("mom_composite", K.weighted_sum3, {"a": "mom_12", "b": "mom_24", "c": "mom_72"},
           {"wa": 0.2, "wb": 0.3, "wc": 0.5}, group="momentum", unit="fraction",
           description="weighted momentum composite 0.2*mom_12 + 0.3*mom_24 + 0.5*mom_72 (NaN if any part is NaN)"),
    Factor("vol_mom_24", K.volume_momentum, {"volume": "volume"}, {"n": 24}, group="momentum", unit="fraction",
           description="volume momentum: base volume of the last 24 bars / volume of the 24 bars before - 1 "
                       "(NaN if the earlier window traded nothing)"),
    Factor("rv_1h", K.realized_vol, {"realized_var": "realized_var"}, {"n": 1}, group="volatility",
           unit="log return (per hour)",
           description="realised volatility of the bar: sqrt(sum of squared 1-minute log returns)",
           reference="Andersen & Bollerslev (1998)"),
    Factor("rv_24", K.realized_vol, {"realized_var": "realized_var"}, {"n": 24}, group="volatility",
           unit="log return (per 24h)",
           description="realised volatility over 24 bars from 1-minute log returns: sqrt(sum of realized_var)",
           reference="Andersen & Bollerslev (1998)"),
    *(Factor(f"vol_{n}", K.rolling_std, {"x": "log_ret_1"}, {"n": n, "ddof": 1}, group="volatility",
             unit="log return (per hour)",
             description=f"rolling volatility: sample std (ddof=1) of log_ret_1 over {n} bars, not annualised",
             reference="log_ret_1.rolling(n).std()")
      for n in (24, 72)),
    Factor("atr_14", K.atr_wilder, {"high": "high", "low": "low", "close": "close"}, {"n": 14},
           group="volatility", unit="quote currency",
           description="Wilder's average true range, 14 bars, as talib.ATR",
           reference="talib.ATR(high, low, close, 14)"),
    *(Factor(f"rsi_{n}", K.rsi_wilder, _CLOSE, {"n": n}, group="oscillators", unit="0-100",
             description=f"Wilder's RSI, {n} bars, as talib.RSI (seeded with the mean of the first {n} "
                         "gains/losses; 0 for a flat series)",
             reference=f"talib.RSI(close, {n})")
      for n in (14, 28)),
    Factor("bb_mid_20", **_BB, output="mid", unit="quote currency", reference=_BB_REF,
           description="Bollinger middle band: 20-bar SMA of close"),
    Factor("bb_upper_20", **_BB, output="upper", unit="quote currency", reference=_BB_REF,
           description="Bollinger upper band: SMA20 + 2 * population std (ddof=0)"),
    Factor("bb_lower_20", **_BB, output="lower", unit="quote currency", reference=_BB_REF,
           description="Bollinger lower band: SMA20 - 2 * population std (ddof=0)"),
    Factor("bb_position_20", **_BB, output="position", unit="fraction",
           description="(close - lower) / (upper - lower): 0 at the lower band, 1 at the upper band, can leave "
                       "[0, 1]; NaN if the bands coincide (flat window)"),
    Factor("bb_width_20", **_BB, output="width", unit="fraction",
           description="(upper - lower) / mid = 4 * std / SMA"),
    Factor("macd_12_26", **_MACD, output="line", unit="quote currency",
           description="MACD line: EMA12(close) - EMA26(close), EMAs SMA-seeded as talib.EMA"),
    Factor("macd_signal_9", **_MACD, output="signal", unit="quote currency",
           description="MACD signal: talib.EMA(macd_12_26, 9), seeded with the SMA of the first 9 MACD values"),
    Factor("macd_hist", **_MACD, output="hist", unit="quote currency",
           description="MACD histogram: macd_12_26 - macd_signal_9"),
    Factor("obv", K.obv_talib, {"close": "close", "volume": "volume"}, group="volume", unit="base units",
           description="on-balance volume as talib.OBV, cumulative FROM THE START OF THE PROVIDED INPUT "
                       "(first value = first bar's volume). Start-dependent: day-by-day values differ from a "
                       "one-pass run by a constant per run; use obv_72 for a start-invariant version",
           reference="talib.OBV(close, volume)"),
    Factor("obv_72", K.obv_window, {"close": "close", "volume": "volume"}, {"n": 72}, group="volume",
           unit="base units",
           description="windowed OBV: sum over the last 72 bars of sign(close change) * volume "
                       "(= OBV_t - OBV_(t-72)); start-invariant",
           reference="talib.OBV(c, v)[t] - talib.OBV(c, v)[t-72]"),
    Factor("vwap_24", K.rolling_ratio, {"num": "quote_volume", "den": "volume"}, {"n": 24}, group="volume",
           unit="quote currency",
           description="rolling VWAP over 24 bars: sum(quote_volume) / sum(volume); NaN if no volume"),
    Factor("close_vwap_24", K.safe_ratio, {"num": "close", "den": "vwap_24"}, group="volume", unit="ratio",
           description="close / vwap_24"),
    Factor("amihud_24", K.amihud, {"log_ret": "log_ret_1", "quote_volume": "quote_volume"},
           {"n": 24, "scale": 1e6}, group="liquidity", unit="abs log return per 1M quote",
           description="Amihud illiquidity: mean over 24 bars of |log_ret_1| / quote_volume, per 1M quote; "
                       "bars with zero quote volume skipped, NaN if fewer than 12 qualify",
           reference="Amihud (2002)"),
    Factor("turnover_24_168", K.turnover_ratio, {"quote_volume": "quote_volume"}, {"short": 24, "long": 168},
           group="liquidity", unit="ratio",
           description="turnover ratio: quote volume of the last 24 bars / average 24-bar quote volume over the "
                       "last 168 bars (1 = normal pace)"),
    Factor("spread_cs_24", K.spread_cs, {"high": "high", "low": "low"}, {"n": 24, "scale": 1e4},
           group="liquidity", unit="bps",
           description="spread proxy: mean over 24 bar pairs of the Corwin-Schultz high-low spread estimate "
                       "(negative alphas set to 0); NaN if fewer than 12 valid pairs",
           reference="Corwin & Schultz (2012)"),
    Factor("price_impact_24", K.price_impact,
           {"log_ret": "log_ret_1", "taker_buy_quote": "taker_buy_quote_volume", "quote_volume": "quote_volume"},
           {"n": 24, "min_count": 12}, group="liquidity", unit="bps per 1M quote",
           description="price impact (Kyle's lambda on bars): OLS slope of 1e4*log_ret_1 on signed quote volume "
                       "(2*taker_buy_quote_volume - quote_volume) in millions, over 24 bars",
           reference="Kyle (1985); Hasbrouck (2009)"),
    *(Factor(f"ofi_{n}", K.order_flow_imbalance, {"taker_buy": "taker_buy_volume", "volume": "volume"}, {"n": n},
             group="order_flow", unit="fraction",
             description=f"taker order-flow imbalance over {n} bar(s): (2*taker_buy_volume - volume) / volume, "
                         "in [-1, 1]; NaN if no volume")
      for n in (1, 24)),
    Factor("funding_rate", K.asof_values,
           {"query_ts": CLOSE_TIME_NS, "event_ts": "funding.ts", "event_values": "funding.funding_rate"},
           {"strict": True}, group="funding", unit="fraction per interval",
           description="latest funding rate settled STRICTLY BEFORE close_time (as-of join without exact matches): "
                       "the settlement stamped at the 23:00 bar's close_time (next-day 00:00) belongs to the next "
                       "day's bars, so a day needs only funding events of that day and the day before; NaN before "
                       "the first event in the provided funding frame or without funding input",
           reference='pd.merge_asof(bars, funding, left_on="close_time", right_on="ts", allow_exact_matches=False)'),
    *(Factor(f"liq_{col.column}", K.bin_nanmean,
             {"values": f"liquidity.{col.column}", "bin_idx": LIQUIDITY_BAR_INDEX, "n_bins": N_BARS},
             group="liquidity", unit=col.unit, reference="docs/liquidity.md",
             description=f"mean over the bar's minutes of liquidity.minute_liquidity {col.column}: "
                         f"{col.description}; NaN without liquidity input")
      for col in MINUTE_INPUTS),
    *(Factor(f"liqd_{col.column}", K.lagged_day_values,
             {"query_ts": TS_NS, "day_ts": LIQUIDITY_DAILY_TS, "day_values": f"liquidity_daily.{col.column}"},
             {"lag_days": LIQUIDITY_DAILY_LAG_DAYS}, group="liquidity_daily", unit=col.unit,
             reference="docs/liquidity.md",
             description=f"liquidity.daily_liquidity {col.column} of the PREVIOUS UTC day (d-1) on every bar of "
                         f"day d: {col.description}. One-day lag: a day's summary is known at its end (next "
                         "00:00), so it is joined only to the next day's bars; NaN when the previous day's "
                         "summary is missing (nothing older is carried forward) or without liquidity_daily input")
      for col in DAILY_INPUTS),
)
