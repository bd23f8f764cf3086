"""Partition definitions and partition mappings of factor-pipeline, in one place.

Per-instrument assets are partitioned by UTC day x symbol
(``2024-01-02|BTCUSDT``); cross-sectional assets by UTC day. Symbols are a
dynamic dimension, so a new listing becomes a partition without a deploy and a
delisted symbol keeps its history.
"""

from partitions.definitions import (
    DATE_DIM,
    SYMBOL_DIM,
    DAILY,
    DAY_SYMBOL,
    PARTITIONS_START_DATE,
    SYMBOLS,
    SYMBOLS_PARTITION_NAME,
    day_symbol_key,
    next_days,
    partition_dimensions,
    partition_ranges,
    previous_days_of_same_symbol,
    previous_days,
    register_symbols,
    registered_symbols,
)

__all__ = [
    "DATE_DIM",
    "SYMBOL_DIM",
    "DAILY",
    "DAY_SYMBOL",
    "PARTITIONS_START_DATE",
    "SYMBOLS",
    "SYMBOLS_PARTITION_NAME",
    "day_symbol_key",
    "next_days",
    "partition_dimensions",
    "partition_ranges",
    "previous_days",
    "previous_days_of_same_symbol",
    "register_symbols",
    "registered_symbols",
]
