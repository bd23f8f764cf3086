"""Deterministic market simulator: the default offline data source.

The demo, the tests and anyone without exchange access read raw partitions
from here. Every output frame conforms to the canonical raw schemas in
:mod:`factor_core.schemas` (column order, dtypes, ``datetime64[ns, UTC]``
timestamps), so ``pa.Table.from_pandas(df, schema=..., preserve_index=False)``
yields exactly that schema.

Determinism
-----------
A symbol-day is a pure function of ``(config, symbol, day)``. Nothing is
carried from one computed day to the next, so a partition is byte-identical
whether it is computed alone, after other days, in another order or in
another process. Randomness comes from two kinds of source, both keyed by a
stable :func:`hashlib.blake2b` digest (never Python's salted ``hash()``):

* NumPy ``Generator`` streams keyed by ``(seed, symbol, day, purpose)``
  (``purpose`` = idio path, trades, quotes, book, funding), ``(seed, day)`` for
  the market path and ``(seed, symbol)`` / ``(seed,)`` for the midnight
  horizons. So the minute close path depends on ``seed`` and ``signal_ic``
  only; the trades and quotes on those plus ``trades_per_minute`` and
  ``quote_updates_per_minute``; the book settings (``book_levels``,
  ``book_interval_s``) change the book frame only;
* a counter-based hash (splitmix64 + Box-Muller) for the planted signal, which
  the previous day must be able to recompute cheaply.

Price continuity across midnight (the market trades 24/7) comes from a
per-symbol *horizon*: one draw per day from :data:`SIMULATOR_EPOCH` to
:data:`SIMULATOR_END` gives the log price at every UTC midnight (a slowly
mean-reverting random walk, cached per symbol). Day D's minute path is a
bridge from midnight D to midnight D+1, so the quote day D opens with (mid on
the midnight price) continues where day D-1's quotes ended, no matter which
day is computed first.

Price model
-----------
``log p = log base + beta * M + I``: a common market factor ``M`` (keyed by
``(seed, day)`` only, so all symbols share it) loaded with a per-symbol
``beta`` in ~[0.7, 1.3], plus an idiosyncratic part ``I``. Each part has

* a day-scale volatility following a persistent AR(1) in log-vol (horizon);
* within the day, a minute-scale stochastic-volatility AR(1) (volatility
  clustering) times a UTC-hour seasonality profile (busiest around 13-16 UTC,
  smaller bumps at the Asian and European opens);
* unit-variance Student-t(5) minute innovations (fat tails).

Daily volatility is ~2-5 % (annualised ~50-70 %). The intraday path is a
variance-weighted bridge: its increments are shifted by ``var_j / sum(var)``
times the gap to the target, which keeps the seasonality and clustering. This
path is the *efficient* (mid) price at each minute open; trades print around
it at the bid or the ask.

Planted signal
--------------
For each hour boundary ``T`` = 01:00 .. 24:00 of day D a standard normal
``signal_T`` is published (``SimulatedDay.planted_signal``). The idiosyncratic
log return over ``[T, T+1h)`` gets the extra drift
``k * sigma_hour * signal_T`` with ``k = ic / sqrt(1 - ic**2)`` and
``sigma_hour`` the expected idiosyncratic hourly std, spread evenly over the
60 minutes, so ``corr(signal_T, idio hourly return) = ic``. The drift enters
the midnight horizon too (the bridge only pins the *noise* part), hence the
bridge does not dilute it. The signal at 24:00 of day D drives the first hour
of day D+1; both days recompute it from the counter hash. With
``signal_ic == 0`` the drift is skipped entirely and no return depends on the
signal. The measured cross-sectional Spearman IC of hourly kline closes is
slightly below ``ic`` (ranks of normals, ``6/pi * asin(ic/2)``, unequal
idiosyncratic vol levels, the beta dispersion of the market part and the
bid-ask bounce of the closing trade all dilute it a little).

Microstructure (:mod:`factor_core.simulator.microstructure`)
--------------------------------------------------------------
* Prices are integer multiples of a power-of-ten tick, quantities of a
  power-of-ten lot; floats are ``ticks / 10**decimals`` (the double nearest to
  the decimal value). Tick, lot, base price, beta, the typical spread, level
  gap and level size depend on the symbol only (not the seed): majors
  (BTC 1 bps, ETH 1.5 bps quoted spread, ~$60k / $40k on the first level) are
  tight and deep, alts wider (2-8 bps) and thinner (~$2-15k).
* **Quotes** (``SimulatedDay.quotes``, ``schemas.QUOTES``): the best bid/ask is
  refreshed at every minute open (00:00:00 included; mid = the path) and at
  Poisson times inside the minute (``quote_updates_per_minute``, seasonal and
  vol-driven; mid on a Brownian bridge between the minute's end points). The
  spread in bps is ``spread_bps * vol_mult^0.7 * activity^-0.4 * LN(0, 0.15)``:
  wider when volatility is high, narrower when volume is (``activity`` =
  seasonality x a per-minute participation factor that also drives the trade
  intensity). Every trade changes the displayed size, so it adds a quote row
  (1 ns after the print). The first row of each day is the 00:00:00 refresh;
  rows are strictly increasing in ``ts``; never crossed or locked.
* **Trades**: taker orders arrive as a Poisson process (``trades_per_minute``
  before the seasonal / volatility / participation modulation, at least one
  per minute), on whole microseconds strictly inside the minute. A buy lifts
  the ask, a sell hits the bid, always at the quote in force; an order larger
  than the first level walks up to five further levels of the book in force,
  one print per price (so several prints may share an order's time, 1 ns
  apart). The aggressor is a buyer with probability
  ``0.5 + 0.2 tanh(z_j)``, ``z_j`` the minute's standardised efficient return
  (informed flow: order flow and returns co-move, so Kyle's lambda is
  positive). ``trade_id = day_index * 10**9 + i`` with ``day_index`` the days
  since :data:`SIMULATOR_EPOCH`, so ids are unique per symbol and increase
  across days. Prices carry bid-ask bounce.
* **Klines** are aggregated *from* the trades: OHLC from first/last/max/min,
  sums with ``np.add.reduceat`` in trade order (what a pandas groupby-sum of
  the trades in trade order returns bit for bit; taker-buy sums over the
  trades with ``is_buyer_maker == False`` only).
* **Book**: a top-N snapshot at every multiple of ``book_interval_s`` seconds
  of the day, ``00:00:00`` included and next midnight excluded. It is the book
  in force at its ``ts``: level 1 of each side equals the quote in force
  (last quote row with ``ts <= snapshot ts``); level ``k`` lies about
  ``(1 + 2 + ... + (k-1)) * level_gap_bps`` beyond level 1 (gaps grow with
  the level) and holds ~``(1 + k)^1.2`` times the first level's size, so the
  depth within +-50 bps is several times the depth within +-10 bps. Levels a
  sweeping order consumed are gone until the next refresh. Rows are ordered by
  ts, then bid levels 1..N, then ask levels 1..N; ``band_pct`` is null and
  ``notional = price * qty``.
* Funding: settlements at 00:00, 08:00 and 16:00 UTC, interval 8 h, rate
  ``~1e-4 + 0.008 * (log return over the previous 8 h) + noise``, rounded to
  8 decimals and capped at +-0.3 %. The 00:00 row needs the previous day's
  path, which is recomputed (not carried over); on the epoch day that return
  is taken as 0.

Range and caching
-----------------
Days from :data:`SIMULATOR_EPOCH` to :data:`SIMULATOR_END` inclusive; others
raise ``ValueError`` naming the day. The LRU caches (horizons, market
day paths, log paths) memoise pure functions of their arguments and hand out
read-only arrays, so they speed things up without creating order dependence.
One default symbol-day takes ~15-25 ms (``bench/README.md``); the first day of
a new symbol adds ~10 ms (~40 ms with a planted signal) for its horizon, and
the first call in a fresh process loads the matching kernel from Numba's cache.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from factor_core import schemas
from factor_core.timeutil import NS_PER_DAY, NS_PER_MINUTE, NS_PER_SECOND
from factor_core.simulator.microstructure import WALK_LEVELS, book_levels, simulate_microstructure
from factor_core.simulator.path import (
    _MINUTES,
    SIMULATOR_END,
    SIMULATOR_EPOCH,
    _day_index,
    _idio_horizon,
    _log_path,
    _market_horizon,
    _market_intraday,
    _Path,
    _profile,
    _rng,
    _signal_values,
    _to_float,
    _utc,
)

__all__ = [
    "SIMULATOR_END",
    "SIMULATOR_EPOCH",
    "WALK_LEVELS",
    "SimulatedDay",
    "SimulatorConfig",
    "planted_signal",
    "simulate_day",
    "simulate_range",
]

#: The LRU caches of the price path (tests clear them to prove order independence).
CACHES = (_market_horizon, _idio_horizon, _market_intraday, _log_path)


@dataclass(frozen=True)
class SimulatorConfig:
    """Knobs of the simulator; every field is part of the determinism key.

    ``signal_ic`` is the planted correlation between ``planted_signal`` and the
    next hour's idiosyncratic log return (0 = no signal, returns do not depend
    on it). ``trades_per_minute`` is the day-average Poisson intensity of taker
    orders before the seasonal/volatility modulation (a sweeping order prints
    more than one trade). ``quote_updates_per_minute`` is the day-average
    intensity of quote refreshes besides the one at every minute open.
    ``book_interval_s`` must divide 86400.
    """

    seed: int = 7
    signal_ic: float = 0.0
    trades_per_minute: float = 12.0
    book_levels: int = 10
    book_interval_s: int = 60
    quote_updates_per_minute: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int | np.integer) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        if not -1.0 < float(self.signal_ic) < 1.0:
            raise ValueError(f"signal_ic must lie in (-1, 1), got {self.signal_ic!r}")
        if not 0.0 < float(self.trades_per_minute) <= 100_000.0:
            raise ValueError(
                f"trades_per_minute must lie in (0, 100000], got {self.trades_per_minute!r}"
            )
        if not 0.0 <= float(self.quote_updates_per_minute) <= 100_000.0:
            raise ValueError(
                "quote_updates_per_minute must lie in [0, 100000], "
                f"got {self.quote_updates_per_minute!r}"
            )
        if not 1 <= int(self.book_levels) <= 1000:
            raise ValueError(f"book_levels must lie in [1, 1000], got {self.book_levels!r}")
        interval = int(self.book_interval_s)
        if interval < 1 or 86_400 % interval:
            raise ValueError(
                f"book_interval_s must be a positive divisor of 86400, got {self.book_interval_s!r}"
            )


@dataclass(frozen=True)
class SimulatedDay:
    """One simulated symbol-day; frames conform to :mod:`factor_core.schemas`.

    ``quotes`` is the top-of-book stream (``schemas.QUOTES``) every trade
    printed against. ``planted_signal`` has columns ``known_at``
    (``datetime64[ns, UTC]``, the hour boundaries 01:00 .. 24:00 of the day,
    i.e. the close of each hourly bar; 24:00 is the next midnight) and
    ``signal`` (float64), 24 rows.
    """

    klines: pd.DataFrame
    trades: pd.DataFrame
    book: pd.DataFrame
    funding: pd.DataFrame
    planted_signal: pd.DataFrame
    quotes: pd.DataFrame


# --------------------------------------------------------------------------- #
# Frames
# --------------------------------------------------------------------------- #
def _klines(day_ns: int, counts: np.ndarray, price: np.ndarray, qty: np.ndarray, ibm: np.ndarray) -> pd.DataFrame:
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ends = starts + counts
    quote = price * qty
    buy = ~ibm
    buy_counts = np.add.reduceat(buy.astype(np.int64), starts)
    taker_vol = np.zeros(_MINUTES)
    taker_quote = np.zeros(_MINUTES)
    has_buy = buy_counts > 0
    if has_buy.any():
        buy_starts = np.concatenate([[0], np.cumsum(buy_counts)[:-1]])[has_buy]
        taker_vol[has_buy] = np.add.reduceat(qty[buy], buy_starts)
        taker_quote[has_buy] = np.add.reduceat(quote[buy], buy_starts)
    return pd.DataFrame(
        {
            "open_time": _utc(day_ns + np.arange(_MINUTES, dtype=np.int64) * NS_PER_MINUTE),
            "open": price[starts],
            "high": np.maximum.reduceat(price, starts),
            "low": np.minimum.reduceat(price, starts),
            "close": price[ends - 1],
            "volume": np.add.reduceat(qty, starts),
            "quote_volume": np.add.reduceat(quote, starts),
            "trade_count": counts.astype(np.int64),
            "taker_buy_volume": taker_vol,
            "taker_buy_quote_volume": taker_quote,
        }
    )


def _book_frame(day_ns: int, snap: np.ndarray, ticks: np.ndarray, lots: np.ndarray, prof) -> pd.DataFrame:
    n_snap, _, levels = ticks.shape
    px = _to_float(ticks, prof.tick_decimals)
    qty = _to_float(lots, prof.lot_decimals)
    side_code = np.broadcast_to(np.array([0, 1], dtype=np.int8)[None, :, None], (n_snap, 2, levels))
    # Arrow builds the string column ~4x faster than an object array would.
    side = (
        pa.DictionaryArray.from_arrays(pa.array(side_code.ravel()), pa.array(["bid", "ask"]))
        .cast(pa.string())
        .to_pandas()
    )
    level_no = np.broadcast_to(np.arange(1, levels + 1, dtype=np.int16), (n_snap, 2, levels))
    return pd.DataFrame(
        {
            "ts": _utc(np.repeat(day_ns + snap, 2 * levels)),
            "side": side,
            "level": level_no.ravel().astype(np.int16),
            "price": px.ravel(),
            "qty": qty.ravel(),
            "band_pct": np.full(n_snap * 2 * levels, np.nan),
            "notional": (px * qty).ravel(),
        }
    )


def _funding(seed: int, symbol: str, day: _dt.date, d: int, day_ns: int, path: _Path, signal_ic: float) -> pd.DataFrame:
    rng = _rng(seed, symbol, day.isoformat(), "funding")
    if d > 0:
        prev = _log_path(seed, symbol, signal_ic, d - 1).log_price
        ret_midnight = float(path.log_price[0] - prev[960])
    else:
        ret_midnight = 0.0
    ret_8h = np.array(
        [ret_midnight, path.log_price[480] - path.log_price[0], path.log_price[960] - path.log_price[480]]
    )
    rate = 1e-4 + 0.008 * ret_8h + 2.5e-5 * rng.standard_normal(3)
    rate = np.round(np.clip(rate, -3e-3, 3e-3), 8)
    return pd.DataFrame(
        {
            "ts": _utc(day_ns + np.array([0, 8, 16], dtype=np.int64) * 60 * NS_PER_MINUTE),
            "funding_rate": rate,
            "funding_interval_hours": np.full(3, 8, dtype=np.int16),
        }
    )


def _signal_frame(seed: int, symbol: str, day: _dt.date, day_ns: int) -> pd.DataFrame:
    values = _signal_values(seed, symbol, np.array([day.toordinal()]))[0]
    return pd.DataFrame(
        {
            "known_at": _utc(day_ns + np.arange(1, 25, dtype=np.int64) * 60 * NS_PER_MINUTE),
            "signal": values.astype(np.float64),
        }
    )


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def _day_start_ns(day: _dt.date) -> int:
    return (day - _dt.date(1970, 1, 1)).days * NS_PER_DAY


def planted_signal(symbol: str, day: _dt.date, config: SimulatorConfig = SimulatorConfig()) -> pd.DataFrame:
    """The ``planted_signal`` frame of :func:`simulate_day`, without simulating the day.

    Depends on ``(config.seed, symbol, day)`` only (not on ``signal_ic``).
    """
    schemas.validate_symbol(symbol)
    d = _day_index(day)
    day = SIMULATOR_EPOCH + _dt.timedelta(days=d)
    return _signal_frame(int(config.seed), symbol, day, _day_start_ns(day))


def simulate_day(symbol: str, day: _dt.date, config: SimulatorConfig = SimulatorConfig()) -> SimulatedDay:
    """Simulate one UTC day of ``symbol``; a pure function of ``(config, symbol, day)``.

    Raises ``ValueError`` for days outside ``[SIMULATOR_EPOCH, SIMULATOR_END]``
    and :class:`factor_core.schemas.InvalidSymbolError` for malformed symbols.
    """
    schemas.validate_symbol(symbol)
    d = _day_index(day)
    day = SIMULATOR_EPOCH + _dt.timedelta(days=d)
    seed = int(config.seed)
    signal_ic = float(config.signal_ic)
    day_ns = _day_start_ns(day)
    prof = _profile(symbol)
    key = (seed, symbol, day.isoformat())

    path = _log_path(seed, symbol, signal_ic, d)
    interval_ns = int(config.book_interval_s) * NS_PER_SECOND
    snap = np.arange(NS_PER_DAY // interval_ns, dtype=np.int64) * interval_ns
    try:
        micro = simulate_microstructure(
            _rng(*key, "trades"), _rng(*key, "quotes"), prof, path,
            float(config.trades_per_minute), float(config.quote_updates_per_minute), snap,
        )
        ticks, lots = book_levels(_rng(*key, "book"), prof, path, micro, int(config.book_levels))
    except ValueError as exc:
        raise ValueError(f"{symbol} {day.isoformat()}: {exc}") from exc
    n = micro.print_ts.size
    if n >= 10**9:
        raise ValueError(f"{symbol} {day}: {n} trades exceed the trade_id day block of 1e9")

    price = _to_float(micro.print_ticks, prof.tick_decimals)
    qty = _to_float(micro.print_lots, prof.lot_decimals)
    ibm = ~micro.print_buy
    counts = np.bincount(micro.print_ts // NS_PER_MINUTE, minlength=_MINUTES)
    trades = pd.DataFrame(
        {
            "trade_id": d * 10**9 + np.arange(n, dtype=np.int64),
            "ts": _utc(day_ns + micro.print_ts),
            "price": price,
            "qty": qty,
            "is_buyer_maker": ibm,
        }
    )
    quotes = pd.DataFrame(
        {
            "ts": _utc(day_ns + micro.quote_ts),
            "bid_price": _to_float(micro.quote_bid, prof.tick_decimals),
            "bid_qty": _to_float(micro.quote_bid_lots, prof.lot_decimals),
            "ask_price": _to_float(micro.quote_ask, prof.tick_decimals),
            "ask_qty": _to_float(micro.quote_ask_lots, prof.lot_decimals),
        }
    )
    return SimulatedDay(
        klines=_klines(day_ns, counts, price, qty, ibm),
        trades=trades,
        book=_book_frame(day_ns, snap, ticks, lots, prof),
        funding=_funding(seed, symbol, day, d, day_ns, path, signal_ic),
        planted_signal=_signal_frame(seed, symbol, day, day_ns),
        quotes=quotes,
    )


def simulate_range(
    symbols: Iterable[str],
    start: _dt.date,
    end: _dt.date,
    config: SimulatorConfig = SimulatorConfig(),
) -> dict[tuple[str, _dt.date], SimulatedDay]:
    """Simulate every ``(symbol, day)`` with ``start <= day <= end`` (inclusive).

    A convenience loop over :func:`simulate_day`; each entry is identical to
    what ``simulate_day`` returns for that partition alone.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    symbols = list(symbols)
    out: dict[tuple[str, _dt.date], SimulatedDay] = {}
    for offset in range((end - start).days + 1):
        day = start + _dt.timedelta(days=offset)
        for symbol in symbols:
            out[(symbol, day)] = simulate_day(symbol, day, config)
    return out
