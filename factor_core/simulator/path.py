"""Price path of the simulator: randomness, symbol profiles, seasonality, midnight horizons.

The minute-end log price path of a symbol-day (``log_path``) is a pure function of
``(seed, symbol, signal_ic, day)``; the microstructure (quotes, trades, book) is
built around it in :mod:`factor_core.simulator.microstructure`. The model is
described in the package docstring (:mod:`factor_core.simulator`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numba import njit


#: Earliest day the simulator can produce (start of the midnight horizon).
SIMULATOR_EPOCH: _dt.date = _dt.date(2017, 1, 1)
#: Last day the simulator can produce (end of the precomputed midnight horizon).
SIMULATOR_END: _dt.date = _dt.date(2035, 12, 31)

_N_DAYS = (SIMULATOR_END - SIMULATOR_EPOCH).days + 1
_MINUTES = 1440
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
    spread_bps: float  # typical quoted spread at average volatility and volume
    level_gap_bps: float  # book level k sits ~k * level_gap_bps beyond level k-1
    level_notional: float  # median notional of the first book level (quote units)

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
# quoted spread (bps), level gap (bps), first-level notional: majors tight and deep,
# alts wider and thinner (other symbols draw alt-like values from their hash).
_KNOWN_BOOK = {
    "BTCUSDT": (1.0, 2.0, 60_000.0),
    "ETHUSDT": (1.5, 2.5, 40_000.0),
    "SOLUSDT": (3.0, 4.0, 15_000.0),
    "BNBUSDT": (3.0, 4.0, 12_000.0),
    "XRPUSDT": (4.0, 4.5, 10_000.0),
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
    if symbol in _KNOWN_BOOK:
        spread, gap, level = _KNOWN_BOOK[symbol]
    else:
        raw = hashlib.blake2b(f"{_VERSION}|book-profile|{symbol}".encode(), digest_size=24).digest()
        v = [int.from_bytes(raw[i : i + 8], "little") / 2.0**64 for i in range(0, 24, 8)]
        spread = 2.0 * 4.0 ** v[0]  # 2 .. 8 bps, log-uniform
        gap = 4.0 + 2.0 * v[1]  # 4 .. 6 bps
        level = 2_000.0 * 5.0 ** v[2]  # 2k .. 10k quote units
    return _Profile(base, tick_decimals, lot_decimals, beta, idio, notional, spread, gap, level)


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
@njit(cache=True)
def _ar1_kernel(z: np.ndarray, phi: float, sd: float, scale: float) -> np.ndarray:
    # No fastmath: the recursion rounds exactly like the scalar Python loop it replaced.
    out = np.empty(z.size)
    x = sd * z[0]
    out[0] = x
    for i in range(1, z.size):
        x = phi * x + scale * z[i]
        out[i] = x
    return out


def _ar1(z: np.ndarray, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) with marginal std ``sd`` driven by standard normals ``z``."""
    return _ar1_kernel(np.ascontiguousarray(z, dtype=np.float64), phi, sd, sd * math.sqrt(1.0 - phi * phi))


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
