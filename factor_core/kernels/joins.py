"""Joins of events onto bars without look-ahead: as-of values, daily rows with a lag, per-bin means."""

from __future__ import annotations

import numpy as np
from numba import njit

# The daily rows of ``lagged_day_values`` are keyed by midnight.
from factor_core.timeutil import NS_PER_DAY


@njit(cache=True)
def asof_values(query_ts, event_ts, event_values, strict=False):
    """Value of the latest event at or before each query time (as-of join, no look-ahead).

    Reference: ``pd.merge_asof(query, events, direction="backward",
    allow_exact_matches=not strict)``. With ``strict=True`` only events
    strictly before the query count (an event stamped exactly at the query
    time is ignored). ``event_ts`` must be sorted (int64 ns); ``query_ts`` must
    be non-decreasing. Events with a non-finite value are skipped (the previous
    finite one stays in force). Queries before the first event are NaN.
    """
    out = np.full(query_ts.size, np.nan)
    j = 0
    cur = np.nan
    for i in range(query_ts.size):
        q = query_ts[i]
        while j < event_ts.size and (event_ts[j] < q or (not strict and event_ts[j] == q)):
            if np.isfinite(event_values[j]):
                cur = event_values[j]
            j += 1
        out[i] = cur
    return out


@njit(cache=True)
def lagged_day_values(query_ts, day_ts, day_values, lag_days):
    """For each query time, the value of the daily row of the UTC day ``lag_days`` before the query's day.

    ``day_ts`` (int64 ns, sorted, unique) are UTC midnights, one per day;
    ``query_ts`` any int64 ns times. Exact-day lookup: when the row of that day
    is missing the value is NaN (nothing older is carried forward), so the
    result for a query depends only on that one day's row.
    Reference: ``days.reindex(query.floor("1D") - lag_days * 1D)``.
    """
    ns_day = np.int64(NS_PER_DAY)
    out = np.full(query_ts.size, np.nan)
    if day_ts.size == 0:
        return out
    for i in range(query_ts.size):
        target = (query_ts[i] // ns_day - lag_days) * ns_day
        j = np.searchsorted(day_ts, target)
        if j < day_ts.size and day_ts[j] == target:
            out[i] = day_values[j]
    return out


@njit(cache=True)
def prevailing_index(query_ts, event_ts):
    """For each query time, index of the last event at or before it (-1 if none). Both sorted int64.

    Reference: ``np.searchsorted(event_ts, query_ts, side="right") - 1``.
    """
    out = np.full(query_ts.size, -1, dtype=np.int64)
    j = -1
    for i in range(query_ts.size):
        q = query_ts[i]
        while j + 1 < event_ts.size and event_ts[j + 1] <= q:
            j += 1
        out[i] = j
    return out


@njit(cache=True)
def bin_nanmean(values, bin_idx, n_bins):
    """Mean of the finite ``values`` falling in each bin (``bin_idx`` int64, out-of-range ignored).

    Reference: ``pd.Series(values).groupby(bin_idx).mean()`` reindexed to
    ``range(n_bins)``. A bin without finite values is NaN.
    """
    s = np.zeros(n_bins)
    k = np.zeros(n_bins, dtype=np.int64)
    for i in range(values.size):
        b = bin_idx[i]
        x = values[i]
        if b >= 0 and b < n_bins and np.isfinite(x):
            s[b] += x
            k[b] += 1
    out = np.full(n_bins, np.nan)
    for b in range(n_bins):
        if k[b] > 0:
            out[b] = s[b] / k[b]
    return out
