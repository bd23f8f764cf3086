"""One partition's canonical table from the landed files that cover it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from factor_core.partition_data import PartitionData
from factor_core.schemas import validate_symbol
from factor_core.timeutil import as_date

from .binance_files import read_binance_file
from .names import DATASETS, LandingFileError
from .parquet import SCHEMAS, read_parquet_file
from .precedence import covering_files
from .scan import LandedFile
from .tardis import read_tardis_file


class NoLandedFile(LookupError):
    """No landed file covers the partition asked for."""


def read_partition(files: Iterable[LandedFile], dataset: str, symbol: str, day: date | str) -> PartitionData:
    """The canonical table of ``(dataset, symbol, day)`` and its provenance.

    ``files`` may be every file of a scan: those covering the partition are
    ranked by :func:`~factor_core.landing.precedence.covering_files` and the
    first is read (a monthly file is cut to the day). Raises
    :class:`LandingFileError` naming the file and the problem when it cannot be
    read, and :class:`NoLandedFile` when no file covers the partition.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; the landing folder fills {list(DATASETS)}")
    validate_symbol(symbol)
    day = as_date(day)
    files = list(files)
    candidates = covering_files(files, dataset, symbol, day)
    if not candidates:
        raise NoLandedFile(f"no landed file covers {dataset} {day.isoformat()}|{symbol}; "
                           "land one (see docs/landing.md) or leave the partition out of the run")
    chosen, shadowed = candidates[0], candidates[1:]
    if chosen.format == "parquet":
        table, provenance = read_parquet_file(chosen, day)
    elif chosen.format.startswith("binance"):
        table, provenance = read_binance_file(chosen, day)
    else:
        previous = None
        if dataset == "funding":  # the 00:00 settlement shows only across midnight
            before = [f for f in covering_files(files, dataset, symbol, day - timedelta(days=1))
                      if f.format == "tardis-csv-gz" and f.kind == chosen.kind]
            previous = before[0] if before else None
        table, provenance = read_tardis_file(chosen, day, previous)
    if not table.schema.equals(SCHEMAS[dataset]):
        raise LandingFileError(chosen.relative_path, f"read as {table.schema} instead of the raw {dataset} "
                                                     "schema (a reader bug: please report it)")
    provenance = {
        "source": "landing",
        "file": chosen.relative_path,
        "fingerprint": chosen.fingerprint,
        "rows": str(table.num_rows),
        **provenance,
    }
    if shadowed:
        provenance["shadowed"] = ",".join(f.relative_path for f in shadowed)
    return PartitionData(table, provenance)
