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
  (``purpose`` = idio path, trades, book, funding), ``(seed, day)`` for the
  market path and ``(seed, symbol)`` / ``(seed,)`` for the midnight horizons.
  So the minute close path depends on ``seed`` and ``signal_ic`` only, and
  e.g. changing the book settings never changes the trades;
* a counter-based hash (splitmix64 + Box-Muller) for values another day must
  be able to recompute cheaply: the planted signal and the aggressor side of
  each day's last trade.

Price continuity across midnight (the market trades 24/7) comes from a
per-symbol *horizon*: one draw per day from :data:`SIMULATOR_EPOCH` to
:data:`SIMULATOR_END` gives the log price at every UTC midnight (a slowly
mean-reverting random walk, cached per symbol). Day D's minute path is a
bridge from midnight D to midnight D+1, so day D opens exactly where day D-1
closed no matter which of them is computed first.

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
times the gap to the target, which keeps the seasonality and clustering.

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
signal. The measured cross-sectional Spearman IC is slightly below ``ic``
(0.097 +- 0.004 for ic = 0.1 over 50 symbols x 61 days): ranks of normals
(``6/pi * asin(ic/2)``), unequal idiosyncratic vol levels and the beta
dispersion of the market part all dilute it a little.

Microstructure conventions
--------------------------
* Prices are integer multiples of a power-of-ten tick, quantities of a
  power-of-ten lot; floats are ``ticks / 10**decimals`` (the double nearest to
  the decimal value). Tick, lot, base price and beta depend on the symbol only
  (not the seed).
* Trades: ``n >= 1`` per minute (Poisson, seasonal and vol-driven; the last
  minute of the day has ``n >= 2``); ``ts`` strictly inside its minute and
  non-decreasing; prices follow a tick-grid Brownian bridge from the previous
  minute's close to this minute's close; ``is_buyer_maker`` follows the tick
  rule (uptick: buyer aggressor, ``False``; downtick: ``True``; zero tick:
  random). ``trade_id = day_index * 10**9 + i`` with ``day_index`` the days
  since :data:`SIMULATOR_EPOCH`, so ids are unique per symbol and increase
  across days.
* Klines are aggregated *from* the trades: OHLC from first/last/max/min,
  sums with ``np.add.reduceat`` in trade order (what a pandas groupby-sum of
  the trades in trade order returns bit for bit; taker-buy sums over the
  trades with ``is_buyer_maker == False`` only).
* Book: a top-N snapshot at every multiple of ``book_interval_s`` seconds of
  the day, ``00:00:00`` included and next midnight excluded (``86400 /
  book_interval_s`` snapshots, 1440 by default). A snapshot at ``ts`` shows
  the book after every trade strictly before ``ts``: the last trade printed at
  the ask if its aggressor was a buyer, at the bid otherwise, so it always
  lies in ``[best_bid, best_ask]``. The ``00:00:00`` snapshot therefore quotes
  the previous day's last trade (whose side both days derive from the
  counter hash). Rows are ordered by ts, then bid levels 1..N, then ask
  levels 1..N; ``band_pct`` is null and ``notional = price * qty``.
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
One default symbol-day takes ~15-30 ms; the first day of a new symbol adds
~10 ms (~40 ms with a planted signal) for its horizon.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa

from factor_core import schemas

__all__ = [
    "SIMULATOR_END",
    "SIMULATOR_EPOCH",
    "SimulatedDay",
    "SimulatorConfig",
    "planted_signal",
    "simulate_day",
    "simulate_range",
]

#: Earliest day the simulator can produce (start of the midnight horizon).
SIMULATOR_EPOCH: _dt.date = _dt.date(2017, 1, 1)
#: Last day the simulator can produce (end of the precomputed midnight horizon).
SIMULATOR_END: _dt.date = _dt.date(2035, 12, 31)

_N_DAYS = (SIMULATOR_END - SIMULATOR_EPOCH).days + 1
_MINUTES = 1440
_NS_PER_S = 1_000_000_000
_NS_PER_MIN = 60 * _NS_PER_S
_NS_PER_DAY = _MINUTES * _NS_PER_MIN
_VERSION = "factor-pipeline-sim-v1"  # bump to change every stream at once

# Model constants (daily units unless stated).
_MARKET_VOL = 0.022  # mean daily vol of the market factor
_MARKET_LOGVOL_PHI, _MARKET_LOGVOL_SD = 0.97, 0.30
_IDIO_LOGVOL_PHI, _IDIO_LOGVOL_SD = 0.95, 0.25
_LEVEL_REVERSION = math.exp(-1.0 / 365.0)  # keeps prices within ~e^+-1 of base
_DAILY_T_DF = 5.0
_MINUTE_T_DF = 5.0
_MARKET_SV_PHI, _MARKET_SV_SD = 0.98, 0.50  # minute-scale stochastic vol
_IDIO_SV_PHI, _IDIO_SV_SD = 0.98, 0.40


# --------------------------------------------------------------------------- #
# Public configuration and result types
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class SimulatorConfig:
    """Knobs of the simulator; every field is part of the determinism key.

    ``signal_ic`` is the planted correlation between ``planted_signal`` and the
    next hour's idiosyncratic log return (0 = no signal, returns do not depend
    on it). ``trades_per_minute`` is the day-average Poisson intensity before
    the seasonal/volatility modulation. ``book_interval_s`` must divide 86400.
    """

    seed: int = 7
    signal_ic: float = 0.0
    trades_per_minute: float = 12.0
    book_levels: int = 10
    book_interval_s: int = 60

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int | np.integer) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be an int, got {self.seed!r}")
        if not -1.0 < float(self.signal_ic) < 1.0:
            raise ValueError(f"signal_ic must lie in (-1, 1), got {self.signal_ic!r}")
        if not 0.0 < float(self.trades_per_minute) <= 100_000.0:
            raise ValueError(
                f"trades_per_minute must lie in (0, 100000], got {self.trades_per_minute!r}"
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

    ``planted_signal`` has columns ``known_at`` (``datetime64[ns, UTC]``, the
    hour boundaries 01:00 .. 24:00 of the day, i.e. the close of each hourly
    bar; 24:00 is the next midnight) and ``signal`` (float64), 24 rows.
    """

    klines: pd.DataFrame
    trades: pd.DataFrame
    book: pd.DataFrame
    funding: pd.DataFrame
    planted_signal: pd.DataFrame


# --------------------------------------------------------------------------- #
# Stable randomness
# --------------------------------------------------------------------------- #
def _digest(*parts: object) -> int:
    text = "|".join(str(p) for p in (_VERSION, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "little")


def _rng(*parts: object) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_digest(*parts))))


_M64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _counter_uniforms(key: int, counters: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) that depend only on ``(key, counter)``."""
    c = np.asarray(counters, dtype=np.int64).astype(np.uint64)
    h = _mix64(np.uint64(key & _M64) + (c + np.uint64(1)) * _GOLDEN)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _signal_values(seed: int, symbol: str, ordinals: np.ndarray) -> np.ndarray:
    """Planted N(0,1) signals, shape ``(len(ordinals), 24)``; column h-1 is T = h:00.

    Counter-based (Box-Muller on hashed counters) so that any day, including the
    previous one and the whole horizon at once, is cheap to recompute.
    """
    key = _digest(seed, symbol, "signal")
    base = np.asarray(ordinals, dtype=np.int64)[:, None] * 24 + np.arange(24, dtype=np.int64)
    u1 = _counter_uniforms(key, 2 * base)
    u2 = _counter_uniforms(key, 2 * base + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _closing_buyer_aggressor(seed: int, symbol: str, ordinal: int) -> bool:
    """Whether the last trade of the day ``ordinal`` has a buying aggressor."""
    u = _counter_uniforms(_digest(seed, symbol, "closing-side"), np.array([ordinal]))
    return bool(u[0] < 0.5)


# --------------------------------------------------------------------------- #
# Symbol profile and seasonality
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class _Profile:
    base_price: float
    tick_decimals: int  # tick = 10**-tick_decimals
    lot_decimals: int  # lot = 10**-lot_decimals
    beta: float
    idio_vol: float  # mean daily idiosyncratic vol
    trade_notional: float  # median trade size in quote units

    @property
    def log_base(self) -> float:
        return math.log(self.base_price)


# base price, beta, idio vol, median trade notional
_KNOWN = {
    "BTCUSDT": (40_000.0, 1.00, 0.010, 3_000.0),
    "ETHUSDT": (2_500.0, 1.10, 0.014, 2_000.0),
    "SOLUSDT": (100.0, 1.30, 0.022, 1_000.0),
    "BNBUSDT": (300.0, 0.85, 0.016, 800.0),
    "XRPUSDT": (0.6, 1.05, 0.020, 600.0),
}


@lru_cache(maxsize=4096)
def _profile(symbol: str) -> _Profile:
    """Static per-symbol properties, derived from the symbol alone."""
    raw = hashlib.blake2b(f"{_VERSION}|profile|{symbol}".encode(), digest_size=32).digest()
    u = [int.from_bytes(raw[i : i + 8], "little") / 2.0**64 for i in range(0, 32, 8)]
    if symbol in _KNOWN:
        base, beta, idio, notional = _KNOWN[symbol]
    else:
        base = float(f"{10.0 ** (u[0] * math.log10(5000.0)):.4g}")  # 1 .. 5000, log-uniform
        beta = 0.7 + 0.6 * u[1]
        idio = 0.016 * math.exp(0.5 * (u[2] - 0.5))
        notional = 300.0 * math.exp(1.6 * u[3])
    # tick ~ 1e-6..1e-5 of the price, lot worth 0.1..1 quote units
    tick_decimals = 5 - math.floor(math.log10(base))
    if symbol == "BTCUSDT":
        tick_decimals = 2
    lot_decimals = -math.ceil(math.log10(0.1 / base) - 1e-12)
    return _Profile(base, tick_decimals, lot_decimals, beta, idio, notional)


def _to_float(units: np.ndarray, decimals: int) -> np.ndarray:
    """Integer multiples of 10**-decimals as the nearest doubles."""
    units = units.astype(np.float64)
    if decimals >= 0:
        return units / float(10**decimals)
    return units * float(10 ** (-decimals))


def _seasonality() -> np.ndarray:
    """Per-minute variance/activity multiplier over the UTC day, mean 1."""
    t = (np.arange(_MINUTES) + 0.5) / 60.0

    def bump(center: float, width: float) -> np.ndarray:
        d = (t - center + 12.0) % 24.0 - 12.0
        return np.exp(-0.5 * (d / width) ** 2)

    g = 0.55 + 0.9 * bump(14.5, 1.6) + 0.35 * bump(1.0, 1.5) + 0.3 * bump(8.5, 1.2)
    return g / g.mean()


_SEASON = _seasonality()
_SEASON.setflags(write=False)
_HOUR_FRACTION = _SEASON.reshape(24, 60).sum(axis=1) / _MINUTES  # sums to 1
_SQRT_HOUR_FRACTION = np.sqrt(_HOUR_FRACTION)


# --------------------------------------------------------------------------- #
# Small numerical helpers
# --------------------------------------------------------------------------- #
def _ar1(z: np.ndarray, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) with marginal std ``sd`` driven by standard normals ``z``."""
    scale = sd * math.sqrt(1.0 - phi * phi)
    out = [0.0] * len(z)
    x = sd * float(z[0])
    out[0] = x
    for i, zi in enumerate(z[1:].tolist(), start=1):
        x = phi * x + scale * zi
        out[i] = x
    return np.array(out)


def _unit_t(rng: np.random.Generator, n: int, df: float) -> np.ndarray:
    return rng.standard_t(df, n) * math.sqrt((df - 2.0) / df)


def _reverting_levels(increments: np.ndarray) -> np.ndarray:
    """``L[0] = 0``, ``L[d+1] = a * L[d] + increments[d]`` (weak mean reversion)."""
    out = [0.0] * (len(increments) + 1)
    x = 0.0
    a = _LEVEL_REVERSION
    for i, e in enumerate(increments.tolist(), start=1):
        x = a * x + e
        out[i] = x
    return np.array(out)


def _bridge(innov: np.ndarray, var: np.ndarray, target: float) -> np.ndarray:
    """Cumulative path of ``innov`` pinned to ``target`` at the end.

    The correction is spread in proportion to each step's variance (the
    Gaussian conditional mean), so quiet minutes barely move.
    """
    x = np.cumsum(innov)
    w = np.cumsum(var)
    w /= w[-1]
    return x + w * (target - x[-1])


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


# --------------------------------------------------------------------------- #
# Midnight horizons (cached, computed once per seed / symbol)
# --------------------------------------------------------------------------- #
@lru_cache(maxsize=16)
def _market_horizon(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily vol ``sigma[d]`` and midnight level ``M[d]`` (``M[0] = 0``) of the market."""
    rng = _rng(seed, "market-horizon")
    logvol = _ar1(rng.standard_normal(_N_DAYS), _MARKET_LOGVOL_PHI, _MARKET_LOGVOL_SD)
    sigma = _MARKET_VOL * np.exp(logvol - 0.5 * _MARKET_LOGVOL_SD**2)
    level = _reverting_levels(sigma * _unit_t(rng, _N_DAYS, _DAILY_T_DF))
    _readonly(sigma, level)
    return sigma, level


def _drift_k(signal_ic: float) -> float:
    return signal_ic / math.sqrt(1.0 - signal_ic * signal_ic)


def _hourly_drift(
    seed: int, symbol: str, signal_ic: float, ordinals: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Planted idio drift per hour of each day, shape ``(len(ordinals), 24)``.

    Hour 0 of day D is driven by the signal published at 24:00 of D-1, hour h
    (1..23) by the one published at h:00 of D.
    """
    ordinals = np.asarray(ordinals, dtype=np.int64)
    if len(ordinals) > 1 and (np.diff(ordinals) == 1).all():  # contiguous: one pass
        both = _signal_values(seed, symbol, np.arange(ordinals[0] - 1, ordinals[-1] + 1))
        today, yesterday_last = both[1:], both[:-1, 23]
    else:
        today = _signal_values(seed, symbol, ordinals)
        yesterday_last = _signal_values(seed, symbol, ordinals - 1)[:, 23]
    drivers = np.concatenate([yesterday_last[:, None], today[:, :23]], axis=1)
    sigma_hour = np.asarray(sigma)[:, None] * _SQRT_HOUR_FRACTION[None, :]
    return _drift_k(signal_ic) * sigma_hour * drivers


@lru_cache(maxsize=512)
def _idio_horizon(seed: int, symbol: str, signal_ic: float) -> tuple[np.ndarray, np.ndarray]:
    """Daily idio vol ``sigma[d]`` and midnight level ``I[d]`` (``I[0] = 0``).

    The planted hourly drifts are part of the daily increments, so the
    intraday bridge only has to pin the noise.
    """
    prof = _profile(symbol)
    rng = _rng(seed, symbol, "idio-horizon")
    logvol = _ar1(rng.standard_normal(_N_DAYS), _IDIO_LOGVOL_PHI, _IDIO_LOGVOL_SD)
    sigma = prof.idio_vol * np.exp(logvol - 0.5 * _IDIO_LOGVOL_SD**2)
    increments = sigma * _unit_t(rng, _N_DAYS, _DAILY_T_DF)
    if signal_ic != 0.0:
        ordinals = SIMULATOR_EPOCH.toordinal() + np.arange(_N_DAYS, dtype=np.int64)
        increments = increments + _hourly_drift(seed, symbol, signal_ic, ordinals, sigma).sum(
            axis=1
        )
    level = _reverting_levels(increments)
    _readonly(sigma, level)
    return sigma, level


# --------------------------------------------------------------------------- #
# Intraday log-price path
# --------------------------------------------------------------------------- #
def _sv_multiplier(rng: np.random.Generator, phi: float, sd: float) -> np.ndarray:
    """Minute vol multiplier ``exp(h - sd^2)`` with ``E[mult^2] = 1``."""
    return np.exp(_ar1(rng.standard_normal(_MINUTES), phi, sd) - sd * sd)


@lru_cache(maxsize=64)
def _market_intraday(seed: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Market path relative to midnight at minute ends 1..1440, and minute variances."""
    sigma, level = _market_horizon(seed)
    day = SIMULATOR_EPOCH + _dt.timedelta(days=d)
    rng = _rng(seed, "market", day.isoformat())
    mult = _sv_multiplier(rng, _MARKET_SV_PHI, _MARKET_SV_SD)
    var = sigma[d] ** 2 * _SEASON / _MINUTES * mult**2
    innov = np.sqrt(var) * _unit_t(rng, _MINUTES, _MINUTE_T_DF)
    path = _bridge(innov, var, float(level[d + 1] - level[d]))
    _readonly(path, var)
    return path, var


def _boundary_log_price(prof: _Profile, m_level: np.ndarray, i_level: np.ndarray, d: int) -> float:
    """Log price at midnight starting day index ``d`` (the one formula both days use)."""
    return prof.log_base + prof.beta * float(m_level[d]) + float(i_level[d])


@dataclass(frozen=True)
class _Path:
    log_price: np.ndarray  # minute ends 0..1440 (0 = midnight open, 1440 = next midnight)
    close_ticks: np.ndarray  # int64 ticks, same grid
    var: np.ndarray  # total log-return variance of each minute (1440)
    vol_mult: np.ndarray  # sqrt(var / seasonal baseline), mean square ~1


@lru_cache(maxsize=32)
def _log_path(seed: int, symbol: str, signal_ic: float, d: int) -> _Path:
    """Minute-end log price path of day index ``d`` (cached: day d+1's funding reuses it)."""
    prof = _profile(symbol)
    m_sigma, m_level = _market_horizon(seed)
    i_sigma, i_level = _idio_horizon(seed, symbol, signal_ic)
    m_path, m_var = _market_intraday(seed, d)
    day = SIMULATOR_EPOCH + _dt.timedelta(days=d)

    rng = _rng(seed, symbol, day.isoformat(), "idio")
    mult = _sv_multiplier(rng, _IDIO_SV_PHI, _IDIO_SV_SD)
    i_var = i_sigma[d] ** 2 * _SEASON / _MINUTES * mult**2
    innov = np.sqrt(i_var) * _unit_t(rng, _MINUTES, _MINUTE_T_DF)
    target = float(i_level[d + 1] - i_level[d])
    if signal_ic != 0.0:
        drift = _hourly_drift(
            seed, symbol, signal_ic, np.array([day.toordinal()]), i_sigma[d : d + 1]
        )[0]
        i_path = _bridge(innov, i_var, target - float(drift.sum()))
        i_path = i_path + np.cumsum(np.repeat(drift / 60.0, 60))
    else:
        i_path = _bridge(innov, i_var, target)

    log_price = np.empty(_MINUTES + 1)
    log_price[0] = _boundary_log_price(prof, m_level, i_level, d)
    log_price[1:] = (
        prof.log_base + prof.beta * (float(m_level[d]) + m_path) + (float(i_level[d]) + i_path)
    )
    log_price[-1] = _boundary_log_price(prof, m_level, i_level, d + 1)
    close_ticks = np.maximum(np.rint(np.exp(log_price) * 10.0**prof.tick_decimals), 1.0).astype(
        np.int64
    )
    var = prof.beta**2 * m_var + i_var
    baseline = (prof.beta**2 * m_sigma[d] ** 2 + i_sigma[d] ** 2) * _SEASON / _MINUTES
    vol_mult = np.sqrt(var / baseline)
    _readonly(log_price, close_ticks, var, vol_mult)
    return _Path(log_price, close_ticks, var, vol_mult)


# --------------------------------------------------------------------------- #
# Frames
# --------------------------------------------------------------------------- #
def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).dt.tz_localize("UTC")


def _day_index(day: _dt.date) -> int:
    if isinstance(day, _dt.datetime):
        day = day.date()
    if not isinstance(day, _dt.date):
        raise TypeError(f"day must be a datetime.date, got {day!r}")
    if day < SIMULATOR_EPOCH:
        raise ValueError(
            f"cannot simulate {day.isoformat()}: it is before SIMULATOR_EPOCH "
            f"{SIMULATOR_EPOCH.isoformat()}"
        )
    if day > SIMULATOR_END:
        raise ValueError(
            f"cannot simulate {day.isoformat()}: it is after SIMULATOR_END "
            f"{SIMULATOR_END.isoformat()}"
        )
    return (day - SIMULATOR_EPOCH).days


def _simulate_trades(
    seed: int, symbol: str, day: _dt.date, path: _Path, config: SimulatorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One day of trades: per-minute counts, ts offsets (ns), price ticks, qty lots, ibm."""
    prof = _profile(symbol)
    rng = _rng(seed, symbol, day.isoformat(), "trades")

    activity = _SEASON * path.vol_mult
    lam = float(config.trades_per_minute) * activity / activity.mean()
    counts = np.maximum(rng.poisson(lam), 1).astype(np.int64)
    counts[-1] = max(counts[-1], 2)  # room to force the closing trade's side
    n = int(counts.sum())
    if n >= 10**9:
        raise ValueError(f"{symbol} {day}: {n} trades exceed the trade_id day block of 1e9")
    minute = np.repeat(np.arange(_MINUTES, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    # Timestamps strictly inside the minute, sorted (minute is the major key).
    ts = np.sort(minute * _NS_PER_MIN + rng.integers(1, _NS_PER_MIN, n))

    # Tick-grid Brownian bridge from the previous close to this minute's close.
    pos = np.arange(n, dtype=np.int64) - np.repeat(starts, counts) + 1  # 1..n_j
    frac = pos / np.repeat(counts, counts)
    prev_close = path.close_ticks[:-1].astype(np.float64)
    close = path.close_ticks[1:].astype(np.float64)
    sigma_ticks = close * np.sqrt(path.var)  # minute std in ticks
    step = np.repeat(sigma_ticks / np.sqrt(counts), counts) * rng.standard_normal(n)
    walk = np.cumsum(step)
    walk_before = np.concatenate([[0.0], walk])[starts]
    walk = walk - np.repeat(walk_before, counts)
    walk_end = walk[starts + counts - 1]
    level = np.repeat(prev_close, counts) + np.repeat(close - prev_close, counts) * frac
    price = np.rint(level + walk - frac * np.repeat(walk_end, counts))
    price = np.maximum(price, 1.0).astype(np.int64)
    price[starts + counts - 1] = path.close_ticks[1:]

    # The day's last trade has the side the next day's 00:00 snapshot assumes.
    last_close = int(path.close_ticks[-1])
    if _closing_buyer_aggressor(seed, symbol, day.toordinal()):
        price[-2] = min(price[-2], last_close - 1)
    else:
        price[-2] = max(price[-2], last_close + 1)

    tick_move = np.diff(price, prepend=path.close_ticks[0])
    coin = rng.random(n) < 0.5
    is_buyer_maker = np.where(tick_move == 0, coin, tick_move < 0)

    lot = 10.0 ** (-prof.lot_decimals)
    tick = 10.0 ** (-prof.tick_decimals)
    notional = prof.trade_notional * rng.lognormal(0.0, 1.1, n)
    qty_lots = np.maximum(np.rint(notional / (price * tick * lot)), 1.0).astype(np.int64)
    return counts, ts, price, qty_lots, is_buyer_maker


def _klines(
    day_ns: int, counts: np.ndarray, price: np.ndarray, qty: np.ndarray, ibm: np.ndarray
) -> pd.DataFrame:
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
            "open_time": _utc(day_ns + np.arange(_MINUTES, dtype=np.int64) * _NS_PER_MIN),
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


def _book(
    seed: int,
    symbol: str,
    day: _dt.date,
    day_ns: int,
    path: _Path,
    ts: np.ndarray,
    price: np.ndarray,
    ibm: np.ndarray,
    config: SimulatorConfig,
) -> pd.DataFrame:
    prof = _profile(symbol)
    rng = _rng(seed, symbol, day.isoformat(), "book")
    interval_ns = int(config.book_interval_s) * _NS_PER_S
    n_snap = _NS_PER_DAY // interval_ns
    levels = int(config.book_levels)
    snap = np.arange(n_snap, dtype=np.int64) * interval_ns

    # State after every trade strictly before the snapshot.
    last = np.searchsorted(ts, snap, side="left") - 1
    has_trade = last >= 0
    idx = np.maximum(last, 0)
    prev_buyer = _closing_buyer_aggressor(seed, symbol, day.toordinal() - 1)
    last_price = np.where(has_trade, price[idx], path.close_ticks[0])
    last_buyer = np.where(has_trade, ~ibm[idx], prev_buyer)
    vm = path.vol_mult[np.clip((snap - 1) // _NS_PER_MIN, 0, _MINUTES - 1)]

    spread = 1 + rng.poisson(1.5 * vm)
    best_bid = np.where(last_buyer, last_price - spread, last_price)
    best_ask = np.where(last_buyer, last_price, last_price + spread)
    gaps = np.zeros((n_snap, 2, levels), dtype=np.int64)
    if levels > 1:
        gaps[:, :, 1:] = 1 + rng.poisson(0.6 * vm[:, None, None], (n_snap, 2, levels - 1))
    away = np.cumsum(gaps, axis=2)
    ticks = np.empty((n_snap, 2, levels), dtype=np.int64)
    ticks[:, 0, :] = best_bid[:, None] - away[:, 0, :]
    ticks[:, 1, :] = best_ask[:, None] + away[:, 1, :]
    if ticks.min() < 1:
        raise ValueError(f"{symbol} {day}: book prices fell below one tick")
    px = _to_float(ticks, prof.tick_decimals)

    depth_notional = (
        2.0
        * prof.trade_notional
        * (1.0 + 0.5 * np.arange(levels))[None, None, :]
        * rng.lognormal(0.0, 0.6, (n_snap, 2, levels))
    )
    lots = np.maximum(np.rint(depth_notional / (px * 10.0 ** (-prof.lot_decimals))), 1.0)
    qty = _to_float(lots.astype(np.int64), prof.lot_decimals)

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


def _funding(
    seed: int, symbol: str, day: _dt.date, d: int, day_ns: int, path: _Path, signal_ic: float
) -> pd.DataFrame:
    rng = _rng(seed, symbol, day.isoformat(), "funding")
    if d > 0:
        prev = _log_path(seed, symbol, signal_ic, d - 1).log_price
        ret_midnight = float(path.log_price[0] - prev[960])
    else:
        ret_midnight = 0.0
    ret_8h = np.array(
        [
            ret_midnight,
            path.log_price[480] - path.log_price[0],
            path.log_price[960] - path.log_price[480],
        ]
    )
    rate = 1e-4 + 0.008 * ret_8h + 2.5e-5 * rng.standard_normal(3)
    rate = np.round(np.clip(rate, -3e-3, 3e-3), 8)
    return pd.DataFrame(
        {
            "ts": _utc(day_ns + np.array([0, 8, 16], dtype=np.int64) * 60 * _NS_PER_MIN),
            "funding_rate": rate,
            "funding_interval_hours": np.full(3, 8, dtype=np.int16),
        }
    )


def _signal_frame(seed: int, symbol: str, day: _dt.date, day_ns: int) -> pd.DataFrame:
    values = _signal_values(seed, symbol, np.array([day.toordinal()]))[0]
    return pd.DataFrame(
        {
            "known_at": _utc(day_ns + np.arange(1, 25, dtype=np.int64) * 60 * _NS_PER_MIN),
            "signal": values.astype(np.float64),
        }
    )


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def planted_signal(
    symbol: str, day: _dt.date, config: SimulatorConfig = SimulatorConfig()
) -> pd.DataFrame:
    """The ``planted_signal`` frame of :func:`simulate_day`, without simulating the day.

    Depends on ``(config.seed, symbol, day)`` only (not on ``signal_ic``).
    """
    schemas.validate_symbol(symbol)
    d = _day_index(day)
    day = SIMULATOR_EPOCH + _dt.timedelta(days=d)
    return _signal_frame(int(config.seed), symbol, day, _day_start_ns(day))


def _day_start_ns(day: _dt.date) -> int:
    return (day - _dt.date(1970, 1, 1)).days * _NS_PER_DAY


def simulate_day(
    symbol: str, day: _dt.date, config: SimulatorConfig = SimulatorConfig()
) -> SimulatedDay:
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

    path = _log_path(seed, symbol, signal_ic, d)
    counts, ts, price_ticks, qty_lots, ibm = _simulate_trades(seed, symbol, day, path, config)
    price = _to_float(price_ticks, prof.tick_decimals)
    qty = _to_float(qty_lots, prof.lot_decimals)

    trades = pd.DataFrame(
        {
            "trade_id": d * 10**9 + np.arange(len(price), dtype=np.int64),
            "ts": _utc(day_ns + ts),
            "price": price,
            "qty": qty,
            "is_buyer_maker": ibm.astype(bool),
        }
    )
    return SimulatedDay(
        klines=_klines(day_ns, counts, price, qty, ibm),
        trades=trades,
        book=_book(seed, symbol, day, day_ns, path, ts, price_ticks, ibm, config),
        funding=_funding(seed, symbol, day, d, day_ns, path, signal_ic),
        planted_signal=_signal_frame(seed, symbol, day, day_ns),
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
