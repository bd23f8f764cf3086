"""Duplicate policy of every archive parser, and the sort into canonical order.

Rows that are exact copies of an earlier row (same key, same values) are
dropped and counted (``duplicates_dropped`` in the parse metadata, plus a log
warning); two rows with the same key but different values are an error naming
both lines and the differing column.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pyarrow as pa

from .columns import to_numpy
from .csvread import ParseContext

log = logging.getLogger(__name__)


def dedupe_sort(
    table: pa.Table, ctx: ParseContext, keys: Sequence[np.ndarray], key_names: Sequence[str],
    sort_keys: Sequence[np.ndarray] | None = None,
) -> tuple[pa.Table, int]:
    """Drop exact duplicate rows (same key, same values), fail on conflicting ones,
    then sort by ``sort_keys`` (default ``keys``; first = most significant)."""
    n = table.num_rows
    order = np.lexsort(tuple(reversed(keys))) if len(keys) > 1 else np.argsort(keys[0], kind="stable")
    same = np.ones(max(n - 1, 0), dtype=bool)
    for key in keys:
        k = key[order]
        same &= k[1:] == k[:-1]
    dropped = 0
    if same.any():
        first_idx = order[:-1][same]
        dup_idx = order[1:][same]
        for name in table.column_names:
            col = to_numpy(table.column(name))
            a, b = col[first_idx], col[dup_idx]
            eq = a == b
            if col.dtype.kind == "f":
                eq |= np.isnan(a) & np.isnan(b)
            if not eq.all():
                i = int(np.flatnonzero(~eq)[0])
                row_a, row_b = sorted((int(first_idx[i]), int(dup_idx[i])))
                key_text = ", ".join(
                    f"{kn}={_fmt(keys[j][row_a])}" for j, kn in enumerate(key_names)
                )
                raise ctx.error(
                    f"conflicting duplicate rows for {key_text}: line {ctx.line_of(row_a)} has "
                    f"{name}={_fmt(col[row_a])}, this line has {_fmt(col[row_b])}",
                    row=row_b, column=name, value=_fmt(col[row_b]),
                )
        keep = np.ones(n, dtype=bool)
        keep[dup_idx] = False
        dropped = int((~keep).sum())
        log.warning("%s: dropped %d exact duplicate row(s)", ctx.source, dropped)
        table = table.filter(pa.array(keep))
        keys = [k[keep] for k in keys]
        if sort_keys is not None:
            sort_keys = [k[keep] for k in sort_keys]
    skeys = list(sort_keys if sort_keys is not None else keys)
    if not is_sorted(skeys):
        order = np.lexsort(tuple(reversed(skeys)))
        table = table.take(pa.array(order))
    return table, dropped


def _fmt(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def is_sorted(keys: Sequence[np.ndarray]) -> bool:
    """True if rows are in non-decreasing lexicographic order of ``keys``."""
    undecided = None
    for k in keys:
        a, b = k[:-1], k[1:]
        bad = a > b
        if undecided is not None:
            bad &= undecided
        if bad.any():
            return False
        eq = a == b
        undecided = eq if undecided is None else (undecided & eq)
        if not undecided.any():
            return True
    return True
