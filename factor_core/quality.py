"""Pure data-quality checks over canonical raw frames (schemas.py).

Every check has the shape ``check_x(df, day) -> CheckOutcome`` where ``df`` is a
pandas DataFrame or a pyarrow Table in a canonical raw schema and ``day`` the
partition's UTC day (``date``, ``"YYYY-MM-DD"``, or the whole partition key
``"YYYY-MM-DD|SYMBOL"``, which the descriptions then name). Checks never raise on
bad data: they report it, with counts, shares and the first few offending values,
so the Dagster layer can wrap each one as an asset check. Nothing here imports
Dagster. ``check_trades_inside_quotes`` takes two frames (trades and the quotes
they printed against).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from factor_core.liquidity.matching import MAX_SNAPSHOT_AGE_S, prevailing_quotes
from factor_core.timeutil import NS_PER_SECOND, as_date, day_bounds_ns

MINUTE_NS = 60 * 10**9
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one check: ``passed``, a one-line ``description`` and ``details``
    (counts and the first few offending values, JSON-friendly)."""

    name: str
    passed: bool
    description: str
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.passed


# --------------------------------------------------------------------------- helpers


def _table(df: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(df, pa.Table):
        return df
    return pa.Table.from_pandas(df, preserve_index=False)


def _day_bounds(day: date | str) -> tuple[int, int, date | str]:
    """``(start_ns, end_ns, label)``; ``label`` prints as the day, or as the partition key
    ``"YYYY-MM-DD|SYMBOL"`` when that is what was given."""
    if isinstance(day, str) and "|" in day:
        return *day_bounds_ns(day.split("|", 1)[0]), day
    d = as_date(day)
    return *day_bounds_ns(d), d


def _ns(table: pa.Table, column: str) -> np.ndarray:
    col = table.column(column)
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)


def _values(table: pa.Table, column: str) -> np.ndarray:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False))


def _iso(ns: int) -> str:
    seconds, rest = divmod(int(ns), NS_PER_SECOND)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat() + (f" (+{rest} ns)" if rest else "")


def _time_column(table: pa.Table) -> str:
    for name in ("open_time", "ts"):
        if name in table.column_names:
            return name
    raise ValueError(f"no time column (open_time / ts) in {table.column_names}")


def _examples(values, limit: int = MAX_EXAMPLES) -> list:
    out = []
    for v in list(values)[:limit]:
        out.append(v.item() if isinstance(v, np.generic) else v)
    return out


def _minute_ranges(minutes: np.ndarray, day: date) -> list[str]:
    """[0,1,2,5] -> ['00:00-00:02', '00:05'] (minutes of the day, UTC)."""
    if len(minutes) == 0:
        return []
    cuts = np.flatnonzero(np.diff(minutes) != 1) + 1
    ranges = []
    for chunk in np.split(minutes, cuts):
        a, b = int(chunk[0]), int(chunk[-1])
        fa = f"{a // 60:02d}:{a % 60:02d}"
        ranges.append(fa if a == b else f"{fa}-{b // 60:02d}:{b % 60:02d}")
    return ranges


# --------------------------------------------------------------------------- klines


def check_klines_complete(df, day) -> CheckOutcome:
    """1,440 one-minute bars, one per minute of the UTC day; missing minutes as ranges."""
    table = _table(df)
    start, end, d = _day_bounds(day)
    ts = _ns(table, "open_time")
    inside = (ts >= start) & (ts < end)
    aligned = (ts - start) % MINUTE_NS == 0
    minutes = np.unique((ts[inside & aligned] - start) // MINUTE_NS)
    missing = np.setdiff1d(np.arange(1440), minutes)
    ranges = _minute_ranges(missing, d)
    misaligned = ts[inside & ~aligned]
    passed = len(missing) == 0 and len(misaligned) == 0 and table.num_rows == 1440
    details = {
        "rows": table.num_rows, "expected": 1440, "distinct_minutes": int(len(minutes)),
        "missing_count": int(len(missing)), "missing_ranges": ranges[:20],
        "missing_range_count": len(ranges), "misaligned_count": int(len(misaligned)),
        "misaligned_examples": [_iso(v) for v in misaligned[:MAX_EXAMPLES]],
        "outside_day_count": int((~inside).sum()),
    }
    if passed:
        desc = f"{d}: all 1440 minutes present"
    else:
        desc = (f"{d}: {len(minutes)} of 1440 minutes present, {len(missing)} missing"
                + (f" ({', '.join(ranges[:3])}{', ...' if len(ranges) > 3 else ''})" if ranges else "")
                + (f", {len(misaligned)} bars not on a minute boundary" if len(misaligned) else "")
                + (f", {table.num_rows} rows" if table.num_rows != len(minutes) else ""))
    return CheckOutcome("klines_complete", passed, desc, details)


def check_timestamps(df, day, *, column: str | None = None, strict: bool | None = None) -> CheckOutcome:
    """Timestamps inside the partition's UTC day and increasing.

    ``strict`` (default: True for klines ``open_time``, False for ``ts``, where
    several trades or book rows share a timestamp) requires strictly increasing.
    """
    table = _table(df)
    column = column or _time_column(table)
    strict = (column == "open_time") if strict is None else strict
    start, end, d = _day_bounds(day)
    ts = _ns(table, column)
    outside = ts[(ts < start) | (ts >= end)]
    diffs = np.diff(ts)
    bad = np.flatnonzero(diffs <= 0 if strict else diffs < 0)
    passed = len(outside) == 0 and len(bad) == 0
    order = "strictly increasing" if strict else "non-decreasing"
    details = {
        "rows": table.num_rows, "column": column, "strict": strict,
        "outside_day_count": int(len(outside)),
        "outside_day_examples": [_iso(v) for v in outside[:MAX_EXAMPLES]],
        "order_violations": int(len(bad)),
        "order_violation_examples": [
            {"row": int(i) + 1, "previous": _iso(ts[i]), "value": _iso(ts[i + 1])}
            for i in bad[:MAX_EXAMPLES]
        ],
    }
    if passed:
        desc = f"{d}: {column} {order} and inside the day ({table.num_rows} rows)"
    else:
        desc = f"{d}: {len(outside)} {column} value(s) outside the day, {len(bad)} not {order}"
    return CheckOutcome("timestamps", passed, desc, details)


def check_ohlc_consistent(df, day) -> CheckOutcome:
    """low <= open, close <= high and low <= high on every bar."""
    table = _table(df)
    _, _, d = _day_bounds(day)
    o, h, low, c = (_values(table, n).astype(float) for n in ("open", "high", "low", "close"))
    ok = (low <= o) & (low <= c) & (o <= h) & (c <= h) & (low <= h)
    bad = np.flatnonzero(~ok)  # NaN compares False -> reported too
    ts = _ns(table, "open_time")
    details = {
        "rows": table.num_rows, "violations": int(len(bad)),
        "examples": [
            {"open_time": _iso(ts[i]), "open": float(o[i]), "high": float(h[i]),
             "low": float(low[i]), "close": float(c[i])}
            for i in bad[:MAX_EXAMPLES]
        ],
    }
    desc = (f"{d}: OHLC consistent on all {table.num_rows} bars" if not len(bad)
            else f"{d}: {len(bad)} bar(s) violate low <= open, close <= high")
    return CheckOutcome("ohlc_consistent", not len(bad), desc, details)


def check_volumes_non_negative(df, day) -> CheckOutcome:
    """Volume columns (klines: volume, quote and taker volumes; trades: qty) >= 0."""
    table = _table(df)
    _, _, d = _day_bounds(day)
    cols = [n for n in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume",
                        "qty", "notional", "trade_count") if n in table.column_names]
    per_col = {}
    for name in cols:
        v = _values(table, name).astype(float)
        bad = np.flatnonzero(~(v >= 0))  # negative or NaN
        if len(bad):
            per_col[name] = {"count": int(len(bad)), "examples": _examples(v[bad])}
    passed = not per_col
    desc = (f"{d}: {', '.join(cols)} all >= 0" if passed
            else f"{d}: negative/NaN values in {', '.join(per_col)}")
    return CheckOutcome("volumes_non_negative", passed, desc,
                        {"rows": table.num_rows, "columns": cols, "violations": per_col})


# --------------------------------------------------------------------------- trades


def check_no_duplicate_trade_ids(df, day) -> CheckOutcome:
    table = _table(df)
    _, _, d = _day_bounds(day)
    ids = _values(table, "trade_id").astype(np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    dups = uniq[counts > 1]
    passed = len(dups) == 0
    details = {"rows": table.num_rows, "distinct": int(len(uniq)),
               "duplicated_ids": int(len(dups)), "extra_rows": int(len(ids) - len(uniq)),
               "examples": _examples(dups)}
    desc = (f"{d}: {len(ids)} trade ids, all distinct" if passed
            else f"{d}: {len(dups)} trade id(s) appear more than once ({len(ids) - len(uniq)} extra rows)")
    return CheckOutcome("no_duplicate_trade_ids", passed, desc, details)


def check_trades_in_day(df, day) -> CheckOutcome:
    """Every trade's ``ts`` inside the partition's UTC day."""
    table = _table(df)
    start, end, d = _day_bounds(day)
    ts = _ns(table, "ts")
    bad = ts[(ts < start) | (ts >= end)]
    passed = len(bad) == 0
    details = {"rows": table.num_rows, "outside_day_count": int(len(bad)),
               "examples": [_iso(v) for v in bad[:MAX_EXAMPLES]]}
    desc = (f"{d}: all {table.num_rows} trades inside the day" if passed
            else f"{d}: {len(bad)} trade(s) outside the day")
    return CheckOutcome("trades_in_day", passed, desc, details)


# --------------------------------------------------------------------------- book


def check_book_not_crossed(df, day) -> CheckOutcome:
    """Top-N snapshots: best bid < best ask at every timestamp, bids descending and
    asks ascending with level. Depth bands (no prices): cumulative depth
    non-decreasing with the band on each side (the band analogue of 'sane')."""
    table = _table(df)
    _, _, d = _day_bounds(day)
    pdf = table.select(["ts", "side", "level", "price", "qty"]).to_pandas()
    pdf["ts"] = _ns(table, "ts")
    has_price = pdf["price"].notna()
    details: dict[str, Any] = {"rows": table.num_rows}
    problems = []
    snaps = pdf[has_price]
    if len(snaps):
        best = snaps.sort_values("level").groupby(["ts", "side"])["price"].first().unstack("side")
        if {"bid", "ask"} <= set(best.columns):
            both = best.dropna()
            crossed = both[both["bid"] >= both["ask"]]
            details["snapshots"] = int(len(best))
            details["crossed_count"] = int(len(crossed))
            details["crossed_examples"] = [
                {"ts": _iso(ts), "best_bid": float(r.bid), "best_ask": float(r.ask)}
                for ts, r in crossed.head(MAX_EXAMPLES).iterrows()
            ]
            if len(crossed):
                problems.append(f"{len(crossed)} crossed snapshot(s)")
        s = snaps.sort_values(["ts", "side", "level"])
        step = s.groupby(["ts", "side"])["price"].diff()
        wrong = s[((s["side"] == "bid") & (step >= 0)) | ((s["side"] == "ask") & (step <= 0))]
        details["misordered_levels"] = int(len(wrong))
        if len(wrong):
            problems.append(f"{len(wrong)} level(s) out of price order")
    bands = pdf[~has_price]
    if len(bands):
        b = bands.sort_values(["ts", "side", "level"])
        dec = b[b.groupby(["ts", "side"])["qty"].diff() < 0]
        details["band_rows"] = int(len(b))
        details["band_depth_decreasing"] = int(len(dec))
        details["band_examples"] = [
            {"ts": _iso(r.ts), "side": r.side, "level": int(r.level), "qty": float(r.qty)}
            for r in dec.head(MAX_EXAMPLES).itertuples()
        ]
        if len(dec):
            problems.append(f"{len(dec)} band(s) with less cumulative depth than the band inside")
    passed = not problems
    desc = f"{d}: book not crossed ({table.num_rows} rows)" if passed else f"{d}: " + "; ".join(problems)
    return CheckOutcome("book_not_crossed", passed, desc, details)


# --------------------------------------------------------------------------- quotes

#: Default limit of ``check_trades_inside_quotes`` against a quote stream: a coherent feed prints
#: (almost) every trade at or inside the quote in force; a few per cent allows for feeds whose
#: trade-induced quote update carries a later timestamp than the trade.
MAX_OUTSIDE_SHARE = 0.05
#: Default limit when only book snapshots (at most ``MAX_SNAPSHOT_AGE_S`` old) are available:
#: quotes move within seconds, so some honest trades print outside an older snapshot's top.
MAX_OUTSIDE_SHARE_SNAPSHOTS = 0.25


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _quote_arrays(table: pa.Table) -> tuple[np.ndarray, ...]:
    return tuple(_values(table, c).astype(float) for c in ("bid_price", "ask_price", "bid_qty", "ask_qty"))


def check_quotes_in_time_order(df, day) -> CheckOutcome:
    """Quote rows non-decreasing in ``ts`` and inside the partition's UTC day (a quote is in
    force until the next row's ``ts``, so a row out of order corrupts every match after it)."""
    table = _table(df)
    start, end, d = _day_bounds(day)
    ts = _ns(table, "ts")
    n = table.num_rows
    back = np.flatnonzero(np.diff(ts) < 0)
    outside = np.flatnonzero((ts < start) | (ts >= end))
    passed = not len(back) and not len(outside)
    details = {
        "rows": n, "out_of_order": int(len(back)), "out_of_order_share": _share(len(back), max(n - 1, 0)),
        "out_of_order_examples": [{"row": int(i) + 1, "previous": _iso(ts[i]), "value": _iso(ts[i + 1])}
                                  for i in back[:MAX_EXAMPLES]],
        "outside_day_count": int(len(outside)), "outside_day_examples": [_iso(ts[i]) for i in outside[:MAX_EXAMPLES]],
    }
    if passed:
        desc = f"{d}: {n} quotes in time order inside the day"
    else:
        desc = (f"{d}: {len(back)} of {n} quotes ({details['out_of_order_share']:.2%}) earlier than the row before"
                f" and {len(outside)} outside the day; re-fetch or re-sort the partition's quotes by ts")
    return CheckOutcome("quotes_in_time_order", passed, desc, details)


def check_quotes_not_crossed(df, day, *, max_share: float = 0.0) -> CheckOutcome:
    """Best bid strictly below best ask on every quote: crossed (bid > ask) and locked (bid == ask)
    rows are counted separately; fails when their share exceeds ``max_share`` (default: any)."""
    table = _table(df)
    _, _, d = _day_bounds(day)
    bid, ask, _, _ = _quote_arrays(table)
    ts = _ns(table, "ts")
    n = table.num_rows
    crossed = np.flatnonzero(bid > ask)
    locked = np.flatnonzero(bid == ask)
    bad = len(crossed) + len(locked)
    share = _share(bad, n)
    passed = share <= max_share
    details = {
        "rows": n, "crossed": int(len(crossed)), "locked": int(len(locked)), "share": share, "max_share": max_share,
        "examples": [{"ts": _iso(ts[i]), "bid_price": float(bid[i]), "ask_price": float(ask[i])}
                     for i in np.sort(np.r_[crossed, locked])[:MAX_EXAMPLES]],
    }
    desc = (f"{d}: no crossed or locked quote among {n}" if not bad else
            f"{d}: {len(crossed)} crossed and {len(locked)} locked of {n} quotes ({share:.2%}, limit {max_share:.2%})")
    return CheckOutcome("quotes_not_crossed", passed, desc, details)


def check_quotes_positive(df, day) -> CheckOutcome:
    """Every quote has finite, positive prices and sizes on both sides (a zero-size best level is
    no quote: the book's top is misreported)."""
    table = _table(df)
    _, _, d = _day_bounds(day)
    bid, ask, bq, aq = _quote_arrays(table)
    ts = _ns(table, "ts")
    n = table.num_rows
    per_col = {}
    for name, v in (("bid_price", bid), ("ask_price", ask), ("bid_qty", bq), ("ask_qty", aq)):
        bad = np.flatnonzero(~(v > 0) | ~np.isfinite(v))
        if len(bad):
            per_col[name] = {"count": int(len(bad)), "share": _share(len(bad), n),
                             "examples": [{"ts": _iso(ts[i]), "value": float(v[i])} for i in bad[:MAX_EXAMPLES]]}
    bad_rows = int((~((bid > 0) & (ask > 0) & (bq > 0) & (aq > 0) & np.isfinite(bid + ask + bq + aq))).sum())
    passed = not per_col
    desc = (f"{d}: all {n} quotes have positive prices and sizes" if passed else
            f"{d}: {bad_rows} of {n} quotes ({_share(bad_rows, n):.2%}) with a zero, negative or missing "
            f"price or size in {', '.join(per_col)}")
    return CheckOutcome("quotes_positive", passed, desc, {"rows": n, "bad_rows": bad_rows, "violations": per_col})


def check_trades_inside_quotes(trades, quotes, day, *, book=None, max_outside_share: float = MAX_OUTSIDE_SHARE,
                               max_outside_share_snapshots: float = MAX_OUTSIDE_SHARE_SNAPSHOTS,
                               max_snapshot_age_s: float | None = None) -> CheckOutcome:
    """Share of trades printing outside the quote in force (``price < bid`` or ``price > ask``).

    The quote in force is the last ``raw_quotes`` row with ``ts <= trade ts`` (the rule of
    ``factor_core.liquidity.matching``); without quotes, the top of the last ``book`` snapshot
    at most ``max_snapshot_age_s`` old. Fails when the share of matched trades printing
    outside exceeds ``max_outside_share`` (``max_outside_share_snapshots`` against snapshots).

    A day with trades but neither quotes nor top-N snapshots **passes with a note**
    (``details["checked"] = False``): sources such as Binance spot publish no historical quote
    stream, and a blocking failure there would quarantine every such partition for a fact of the
    source, not a fault of the data; the liquidity layer then reports the effective spread as
    null with that reason. Trades matched to a crossed, locked or zero-size quote are counted
    (``matched_to_invalid_quote``), not judged; ``check_quotes_not_crossed`` fails on those quotes.
    """
    age = MAX_SNAPSHOT_AGE_S if max_snapshot_age_s is None else max_snapshot_age_s
    t = _table(trades)
    _, _, d = _day_bounds(day)
    ts = _ns(t, "ts")
    price = _values(t, "price").astype(float)
    order = np.argsort(ts, kind="stable")
    ts, price = ts[order], price[order]
    q = None if quotes is None else (quotes.to_pandas() if isinstance(quotes, pa.Table) else quotes)
    b = None if book is None else (book.to_pandas() if isinstance(book, pa.Table) else book)
    series, j = prevailing_quotes(ts, q, b, max_snapshot_age_s=age)
    n = len(ts)
    base = {"trades": n, "quote_source": series.source if len(series) else "none", "quotes": len(series)}
    if n == 0:
        return CheckOutcome("trades_inside_quotes", True, f"{d}: no trades to check", {**base, "checked": False})
    if len(series) == 0:
        note = (f"{d}: {n} trades but no quotes and no top-N book snapshots: not checked (the source "
                "publishes no quote stream; effective spreads are null for this partition)")
        return CheckOutcome("trades_inside_quotes", True, note, {**base, "checked": False})
    limit = max_outside_share if series.source == "quotes" else max_outside_share_snapshots
    matched = j >= 0
    jj = np.maximum(j, 0)
    valid = matched & series.valid[jj]
    bid, ask = series.bid[jj], series.ask[jj]
    outside = valid & ((price < bid) | (price > ask))
    n_valid, n_out = int(valid.sum()), int(outside.sum())
    share = _share(n_out, n_valid)
    idx = np.flatnonzero(outside)
    details = {
        **base, "checked": True, "matched": int(matched.sum()), "matched_share": _share(int(matched.sum()), n),
        "matched_to_invalid_quote": int((matched & ~valid).sum()), "outside": n_out, "outside_share": share,
        "limit": limit, "max_snapshot_age_s": age if series.source == "book" else None,
        "examples": [{"ts": _iso(ts[i]), "price": float(price[i]), "bid": float(bid[i]), "ask": float(ask[i])}
                     for i in idx[:MAX_EXAMPLES]],
    }
    what = "quote in force" if series.source == "quotes" else f"book top at most {age:g} s old"
    passed = share <= limit and n_valid > 0
    if n_valid == 0:
        desc = f"{d}: none of {n} trades has a valid {what}; cannot check"
    else:
        desc = (f"{d}: {n_out} of {n_valid} matched trades ({share:.2%}) print outside the {what}; "
                f"limit {limit:.2%} ({details['matched_share']:.1%} of {n} trades matched)")
    return CheckOutcome("trades_inside_quotes", passed, desc, details)


# --------------------------------------------------------------------------- bundles

KLINES_CHECKS: dict[str, Callable[..., CheckOutcome]] = {
    "klines_complete": check_klines_complete,
    "timestamps": check_timestamps,
    "ohlc_consistent": check_ohlc_consistent,
    "volumes_non_negative": check_volumes_non_negative,
}
TRADES_CHECKS: dict[str, Callable[..., CheckOutcome]] = {
    "no_duplicate_trade_ids": check_no_duplicate_trade_ids,
    "trades_in_day": check_trades_in_day,
    "timestamps": check_timestamps,
    "volumes_non_negative": check_volumes_non_negative,
}
BOOK_CHECKS: dict[str, Callable[..., CheckOutcome]] = {
    "book_not_crossed": check_book_not_crossed,
    "timestamps": check_timestamps,
    "volumes_non_negative": check_volumes_non_negative,
}
QUOTES_CHECKS: dict[str, Callable[..., CheckOutcome]] = {
    "quotes_in_time_order": check_quotes_in_time_order,
    "quotes_not_crossed": check_quotes_not_crossed,
    "quotes_positive": check_quotes_positive,
}
CHECKS_BY_ASSET = {"raw_klines": KLINES_CHECKS, "raw_trades": TRADES_CHECKS, "raw_book": BOOK_CHECKS,
                   "raw_quotes": QUOTES_CHECKS}


def run_checks(asset: str, df, day) -> list[CheckOutcome]:
    """All single-frame checks registered for ``asset`` (raw_klines / raw_trades / raw_book / raw_quotes)."""
    return [fn(df, day) for fn in CHECKS_BY_ASSET[asset].values()]
