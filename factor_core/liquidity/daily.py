"""Daily liquidity of one symbol-day with explicit history: ``compute_daily`` (``docs/liquidity.md``).

Every measure uses the day's own partitions only, except the two VPINs, which need what
earlier days left behind. That is handed over explicitly as the previous day's
:class:`LiquidityState` (a few dozen numbers, JSON-serialisable), never by reading
another day's raw data:

* ``vpin`` / ``vpin_bvc``: the bucket size is the mean base volume of up to
  :data:`VPIN_VOLUME_DAYS` *previous* days divided by :data:`VPIN_BUCKETS_PER_DAY`; the
  window of :data:`VPIN_WINDOW` buckets rolls across midnight (the open bucket and the
  last complete buckets are carried in the state);
* ``vpin_bvc`` also needs the previous day's 1-minute return std (``sigma`` of the bulk
  classification) and last close (the first minute's return).

So day ``d`` needs the state of day ``d-1``. :func:`rolling_vpin_state` rebuilds it from a
bounded window (day ``d-1`` poured afresh, sized by ``d-6 .. d-2``), which is what the
pipeline uses: a day's VPIN then depends on days ``d-6 .. d`` only. A missing or
non-adjacent previous state makes both VPINs null with a reason.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from factor_core.columns import ts_ns as _ts_ns
from factor_core.liquidity import estimators as E
from factor_core.liquidity.book import f64, is_empty
from factor_core.liquidity.matching import MAX_SNAPSHOT_AGE_S
from factor_core.liquidity.minute import minute_liquidity, trade_arrays
from factor_core.timeutil import NS_PER_DAY, NS_PER_MINUTE

#: VPIN: a bucket holds 1/50 of the previous days' mean daily volume (Easley, López de Prado & O'Hara 2012).
VPIN_BUCKETS_PER_DAY = 50
#: VPIN: the value is the mean imbalance of the last 50 complete buckets (their n = 50).
VPIN_WINDOW = 50
#: VPIN: previous days whose mean volume sets the bucket size (at least one is needed).
VPIN_VOLUME_DAYS = 5
#: Kyle's lambda (Hasbrouck 2009): 5-minute intervals; at least this many with trades.
KYLE_INTERVAL_NS = 5 * NS_PER_MINUTE
KYLE_MIN_INTERVALS = 24
#: The 1-minute linear price impact needs at least this many consecutive-minute returns.
IMPACT_MIN_MINUTES = 10
_STATE_VERSION = 1

DAILY_KEYS: tuple[str, ...] = (
    "quoted_spread_bps",
    "quoted_spread_tw_bps",
    "effective_spread_bps",
    "effective_spread_matched_share",
    "depth_10bps_usd",
    "depth_50bps_usd",
    "depth_imbalance",
    "trade_imbalance",
    "kyle_lambda_bps_per_sqrt_usd",
    "price_impact_1m_bps_per_musd",
    "amihud_per_musd",
    "roll_spread_bps",
    "roll_spread_1m_bps",
    "cs_spread_bps",
    "vpin",
    "vpin_bvc",
    "n_trades",
    "volume",
    "quote_volume",
)

NO_TRADES = "no raw_trades rows for the day"
NO_KLINES = "no raw_klines rows for the day"
NO_BOOK = "no top-N raw_book snapshots for the day"
NO_QUOTES = "no raw_quotes rows for the day"


@dataclass(frozen=True)
class VpinBuckets:
    """Volume-clock buckets carried across midnight: ``|V_buy - V_sell| / V`` of the last
    complete buckets (oldest first, at most :data:`VPIN_WINDOW`) and the open bucket."""

    imbalances: tuple[float, ...] = ()
    fill: float = 0.0
    fill_buy: float = 0.0


@dataclass(frozen=True)
class LiquidityState:
    """What day ``day`` leaves for day ``day + 1`` (see the module docstring)."""

    day: _dt.date
    daily_volumes: tuple[float, ...]  # base volume of up to VPIN_VOLUME_DAYS days ending at `day`, oldest first
    last_close: float  # last 1-minute close of `day`
    return_sigma: float  # std (ddof 1) of `day`'s consecutive 1-minute log returns
    vpin: VpinBuckets = field(default_factory=VpinBuckets)
    vpin_bvc: VpinBuckets = field(default_factory=VpinBuckets)

    def to_json(self) -> str:
        def buckets(b: VpinBuckets) -> dict:
            return {"imbalances": list(b.imbalances), "fill": b.fill, "fill_buy": b.fill_buy}

        return json.dumps({
            "version": _STATE_VERSION, "day": self.day.isoformat(), "daily_volumes": list(self.daily_volumes),
            "last_close": _json_float(self.last_close), "return_sigma": _json_float(self.return_sigma),
            "vpin": buckets(self.vpin), "vpin_bvc": buckets(self.vpin_bvc),
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, what: str = "liquidity state") -> LiquidityState:
        """Parse :meth:`to_json` output; errors name ``what`` and the field."""
        try:
            raw = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}: not JSON ({exc}); re-materialize the previous day") from exc
        if not isinstance(raw, dict) or raw.get("version") != _STATE_VERSION:
            raise ValueError(f"{what}: field 'version' is {raw.get('version') if isinstance(raw, dict) else raw!r}, "
                             f"expected {_STATE_VERSION}; re-materialize the previous day")

        def get(key, conv):
            try:
                return conv(raw[key])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{what}: field {key!r} missing or invalid ({raw.get(key)!r}); "
                                 "re-materialize the previous day") from exc

        def buckets(key) -> VpinBuckets:
            b = get(key, dict)
            try:
                return VpinBuckets(tuple(float(x) for x in b["imbalances"]), float(b["fill"]), float(b["fill_buy"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{what}: field {key!r} invalid ({b!r}); re-materialize the previous day") from exc

        return cls(get("day", _dt.date.fromisoformat), get("daily_volumes", lambda v: tuple(float(x) for x in v)),
                   get("last_close", _float_or_nan), get("return_sigma", _float_or_nan),
                   buckets("vpin"), buckets("vpin_bvc"))


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _float_or_nan(x) -> float:
    return float("nan") if x is None else float(x)


@dataclass(frozen=True)
class DailyLiquidity:
    """One day's result: ``values`` (every ``DAILY_KEYS`` key; NaN where undefined),
    ``null_reasons`` (why each NaN value is NaN, for run metadata), ``notes`` (e.g. which
    quote source the effective spread used) and the ``state`` for the next day."""

    values: dict[str, float]
    null_reasons: dict[str, str]
    notes: dict[str, str]
    state: LiquidityState


def _in_day(df: pd.DataFrame | None, col: str, start: int) -> pd.DataFrame | None:
    if is_empty(df):
        return None
    ts = _ts_ns(df[col])
    keep = (ts >= start) & (ts < start + NS_PER_DAY)
    return df if keep.all() else df[keep]


def _finite_mean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _usable_previous(previous: LiquidityState | None, day: _dt.date) -> tuple[LiquidityState | None, str]:
    if previous is None:
        return None, "needs the liquidity state of the previous day (none given: first day of history or a gap)"
    if previous.day != day - _dt.timedelta(days=1):
        return None, (f"needs the liquidity state of {day - _dt.timedelta(days=1)}, got the state of "
                      f"{previous.day} (a gap in the history)")
    if not previous.daily_volumes or not np.isfinite(np.mean(previous.daily_volumes)) or np.mean(previous.daily_volumes) <= 0:
        return None, f"the previous day's state has no positive volume {previous.daily_volumes!r}"
    return previous, ""


def _vpin(buy: np.ndarray, sell: np.ndarray, bucket: float, carried: VpinBuckets) -> tuple[float, VpinBuckets, str]:
    imb, fill, fill_buy = E.pour_buckets(np.ascontiguousarray(buy, float), np.ascontiguousarray(sell, float),
                                        bucket, carried.fill, carried.fill_buy)
    window = (tuple(carried.imbalances) + tuple(float(x) for x in imb))[-VPIN_WINDOW:]
    state = VpinBuckets(window, float(fill), float(fill_buy))
    if len(window) < VPIN_WINDOW:
        return float("nan"), state, f"only {len(window)} of {VPIN_WINDOW} complete volume buckets so far"
    return float(np.mean(window)), state, ""


def _kyle_hasbrouck(t_ts, t_px, t_qty, t_buy, start: int) -> tuple[float, str]:
    """Hasbrouck (2009) lambda: ``r_n = lambda * S_n + u_n`` by OLS through the origin, 5-minute
    intervals of the UTC day; ``r_n = 1e4 ln(P_n / P_{n-1})``, ``P_n`` the last trade price at or
    before the end of interval ``n``; ``S_n`` the signed square-root dollar volume."""
    ok = np.isfinite(t_px) & np.isfinite(t_qty) & (t_px > 0) & (t_qty > 0)
    ts, px, qty, buy = t_ts[ok], t_px[ok], t_qty[ok], t_buy[ok]
    n_int = int(NS_PER_DAY // KYLE_INTERVAL_NS)
    interval = (ts - start) // KYLE_INTERVAL_NS
    signed_usd = np.where(buy, 1.0, -1.0) * px * qty
    s = E.signed_sqrt_dollar_volume(interval.astype(np.int64), signed_usd, n_int)
    ends = start + (np.arange(n_int, dtype=np.int64) + 1) * KYLE_INTERVAL_NS
    last = np.searchsorted(ts, ends, side="left") - 1  # last trade strictly before the interval's end
    p = np.where(last >= 0, px[np.maximum(last, 0)], np.nan)
    r = np.full(n_int, np.nan)
    r[1:] = 1e4 * np.log(p[1:] / p[:-1])
    with_trades = np.zeros(n_int, dtype=bool)
    with_trades[np.unique(interval[(interval >= 0) & (interval < n_int)])] = True
    usable = np.isfinite(r)
    if (with_trades & usable).sum() < KYLE_MIN_INTERVALS:
        return float("nan"), (f"only {(with_trades & usable).sum()} five-minute intervals with trades and a "
                              f"previous price, {KYLE_MIN_INTERVALS} needed")
    lam, _ = E.ols_through_origin(np.where(usable, r, np.nan), s)
    return float(lam), "" if np.isfinite(lam) else "no signed volume"


def compute_daily(day: _dt.date, *, klines: pd.DataFrame | None = None, trades: pd.DataFrame | None = None,
                  book: pd.DataFrame | None = None, quotes: pd.DataFrame | None = None,
                  minute: pd.DataFrame | None = None, previous: LiquidityState | None = None,
                  max_snapshot_age_s: float = MAX_SNAPSHOT_AGE_S) -> DailyLiquidity:
    """The daily liquidity summary of ``day`` (UTC) from that day's partitions and ``previous``.

    ``minute`` is ``minute_liquidity`` of the same day (computed from book / trades / klines /
    quotes when not given). Rows outside ``day`` are ignored, so nothing after the day is read.
    Formulas: ``docs/liquidity.md``.
    """
    if isinstance(day, _dt.datetime):
        day = day.date()
    start = int(pd.Timestamp(day, tz="UTC").value)
    klines = _in_day(klines, "open_time", start)
    trades = _in_day(trades, "ts", start)
    book = _in_day(book, "ts", start)
    quotes = _in_day(quotes, "ts", start)
    if minute is None:
        minute = minute_liquidity(book, trades, klines, quotes, max_snapshot_age_s=max_snapshot_age_s)
    minute = _in_day(minute, "ts", start)
    nan = float("nan")
    res: dict[str, float] = {k: nan for k in DAILY_KEYS}
    why: dict[str, str] = {}
    notes: dict[str, str] = {}

    def col(name: str) -> np.ndarray:
        return f64(minute, name) if minute is not None and name in minute.columns else np.empty(0)

    has_trades = not is_empty(trades)
    has_klines = not is_empty(klines)
    snapshots = float(np.nansum(col("n_snapshots")))
    tw = col("quoted_spread_tw_bps")
    has_quotes = bool(np.isfinite(tw).any())

    # ------------------------------------------------------------------ book / quote means
    for key in ("quoted_spread_bps", "depth_10bps_usd", "depth_50bps_usd", "depth_imbalance"):
        res[key] = _finite_mean(col(key))
        if not np.isfinite(res[key]):
            why[key] = NO_BOOK if snapshots == 0 else "no valid (uncrossed, two-sided) snapshot"
    res["quoted_spread_tw_bps"] = _finite_mean(tw)
    if not has_quotes:
        why["quoted_spread_tw_bps"] = NO_QUOTES if is_empty(quotes) else "no valid (uncrossed, two-sided) quote"

    # ------------------------------------------------------------------ trades
    t_ts, t_px, t_qty, t_buy = trade_arrays(trades)
    n_trades = float(np.nansum(col("n_trades"))) if has_trades else nan
    res["n_trades"] = n_trades
    notes["effective_spread_source"] = ("raw_quotes (quote in force)" if has_quotes else
                                        f"raw_book (top-N snapshot at most {max_snapshot_age_s:g} s old)"
                                        if snapshots else "none")
    if has_trades:
        w, e = col("effective_notional"), col("effective_spread_bps")
        ok = np.isfinite(e) & (w > 0)
        matched = float(np.nansum(col("n_trades_matched")))
        res["effective_spread_matched_share"] = matched / n_trades if n_trades > 0 else nan
        if ok.any():
            res["effective_spread_bps"] = float(np.sum(e[ok] * w[ok]) / np.sum(w[ok]))
        else:
            why["effective_spread_bps"] = (f"no trade has a valid quote in force ({notes['effective_spread_source']})"
                                           if has_quotes or snapshots else f"{NO_QUOTES} and {NO_BOOK}")
        buy, sell = float(np.nansum(col("buy_volume"))), float(np.nansum(col("sell_volume")))
        res["trade_imbalance"] = (buy - sell) / (buy + sell) if buy + sell > 0 else nan
        res["kyle_lambda_bps_per_sqrt_usd"], reason = _kyle_hasbrouck(t_ts, t_px, t_qty, t_buy, start)
        if reason:
            why["kyle_lambda_bps_per_sqrt_usd"] = reason
        cov, npair = E.roll_autocovariance(t_px)
        res["roll_spread_bps"], reason = _roll(cov, npair, "trade-by-trade")
        if reason:
            why["roll_spread_bps"] = reason
    else:
        for key in ("n_trades", "effective_spread_bps", "effective_spread_matched_share", "trade_imbalance",
                    "kyle_lambda_bps_per_sqrt_usd", "roll_spread_bps", "vpin"):
            why[key] = NO_TRADES

    # ------------------------------------------------------------------ bars
    close = np.empty(0)
    r = np.empty(0)
    volume_base = nan
    if has_klines:
        kl = klines.sort_values("open_time", kind="stable")
        kts = _ts_ns(kl["open_time"])
        close, high, low = f64(kl, "close"), f64(kl, "high"), f64(kl, "low")
        qv, vol, tbqv = f64(kl, "quote_volume"), f64(kl, "volume"), f64(kl, "taker_buy_quote_volume")
        consecutive = np.r_[False, np.diff(kts) == NS_PER_MINUTE]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.r_[nan, np.log(close[1:] / close[:-1])]
        r[~consecutive] = nan
        res["quote_volume"] = float(np.nansum(qv))
        res["volume"] = volume_base = float(np.nansum(vol))
        with np.errstate(invalid="ignore", divide="ignore"):
            amihud = np.abs(r) / np.where(qv > 0, qv, nan) * 1e6
        res["amihud_per_musd"] = _finite_mean(amihud)
        if not np.isfinite(res["amihud_per_musd"]):
            why["amihud_per_musd"] = "no consecutive minutes with quote volume > 0"
        slope, n = E.ols_slope(r * 1e4, (2.0 * tbqv - qv) * 1e-6)
        if n >= IMPACT_MIN_MINUTES and np.isfinite(slope):
            res["price_impact_1m_bps_per_musd"] = float(slope)
        else:
            why["price_impact_1m_bps_per_musd"] = f"{n} usable minutes, {IMPACT_MIN_MINUTES} needed"
        cov, npair = E.roll_autocovariance(close)
        res["roll_spread_1m_bps"], reason = _roll(cov, npair, "1-minute close")
        if reason:
            why["roll_spread_1m_bps"] = reason
        cs = E.corwin_schultz_gap_adjusted(high, low, close)
        cs[~consecutive] = nan
        res["cs_spread_bps"] = _finite_mean(cs) * 1e4
        if not np.isfinite(res["cs_spread_bps"]):
            why["cs_spread_bps"] = "no pair of consecutive valid 1-minute bars"
    else:
        for key in ("quote_volume", "volume", "amihud_per_musd", "price_impact_1m_bps_per_musd",
                    "roll_spread_1m_bps", "cs_spread_bps", "vpin_bvc"):
            why[key] = NO_KLINES
        if has_trades:
            ok = np.isfinite(t_qty) & (t_qty > 0)
            volume_base = float(t_qty[ok].sum())

    # ------------------------------------------------------------------ VPIN (history)
    prev, prev_reason = _usable_previous(previous, day)
    bucket = float(np.mean(prev.daily_volumes)) / VPIN_BUCKETS_PER_DAY if prev is not None else nan
    vpin_state, bvc_state = VpinBuckets(), VpinBuckets()
    if has_trades:
        if prev is None:
            why["vpin"] = prev_reason
        else:
            ok = np.isfinite(t_qty) & (t_qty > 0)
            res["vpin"], vpin_state, reason = _vpin(np.where(ok & t_buy, t_qty, 0.0), np.where(ok & ~t_buy, t_qty, 0.0),
                                                    bucket, prev.vpin)
            if reason:
                why["vpin"] = reason
    if has_klines:
        sigma = prev.return_sigma if prev is not None else nan
        if prev is None:
            why["vpin_bvc"] = prev_reason
        elif not (np.isfinite(sigma) and sigma > 0):
            why["vpin_bvc"] = f"the previous day's 1-minute return std is {sigma!r}"
        else:
            r_bvc = r.copy()
            first_minute = kts[0] == start
            if r_bvc.size and first_minute and np.isfinite(prev.last_close) and prev.last_close > 0:
                r_bvc[0] = math.log(close[0] / prev.last_close)  # across midnight, from the state
            share = E.bulk_buy_fraction(r_bvc, sigma)
            vol = np.where(np.isfinite(vol) & (vol > 0), vol, 0.0)
            res["vpin_bvc"], bvc_state, reason = _vpin(vol * share, vol * (1.0 - share), bucket, prev.vpin_bvc)
            if reason:
                why["vpin_bvc"] = reason

    # ------------------------------------------------------------------ state for the next day
    history = prev.daily_volumes if prev is not None else ()
    volumes = (history + ((volume_base,) if np.isfinite(volume_base) else ()))[-VPIN_VOLUME_DAYS:]
    finite_r = r[np.isfinite(r)]
    last_close = float(close[np.isfinite(close)][-1]) if np.isfinite(close).any() else (
        float(t_px[-1]) if t_px.size else nan)
    state = LiquidityState(day, tuple(float(v) for v in volumes), last_close,
                           float(np.std(finite_r, ddof=1)) if finite_r.size > 1 else nan, vpin_state, bvc_state)
    null_reasons = {k: why.get(k, "undefined") for k in DAILY_KEYS if not np.isfinite(res[k])}
    return DailyLiquidity(res, null_reasons, notes, state)


def _roll(cov: float, npair: int, what: str) -> tuple[float, str]:
    """Roll (1984): ``2 sqrt(-cov)`` in bps; undefined (NaN, with the reason) when ``cov >= 0``."""
    if not np.isfinite(cov):
        return float("nan"), f"{npair} {what} price-change pairs, 2 needed"
    if cov >= 0:
        return float("nan"), f"{what} autocovariance {cov:.3g} >= 0: Roll's estimator is undefined"
    return 2.0 * math.sqrt(-cov) * 1e4, ""


def daily_liquidity(book: pd.DataFrame | None, trades: pd.DataFrame | None, klines: pd.DataFrame | None,
                    minute: pd.DataFrame | None = None, *, quotes: pd.DataFrame | None = None,
                    previous: LiquidityState | None = None, day: _dt.date | None = None) -> dict[str, float]:
    """``compute_daily(...).values``: the numbers only, for callers that keep no state.

    ``day`` defaults to the UTC day of the first kline / trade / snapshot / minute row.
    Without ``previous`` both VPINs are NaN (they need the previous day's state).
    """
    if day is None:
        for df, c in ((klines, "open_time"), (trades, "ts"), (book, "ts"), (quotes, "ts"), (minute, "ts")):
            if not is_empty(df):
                day = pd.Timestamp(int(_ts_ns(df[c]).min()), tz="UTC").date()
                break
    if day is None:
        return {k: float("nan") for k in DAILY_KEYS}
    return compute_daily(day, klines=klines, trades=trades, book=book, quotes=quotes, minute=minute,
                         previous=previous).values


def _day_volume(klines: pd.DataFrame | None, trades: pd.DataFrame | None) -> float:
    """A day's base volume: from its klines, else from its trades (NaN without either)."""
    if not is_empty(klines):
        return float(np.nansum(f64(klines, "volume")))
    if not is_empty(trades):
        qty = f64(trades, "qty")
        return float(qty[np.isfinite(qty) & (qty > 0)].sum())
    return float("nan")


def rolling_vpin_state(day: _dt.date, *, klines_by_day: Mapping[_dt.date, pd.DataFrame],
                       trades_previous: pd.DataFrame | None) -> LiquidityState | None:
    """The state :func:`compute_daily` of ``day`` continues from, rebuilt from a bounded look-back.

    VPIN is defined so that a day's value depends on a fixed window of days, not
    on a chain reaching back to the start of history (which would make one
    corrected day change every later day): day d-1's buckets are poured afresh
    from its midnight, sized by the mean volume of the :data:`VPIN_VOLUME_DAYS`
    days before it (d-6..d-2), and day d continues them. So VPIN of day d reads
    the trades of d-1 and d and the bars of d-6..d. ``klines_by_day`` holds the
    bars of d-6..d-1 that exist; ``trades_previous`` the trades of d-1.
    Returns None when day d-1 has no data (first day of history or a gap).
    """
    d1, d2 = day - _dt.timedelta(days=1), day - _dt.timedelta(days=2)
    if is_empty(klines_by_day.get(d1)) and is_empty(trades_previous):
        return None
    history = [d2 - _dt.timedelta(days=i) for i in reversed(range(VPIN_VOLUME_DAYS))]
    volumes = tuple(v for v in (_day_volume(klines_by_day.get(d), None) for d in history) if np.isfinite(v))
    seed = None
    if volumes:
        before = klines_by_day.get(d2)
        close = f64(before, "close") if not is_empty(before) else np.empty(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.log(close[1:] / close[:-1]) if close.size > 1 else np.empty(0)
        r = r[np.isfinite(r)]
        seed = LiquidityState(d2, volumes, float(close[np.isfinite(close)][-1]) if np.isfinite(close).any() else float("nan"),
                              float(np.std(r, ddof=1)) if r.size > 1 else float("nan"))
    return compute_daily(d1, klines=klines_by_day.get(d1), trades=trades_previous, previous=seed).state
