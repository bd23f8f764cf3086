"""What a run covers: the (day, symbol) pairs or days of a single partition or a range run."""

from __future__ import annotations

from dagster import AssetExecutionContext

from partitions import DATE_DIM, SYMBOL_DIM, partition_dimensions

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class EmptyRangeError(ValueError):
    """A run whose partition range selects no partition (a reversed range)."""


def _keys(context: AssetExecutionContext) -> list[str]:
    keys = list(context.partition_keys)
    if not keys:
        tags = context.run.tags
        selected = f"{tags.get(RANGE_START_TAG, '?')}...{tags.get(RANGE_END_TAG, '?')}"
        raise EmptyRangeError(
            f"the partition range {selected} selects no partition of {context.assets_def.key.to_user_string()}: "
            "its start comes after its end. Days run from the first to the second; symbols follow registration "
            "order (`factor-pipeline symbols list`); `factor-pipeline partition-range` prints a valid range."
        )
    return keys


def run_partitions(context: AssetExecutionContext) -> list[tuple[str, str]]:
    """(day, symbol) for every partition of this run, sorted by symbol then day."""
    partitions_def = context.assets_def.partitions_def
    pairs = []
    for key in _keys(context):
        dims = partition_dimensions(partitions_def, key)
        pairs.append((dims[DATE_DIM], dims[SYMBOL_DIM]))
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def run_days(context: AssetExecutionContext) -> list[str]:
    """The UTC days (YYYY-MM-DD) of a daily-partitioned run, sorted."""
    partitions_def = context.assets_def.partitions_def
    return sorted(partition_dimensions(partitions_def, key)[DATE_DIM] for key in _keys(context))
