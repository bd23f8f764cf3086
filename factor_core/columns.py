"""Column access shared by the pure computation modules."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ts_ns(values) -> np.ndarray:
    """int64 nanoseconds since the epoch (UTC) of a datetime-like column; naive values are taken as UTC.

    A ``datetime64[ns]`` / ``datetime64[ns, tz]`` column is returned as a zero-copy int64 view.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if len(s) == 0:
        return np.empty(0, dtype=np.int64)
    dt = s.dtype
    if isinstance(dt, pd.DatetimeTZDtype) or (isinstance(dt, np.dtype) and dt.kind == "M"):
        if getattr(dt, "unit", None) == "ns" or dt == np.dtype("datetime64[ns]"):
            return s.array.asi8  # epoch ns (UTC for tz-aware columns), no copy
    else:
        s = pd.to_datetime(s, utc=True)
    arr = s.array
    if getattr(arr, "tz", None) is None:
        arr = arr.tz_localize("UTC")
    return np.asarray(arr.as_unit("ns").asi8, dtype=np.int64)


def float64_column(df: pd.DataFrame, col: str) -> np.ndarray:
    """A column as a contiguous float64 array, missing values (``pd.NA`` included) as NaN."""
    return np.asarray(df[col].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
