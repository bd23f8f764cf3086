"""Column checks shared by every archive parser: epoch unit detection, time windows, finiteness.

Epoch timestamps carry no unit marker: 13 digits are milliseconds, 16 digits
microseconds (Binance spot from 2025-01-01, Tardis.dev). One file has one unit.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa

from factor_core.schemas import TS
from factor_core.timeutil import NS_PER_UNIT, iso

from .csvread import ParseContext

_MS_LO, _MS_HI = 10**12, 10**13  # 13-digit epoch milliseconds (2001-09-09 .. 2286-11-20)
_US_LO, _US_HI = 10**15, 10**16  # 16-digit epoch microseconds


def to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column.to_numpy(zero_copy_only=False)


def unit_of(value: int) -> str | None:
    if _MS_LO <= value < _MS_HI:
        return "ms"
    if _US_LO <= value < _US_HI:
        return "us"
    return None


def epoch_to_utc_ns(values: np.ndarray, ctx: ParseContext, column: str) -> tuple[np.ndarray, str]:
    """Epoch integers in ms or µs (detected from magnitude) -> int64 ns since epoch, unit.

    Every value of one file must share the unit: a mix is an error naming the
    first line whose unit differs from the first row's.
    """
    lo, hi = int(values.min()), int(values.max())
    unit = unit_of(lo)
    if unit is None or unit_of(hi) != unit:
        first_unit = unit_of(int(values[0]))
        if first_unit is None:
            raise ctx.error(
                "timestamp is neither 13-digit epoch milliseconds nor 16-digit epoch "
                "microseconds", row=0, column=column, value=int(values[0]),
            )
        lo_b, hi_b = (_MS_LO, _MS_HI) if first_unit == "ms" else (_US_LO, _US_HI)
        bad = int(np.flatnonzero((values < lo_b) | (values >= hi_b))[0])
        other = unit_of(int(values[bad]))
        if other is None:
            raise ctx.error(
                "timestamp is neither 13-digit epoch milliseconds nor 16-digit epoch "
                "microseconds", row=bad, column=column, value=int(values[bad]),
            )
        raise ctx.error(
            f"file mixes timestamp units: line {ctx.line_of(0)} is in {first_unit} but this "
            f"line is in {other}", row=bad, column=column, value=int(values[bad]),
        )
    factor = NS_PER_UNIT[unit]
    return values * factor, unit


def check_range(ns: np.ndarray, start_ns: int, end_ns: int, ctx: ParseContext, column: str,
                 raw: np.ndarray | None, what: str) -> None:
    if len(ns) == 0:
        return
    if int(ns.min()) >= start_ns and int(ns.max()) < end_ns:
        return
    bad = int(np.flatnonzero((ns < start_ns) | (ns >= end_ns))[0])
    stamp = iso(int(ns[bad]))
    value = int(raw[bad]) if raw is not None else stamp
    raise ctx.error(f"row is outside the requested {what} (timestamp {stamp})",
                    row=bad, column=column, value=value)


def check_finite(table: pa.Table, ctx: ParseContext, columns: Iterable[str]) -> None:
    for name in columns:
        values = to_numpy(table.column(name))
        finite = np.isfinite(values)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise ctx.error("value is not a finite number", row=bad, column=name,
                            value=float(values[bad]))


def ts_array(ns: np.ndarray) -> pa.Array:
    return pa.array(ns, type=pa.int64()).view(TS)
