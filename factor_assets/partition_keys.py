"""What a run covers: the (day, symbol) pairs or days of a single partition or a range run."""

from __future__ import annotations

from dagster import AssetExecutionContext

from partitions import DATE_DIM, SYMBOL_DIM, partition_dimensions


def run_partitions(context: AssetExecutionContext) -> list[tuple[str, str]]:
    """(day, symbol) for every partition of this run, sorted by symbol then day."""
    partitions_def = context.assets_def.partitions_def
    pairs = []
    for key in context.partition_keys:
        dims = partition_dimensions(partitions_def, key)
        pairs.append((dims[DATE_DIM], dims[SYMBOL_DIM]))
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def run_days(context: AssetExecutionContext) -> list[str]:
    """The UTC days (YYYY-MM-DD) of a daily-partitioned run, sorted."""
    partitions_def = context.assets_def.partitions_def
    return sorted(partition_dimensions(partitions_def, key)[DATE_DIM] for key in context.partition_keys)
