"""Pure data-quality checks over canonical raw frames (schemas.py).

Every check has the shape ``check_x(df, day) -> CheckOutcome`` where ``df`` is a
pandas DataFrame or a pyarrow Table in a canonical raw schema and ``day`` the
partition's UTC day (``date`` or ``"YYYY-MM-DD"``). Checks never raise on bad
data: they report it, with counts and the first few offending values, so the
Dagster layer can wrap each one as an asset check. Nothing here imports Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

MINUTE_NS = 60 * 10**9
DAY_NS = 86_400 * 10**9
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


def _day_bounds(day: date | str) -> tuple[int, int, date]:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    if isinstance(d, datetime):
        d = d.date()
    start = int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 10**9
    return start, start + DAY_NS, d


def _ns(table: pa.Table, column: str) -> np.ndarray:
    col = table.column(column)
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)


def _values(table: pa.Table, column: str) -> np.ndarray:
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False))


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(int(ns) // 10**9, tz=timezone.utc).isoformat() + (
        f" (+{int(ns) % 10**9} ns)" if int(ns) % 10**9 else "")


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
CHECKS_BY_ASSET = {"raw_klines": KLINES_CHECKS, "raw_trades": TRADES_CHECKS, "raw_book": BOOK_CHECKS}


def run_checks(asset: str, df, day) -> list[CheckOutcome]:
    """All checks registered for ``asset`` (raw_klines / raw_trades / raw_book)."""
    return [fn(df, day) for fn in CHECKS_BY_ASSET[asset].values()]
