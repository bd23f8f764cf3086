from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from dagster import (
    DailyPartitionsDefinition,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    TimeWindowPartitionMapping,
)

from factor_core import settings
from factor_core.schemas import validate_symbol

SYMBOLS_PARTITION_NAME = "symbols"
DATE_DIM = "date"
SYMBOL_DIM = "symbol"

PARTITIONS_START_DATE: dt.date = settings.get_date("FACTOR_PARTITIONS_START")

#: UTC days. The last partition is the last *complete* day (Dagster's default
#: end offset), so nothing is computed from a day still in progress.
DAILY = DailyPartitionsDefinition(start_date=PARTITIONS_START_DATE.isoformat(), timezone="UTC")

#: The instrument universe; grown by `factor-pipeline symbols add` or a sensor.
SYMBOLS = DynamicPartitionsDefinition(name=SYMBOLS_PARTITION_NAME)

#: Keys print as ``2024-01-02|BTCUSDT`` (Dagster sorts dimensions by name).
DAY_SYMBOL = MultiPartitionsDefinition({DATE_DIM: DAILY, SYMBOL_DIM: SYMBOLS})


def day_symbol_key(day: dt.date | str, symbol: str) -> MultiPartitionKey:
    """The multi-partition key of (day, symbol), validating the symbol first."""
    day_str = day if isinstance(day, str) else day.isoformat()
    dt.date.fromisoformat(day_str)  # raises on a malformed day
    return MultiPartitionKey({DATE_DIM: day_str, SYMBOL_DIM: validate_symbol(symbol)})


def previous_days_of_same_symbol(days: int, *, include_current: bool) -> MultiPartitionMapping:
    """(day, symbol) <- the previous ``days`` days of the same symbol (plus the day itself).

    On the first days of the calendar the window is clipped: the input is
    whatever history exists.
    """
    return MultiPartitionMapping(
        {
            DATE_DIM: DimensionPartitionMapping(
                DATE_DIM,
                TimeWindowPartitionMapping(
                    start_offset=-days, end_offset=0 if include_current else -1
                ),
            ),
            SYMBOL_DIM: DimensionPartitionMapping(SYMBOL_DIM, IdentityPartitionMapping()),
        }
    )


def previous_days(days: int, *, include_current: bool) -> TimeWindowPartitionMapping:
    """day <- the previous ``days`` days (plus the day itself)."""
    return TimeWindowPartitionMapping(start_offset=-days, end_offset=0 if include_current else -1)


def next_days(days: int) -> TimeWindowPartitionMapping:
    """day <- the following ``days`` days (not the day itself): labels that need the future.

    The last partition of the calendar maps to nothing; a day whose next day is not
    materialized yet reads nothing (with ``allow_missing_partitions``).
    """
    # The newest day's next day is not a partition yet (still in progress): map it to nothing.
    return TimeWindowPartitionMapping(start_offset=1, end_offset=days, allow_nonexistent_upstream_partitions=True)


def register_symbols(instance, symbols: Iterable[str]) -> list[str]:
    """Add ``symbols`` to the instance's dynamic symbol partitions; returns the new ones.

    Every symbol is validated before anything is written, so one bad symbol
    leaves the instance unchanged.
    """
    wanted = [validate_symbol(s) for s in symbols]
    existing = set(instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
    new = sorted({s for s in wanted if s not in existing})
    if new:
        instance.add_dynamic_partitions(SYMBOLS_PARTITION_NAME, new)
    return new


def partition_ranges(start: dt.date | str, end: dt.date | str, symbols: Sequence[str] = ()) -> dict[str, str]:
    """The ``--partition-range`` of ``start..end`` for daily assets (``daily``) and, given ``symbols`` in
    registration order (the order of the symbol dimension's keys), for day x symbol ones (``per-symbol``)."""
    ranges = {"daily": f"{start}...{end}"}
    if symbols:
        ranges["per-symbol"] = f"{start}|{symbols[0]}...{end}|{symbols[-1]}"
    return ranges


def registered_symbols(instance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))


def partition_dimensions(partitions_def, partition_key: str) -> dict[str, str]:
    """Split a partition key into its named dimensions: ``{"date": ..., "symbol": ...}``.

    Unpartitioned assets give ``{}``; a daily asset gives ``{"date": key}``.
    Symbols are validated here, so no key reaches a path or a query unchecked.
    """
    if partitions_def is None:
        return {}
    if isinstance(partitions_def, MultiPartitionsDefinition):
        if isinstance(partition_key, MultiPartitionKey):
            dims = dict(partition_key.keys_by_dimension)
        else:
            names = sorted(d.name for d in partitions_def.partitions_defs)
            values = partition_key.split("|")
            if len(values) != len(names):
                raise ValueError(f"partition key {partition_key!r} does not have dimensions {names}")
            dims = dict(zip(names, values, strict=True))
    elif isinstance(partitions_def, DynamicPartitionsDefinition):
        dims = {SYMBOL_DIM: partition_key}
    else:
        dims = {DATE_DIM: partition_key}
    if SYMBOL_DIM in dims:
        validate_symbol(dims[SYMBOL_DIM])
    if DATE_DIM in dims:
        try:
            dt.date.fromisoformat(dims[DATE_DIM])
        except ValueError as exc:
            raise ValueError(f"partition key {partition_key!r}: {dims[DATE_DIM]!r} is not a YYYY-MM-DD day") from exc
    return dims
