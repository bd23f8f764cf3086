"""Which file is read when several landed files cover the same partition: one rule, here only.

Rank, best first (the first file in this order is read, the others are named
in the partition's provenance as ``shadowed``):

1. canonical Parquet ``<dataset>/<SYMBOL>/<day>.parquet`` (already in the raw schema);
2. a Binance daily file, ``.zip`` before ``.csv`` (the zip is the file as Binance
   publishes it and can be checked against its ``.CHECKSUM``; a ``.csv`` is taken
   to be an extracted copy);
3. a Binance monthly file, ``.zip`` before ``.csv`` (a daily file is the more
   specific, usually later, publication);
4. a Tardis.dev file, ``book_snapshot_25`` before ``book_snapshot_5`` (more depth).

Ties (the same name in two folders) go to the lexicographically first relative
path. The rule depends only on names, never on modification times, so the same
folder always yields the same partitions.
"""

from __future__ import annotations

from datetime import date
from typing import Iterable

from .scan import LandedFile

_FORMAT_RANK = {"parquet": 0, "binance-zip": 1, "binance-csv": 2, "tardis-csv-gz": 5}
_TARDIS_RANK = {"book_snapshot_25": 0, "book_snapshot_5": 1}


def precedence_key(file: LandedFile) -> tuple:
    """Sort key of the rule above: smaller is preferred."""
    rank = _FORMAT_RANK[file.format]
    if file.format.startswith("binance") and file.period == "monthly":
        rank += 2  # after both daily formats
    return rank, _TARDIS_RANK.get(file.kind, 0), file.relative_path


def covering_files(files: Iterable[LandedFile], dataset: str, symbol: str, day: date) -> list[LandedFile]:
    """The files covering ``(dataset, symbol, day)``, best first."""
    return sorted((f for f in files if f.covers(dataset, symbol, day)), key=precedence_key)
