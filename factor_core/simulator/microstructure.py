"""Microstructure of the simulator: quote refreshes, taker orders, matching, book snapshots.

Everything here is built around the minute-end log price path of
:mod:`factor_core.simulator.path` and is coherent by construction:

* the quote (best bid/ask with sizes) is *refreshed* at every minute open (its
  mid on the path) and at Poisson times inside the minute (mid on a Brownian
  bridge between the minute's end points); a refresh reprices the whole book
  around the new mid with the minute's level profile;
* taker orders arrive at Poisson times; a buy lifts the ask, a sell hits the
  bid. An order larger than the first level consumes it and walks on to the
  next levels of the book in force (the levels its snapshot shows), one print
  per level, as exchanges report a sweeping order (one aggregate trade per
  price). Each print reduces the displayed size; the quote row that records it
  is stamped 1 ns after the print, and the next print of the same sweep happens
  at that row's time, so **every print is at the quote in force** (last quote
  row with ``ts <= print ts``): buyer-initiated at the ask, seller-initiated at
  the bid;
* a book snapshot is the state in force at its timestamp: its first level is
  the quote in force, then the untouched walking levels of the current
  refresh, then deeper levels.

Timing: orders and Poisson refreshes sit on whole microseconds strictly inside
their minute; a sweep adds at most :data:`WALK_LEVELS` + 1 nanoseconds, so no
event can overtake a later one. Ties are resolved refresh, then snapshot, then
order; two orders in the same microsecond trade one after the other (the
second at the time of the first one's last quote row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from factor_core.simulator.path import _MINUTES, _SEASON, _Path, _Profile, _ar1
from factor_core.timeutil import NS_PER_MINUTE, NS_PER_US

#: Levels beyond the first that a sweeping order may walk (it never empties the last one).
WALK_LEVELS = 5

_US = 1_000  # ns per microsecond
_US_PER_MIN = 60_000_000
# Spread elasticities: wider with volatility, narrower with activity (volume).
_SPREAD_VOL_ELASTICITY = 0.7
_SPREAD_ACTIVITY_ELASTICITY = -0.4
_SPREAD_NOISE_SD = 0.15
# Participation: a per-minute volume multiplier independent of volatility.
_PART_PHI, _PART_SD = 0.9, 0.35
# Informed flow: P(buy) = 0.5 + _FLOW_TILT * tanh(standardised minute return).
_FLOW_TILT = 0.2
_LEVEL_SIZE_EXPONENT = 1.2  # level k holds ~(1 + k)^1.2 times the first level
_LEVEL_SIZE_SD = 0.5
_L1_SIZE_SD = 0.6
_GAP_SD = 0.25
_TRADE_SIZE_SD = 1.1


@dataclass(frozen=True)
class Microstructure:
    """Integer (tick / lot) arrays of one simulated day, ns offsets from midnight."""

    print_ts: np.ndarray
    print_ticks: np.ndarray
    print_lots: np.ndarray
    print_buy: np.ndarray
    quote_ts: np.ndarray
    quote_bid: np.ndarray
    quote_bid_lots: np.ndarray
    quote_ask: np.ndarray
    quote_ask_lots: np.ndarray
    # Snapshot states (one per snapshot time): level 1 and how far each side walked.
    snap_bid: np.ndarray
    snap_bid_lots: np.ndarray
    snap_ask: np.ndarray
    snap_ask_lots: np.ndarray
    snap_walked: np.ndarray  # (n_snap, 2): levels consumed since the refresh, bid / ask
    snap_ref_bid: np.ndarray  # level-1 bid / ask of the refresh in force
    snap_ref_ask: np.ndarray
    snap_minute: np.ndarray  # minute of the refresh in force (its level profile)
    walk_offset: np.ndarray  # (1440, 2, WALK_LEVELS) ticks from the refresh's level 1
    walk_lots: np.ndarray  # (1440, 2, WALK_LEVELS)


@njit(cache=True)
def _match(ref_ts, ref_min, ref_bid, ref_bid_lots, ref_ask, ref_ask_lots, walk_off, walk_lots,
           ord_ts, ord_buy, ord_lots, snap_ts):
    """Event loop: refreshes, snapshots and taker orders in time order (see module doc)."""
    nr, no, ns = ref_ts.size, ord_ts.size, snap_ts.size
    w = walk_off.shape[2]
    big = np.iinfo(np.int64).max
    p_ts = np.empty(no * (w + 1), np.int64)
    p_px = np.empty(no * (w + 1), np.int64)
    p_lots = np.empty(no * (w + 1), np.int64)
    p_buy = np.empty(no * (w + 1), np.bool_)
    q_ts = np.empty(nr + no * (w + 1), np.int64)
    q_bid = np.empty(nr + no * (w + 1), np.int64)
    q_bidl = np.empty(nr + no * (w + 1), np.int64)
    q_ask = np.empty(nr + no * (w + 1), np.int64)
    q_askl = np.empty(nr + no * (w + 1), np.int64)
    s_state = np.empty((ns, 4), np.int64)
    s_walk = np.empty((ns, 2), np.int64)
    s_ref = np.empty(ns, np.int64)
    i = k = m = npr = nq = 0
    clock = -1
    cur = -1
    bid = bidl = ask = askl = 0
    walked = np.zeros(2, np.int64)
    while True:
        t_ref = ref_ts[i] if i < nr else big
        t_snap = snap_ts[m] if m < ns else big
        t_ord = max(ord_ts[k], clock) if k < no else big
        if t_ref == big and t_snap == big and t_ord == big:
            break
        if t_ref <= t_snap and t_ref <= t_ord:
            cur = i
            bid, bidl, ask, askl = ref_bid[i], ref_bid_lots[i], ref_ask[i], ref_ask_lots[i]
            walked[0] = 0
            walked[1] = 0
            q_ts[nq], q_bid[nq], q_bidl[nq], q_ask[nq], q_askl[nq] = t_ref, bid, bidl, ask, askl
            nq += 1
            clock = t_ref
            i += 1
        elif t_snap <= t_ord:
            s_state[m, 0], s_state[m, 1], s_state[m, 2], s_state[m, 3] = bid, bidl, ask, askl
            s_walk[m, 0], s_walk[m, 1] = walked[0], walked[1]
            s_ref[m] = cur
            m += 1
        else:
            t = t_ord
            buy = ord_buy[k]
            side = 1 if buy else 0
            left = ord_lots[k]
            mi = ref_min[cur]
            while left > 0:
                avail = askl if buy else bidl
                px = ask if buy else bid
                take = min(left, avail if walked[side] < w else avail - 1)
                if take <= 0:
                    break  # the book's last walking level is never emptied
                p_ts[npr], p_px[npr], p_lots[npr], p_buy[npr] = t, px, take, buy
                npr += 1
                left -= take
                avail -= take
                if avail == 0:  # level consumed: the next level becomes the best
                    j = walked[side]
                    walked[side] = j + 1
                    avail = walk_lots[mi, side, j]
                    if buy:
                        px = ref_ask[cur] + walk_off[mi, side, j]
                    else:
                        px = ref_bid[cur] - walk_off[mi, side, j]
                if buy:
                    ask, askl = px, avail
                else:
                    bid, bidl = px, avail
                t += 1
                q_ts[nq], q_bid[nq], q_bidl[nq], q_ask[nq], q_askl[nq] = t, bid, bidl, ask, askl
                nq += 1
                clock = t
            k += 1
    return (p_ts[:npr], p_px[:npr], p_lots[:npr], p_buy[:npr],
            q_ts[:nq], q_bid[:nq], q_bidl[:nq], q_ask[:nq], q_askl[:nq], s_state, s_walk, s_ref)


def participation(rng: np.random.Generator) -> np.ndarray:
    """Per-minute volume multiplier (mean ~1), independent of volatility."""
    return np.exp(_ar1(rng.standard_normal(_MINUTES), _PART_PHI, _PART_SD) - 0.5 * _PART_SD**2)


@njit(cache=True)
def _orders(counts, off_us, u_side, z_size, p_buy, mid_px, notional_scale, size_sd, lot_scale):
    """Order times (ns, sorted inside each minute), buy flags and lots from the day's draws."""
    n = off_us.size
    ts = np.empty(n, np.int64)
    buy = np.empty(n, np.bool_)
    lots = np.empty(n, np.int64)
    a = 0
    for j in range(counts.size):
        b = a + counts[j]
        for r in range(a + 1, b):  # insertion sort: a minute holds a dozen orders
            v = off_us[r]
            q = r - 1
            while q >= a and off_us[q] > v:
                off_us[q + 1] = off_us[q]
                q -= 1
            off_us[q + 1] = v
        unit = notional_scale / (mid_px[j] * lot_scale)
        for r in range(a, b):
            ts[r] = j * NS_PER_MINUTE + off_us[r] * NS_PER_US
            buy[r] = u_side[r] < p_buy[j]
            lots[r] = np.int64(max(1.0, round(unit * math.exp(size_sd * z_size[r]))))
        a = b
    return ts, buy, lots


def simulate_orders(rng: np.random.Generator, prof: _Profile, path: _Path, part: np.ndarray,
                    trades_per_minute: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Taker orders: ns offsets (sorted, whole microseconds), buy flags, sizes in lots.

    Poisson counts per minute (at least one) with intensity ``trades_per_minute`` times the
    activity (seasonality x volatility x participation); the aggressor is a buyer with
    probability ``0.5 + 0.2 tanh(z_j)``, ``z_j`` the minute's standardised efficient return
    (informed flow: order flow and returns co-move, so Kyle's lambda is positive); notional
    ``trade_notional * LN(0, 1.1)``.
    """
    activity = _SEASON * path.vol_mult * part
    lam = float(trades_per_minute) * activity / activity.mean()
    counts = np.maximum(rng.poisson(lam), 1).astype(np.int64)  # every minute has a trade
    n = int(counts.sum())
    off_us = rng.integers(1, _US_PER_MIN, n)
    u_side = rng.random(n)
    z_size = rng.standard_normal(n)
    p_buy = 0.5 + _FLOW_TILT * np.tanh(np.diff(path.log_price) / np.sqrt(path.var))
    return _orders(counts, off_us, u_side, z_size, p_buy, np.exp(path.log_price[:-1]), prof.trade_notional,
                   _TRADE_SIZE_SD, 10.0 ** (-prof.lot_decimals))


@njit(cache=True)
def _refresh_quotes(counts, off_us, z, spread_sd, size_sd, log_price, var, spread_scale,
                    size_scale, tick_scale, lot_scale):
    """Refresh times (ns), minute, bid/ask ticks and lots from the day's draws (see simulate_refreshes)."""
    n = off_us.size
    ts = np.empty(n, np.int64)
    minute = np.empty(n, np.int64)
    bid = np.empty(n, np.int64)
    ask = np.empty(n, np.int64)
    bid_lots = np.empty(n, np.int64)
    ask_lots = np.empty(n, np.int64)
    frac = np.empty(n)
    bm = np.empty(n)
    a = 0
    for j in range(counts.size):
        b = a + counts[j]
        # the minute open is always a refresh; the others sit strictly inside the minute
        off_us[a] = 0
        for r in range(a + 2, b):  # insertion sort: a minute holds a handful of refreshes
            v = off_us[r]
            q = r - 1
            while q > a and off_us[q] > v:
                off_us[q + 1] = off_us[q]
                q -= 1
            off_us[q + 1] = v
        for r in range(a, b):
            frac[r] = off_us[r] / 60_000_000.0
        # Brownian bridge of the log mid between the minute's end points
        x = 0.0
        for r in range(a, b):
            bm[r] = x
            nxt = frac[r + 1] if r + 1 < b else 1.0
            x += z[0, r] * math.sqrt(var[j] * (nxt - frac[r]))
        lp0 = log_price[j]
        dlp = log_price[j + 1] - lp0
        for r in range(a, b):
            f = frac[r]
            mid = math.exp(lp0 + f * dlp + bm[r] - f * x) * tick_scale
            spread = max(1.0, round(mid * spread_scale[j] * math.exp(spread_sd * z[1, r]) * 1e-4))
            lo = round(mid - 0.5 * spread)
            ts[r] = j * NS_PER_MINUTE + off_us[r] * NS_PER_US
            minute[r] = j
            bid[r] = np.int64(lo)
            ask[r] = np.int64(lo + spread)
            lots = size_scale[j] * tick_scale / (mid * lot_scale)
            bid_lots[r] = np.int64(max(1.0, round(lots * math.exp(size_sd * z[2, r]))))
            ask_lots[r] = np.int64(max(1.0, round(lots * math.exp(size_sd * z[3, r]))))
        a = b
    return ts, minute, bid, bid_lots, ask, ask_lots


@njit(cache=True)
def _walk_profile(gap_unit_ticks, lots_unit, z, gap_sd, size_sd, size_exponent):
    """Per minute and side: cumulative tick offsets of walking levels 1..W from level 1, and their lots.

    The gap before walking level ``k`` is ``k * gap_unit * exp(gap_sd z)`` (at least a tick); its
    size ``lots_unit * (1 + k)^size_exponent * exp(size_sd z')``, ``z``/``z'`` = ``z[0]``/``z[1]``.
    """
    _, nm, _, w = z.shape
    offset = np.empty((nm, 2, w), np.int64)
    lots = np.empty((nm, 2, w), np.int64)
    level_factor = np.empty(w)
    for k in range(w):
        level_factor[k] = (2.0 + k) ** size_exponent
    for j in range(nm):
        for side in range(2):
            acc = 0
            for k in range(w):
                acc += np.int64(max(1.0, round(gap_unit_ticks[j] * (k + 1) * math.exp(gap_sd * z[0, j, side, k]))))
                offset[j, side, k] = acc
                size = lots_unit[j] * level_factor[k] * math.exp(size_sd * z[1, j, side, k])
                lots[j, side, k] = np.int64(max(1.0, round(size)))
    return offset, lots


def simulate_refreshes(rng: np.random.Generator, prof: _Profile, path: _Path, part: np.ndarray,
                       updates_per_minute: float):
    """Quote refreshes (ns offsets, minute, bid/ask ticks and lots) and the per-minute walking profile.

    The minute open is a refresh with its mid on the path; the Poisson refreshes inside the
    minute have their log mid on a Brownian bridge (the minute's variance) between the
    minute's end points. Spread (bps) = ``spread_bps * vol_mult^0.7 * activity^-0.4 * LN``,
    at least one tick; level-1 sizes scale with ``sqrt(activity)``.
    """
    tick_scale = 10.0**prof.tick_decimals
    lot_scale = 10.0 ** (-prof.lot_decimals)
    vm = path.vol_mult
    act = _SEASON * part
    counts = rng.poisson(float(updates_per_minute) * _SEASON * vm).astype(np.int64) + 1
    n = int(counts.sum())
    off_us = rng.integers(1, _US_PER_MIN, n)
    z = rng.standard_normal((4, n))
    spread_scale = prof.spread_bps * vm**_SPREAD_VOL_ELASTICITY * act**_SPREAD_ACTIVITY_ELASTICITY
    size_scale = prof.level_notional * np.sqrt(act)
    quotes = _refresh_quotes(counts, off_us, z, _SPREAD_NOISE_SD, _L1_SIZE_SD, path.log_price, path.var,
                             spread_scale, size_scale, tick_scale, lot_scale)
    if quotes[2].min() < 1:
        raise ValueError("quote fell below one tick")

    z = rng.standard_normal((2, _MINUTES, 2, WALK_LEVELS))
    open_ticks = np.exp(path.log_price[:-1]) * tick_scale
    walk_offset, walk_lots = _walk_profile(open_ticks * (prof.level_gap_bps * 1e-4),
                                           (prof.level_notional * tick_scale / lot_scale) * np.sqrt(act) / open_ticks,
                                           z, _GAP_SD, _LEVEL_SIZE_SD, _LEVEL_SIZE_EXPONENT)
    return (*quotes, walk_offset, walk_lots)


def simulate_microstructure(rng_trades: np.random.Generator, rng_quotes: np.random.Generator,
                            prof: _Profile, path: _Path, trades_per_minute: float,
                            updates_per_minute: float, snap_ts: np.ndarray) -> Microstructure:
    """Orders, refreshes and their matching for one day; snapshot states at ``snap_ts`` (ns offsets)."""
    part = participation(rng_trades)
    ord_ts, ord_buy, ord_lots = simulate_orders(rng_trades, prof, path, part, trades_per_minute)
    ref = simulate_refreshes(rng_quotes, prof, path, part, updates_per_minute)
    ref_ts, ref_min, ref_bid, ref_bidl, ref_ask, ref_askl, walk_offset, walk_lots = ref
    out = _match(ref_ts, ref_min, ref_bid, ref_bidl, ref_ask, ref_askl, walk_offset, walk_lots,
                 ord_ts, ord_buy, ord_lots, np.ascontiguousarray(snap_ts, dtype=np.int64))
    p_ts, p_px, p_lots, p_buy, q_ts, q_bid, q_bidl, q_ask, q_askl, s_state, s_walk, s_ref = out
    return Microstructure(
        p_ts, p_px, p_lots, p_buy, q_ts, q_bid, q_bidl, q_ask, q_askl,
        s_state[:, 0], s_state[:, 1], s_state[:, 2], s_state[:, 3], s_walk,
        ref_bid[s_ref], ref_ask[s_ref], ref_min[s_ref], walk_offset, walk_lots,
    )


@njit(cache=True)
def _book_levels(levels, snap_bid, snap_bid_lots, snap_ask, snap_ask_lots, snap_walked, ref_bid, ref_ask,
                 snap_minute, walk_off, walk_lots, gap_unit_ticks, lots_unit, z, gap_sd, size_sd, size_exponent):
    """Ticks and lots of every snapshot level, shape (n_snap, 2, levels); see book_levels."""
    n_snap = snap_bid.size
    w = walk_off.shape[2]
    gap_factor = np.empty(levels)
    size_factor = np.empty(levels)
    for d in range(levels):
        gap_factor[d] = w + d + 1.0
        size_factor[d] = (2.0 + w + d) ** size_exponent
    ticks = np.empty((n_snap, 2, levels), np.int64)
    lots = np.empty((n_snap, 2, levels), np.int64)
    for s in range(n_snap):
        mi = snap_minute[s]
        for side in range(2):
            sign = -1 if side == 0 else 1
            ref = ref_bid[s] if side == 0 else ref_ask[s]
            ticks[s, side, 0] = snap_bid[s] if side == 0 else snap_ask[s]
            lots[s, side, 0] = snap_bid_lots[s] if side == 0 else snap_ask_lots[s]
            lvl = 1
            for j in range(snap_walked[s, side], w):  # walking levels not yet consumed
                if lvl >= levels:
                    break
                ticks[s, side, lvl] = ref + sign * walk_off[mi, side, j]
                lots[s, side, lvl] = walk_lots[mi, side, j]
                lvl += 1
            px = ref + sign * walk_off[mi, side, w - 1]
            d = 0
            while lvl < levels:
                gap = max(1.0, round(gap_unit_ticks[s] * gap_factor[d] * math.exp(gap_sd * z[0, s, side, d])))
                px += sign * np.int64(gap)
                ticks[s, side, lvl] = px
                size = lots_unit[s] * size_factor[d] * math.exp(size_sd * z[1, s, side, d])
                lots[s, side, lvl] = np.int64(max(1.0, round(size)))
                lvl += 1
                d += 1
    return ticks, lots


def book_levels(rng_book: np.random.Generator, prof: _Profile, path: _Path, micro: Microstructure,
                levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot book in ticks and lots, shape ``(n_snap, 2, levels)`` (side 0 = bid, 1 = ask).

    Level 1 is the state in force; then the walking levels of the refresh in force not yet
    consumed; then deeper levels (gap before deep level ``d`` ~ ``(WALK_LEVELS + d) *
    level_gap_bps``) beyond the last walking level.
    """
    n_snap = micro.snap_bid.size
    tick_scale = 10.0**prof.tick_decimals
    lot_scale = 10.0 ** (-prof.lot_decimals)
    open_ticks = np.exp(path.log_price[:-1])[micro.snap_minute] * tick_scale
    z = rng_book.standard_normal((2, n_snap, 2, levels))
    ticks, lots = _book_levels(levels, micro.snap_bid, micro.snap_bid_lots, micro.snap_ask, micro.snap_ask_lots,
                               micro.snap_walked, micro.snap_ref_bid, micro.snap_ref_ask, micro.snap_minute,
                               micro.walk_offset, micro.walk_lots, open_ticks * (prof.level_gap_bps * 1e-4),
                               (prof.level_notional * tick_scale / lot_scale) / open_ticks, z, _GAP_SD,
                               _LEVEL_SIZE_SD, _LEVEL_SIZE_EXPONENT)
    if ticks.min() < 1:
        raise ValueError("book prices fell below one tick")
    return ticks, lots
