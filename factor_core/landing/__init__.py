"""The landing folder: users' own market-data files, scanned by name and read into raw partitions.

Pure code (no Dagster). The Dagster glue calls :func:`scan` every sensor tick
(cheap: names, ``stat`` and a 128 KiB fingerprint per file) and
:func:`read_partition` inside the raw assets. Formats, names and the
precedence rule: ``docs/landing.md``.

    result = scan(landing_root)            # ScanResult(files, errors, partitions)
    for error in result.errors: ...        # LandingFileError(path, reason): report once
    data = read_partition(result.files, "klines", "BTCUSDT", day)   # PartitionData
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .names import BINANCE_KINDS, DATASETS, TARDIS_TYPES, LandingFileError, parse_name
from .precedence import covering_files, precedence_key
from .read import NoLandedFile, read_partition
from .scan import LandedFile, ScanResult, scan


def landing_root_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """``$FACTOR_LANDING_DIR``, else ``$FACTOR_DATA_ROOT/landing`` (``./data/landing`` by default)."""
    env = os.environ if environ is None else environ
    explicit = (env.get("FACTOR_LANDING_DIR") or "").strip()
    if explicit:
        return Path(explicit)
    return Path((env.get("FACTOR_DATA_ROOT") or "").strip() or "./data") / "landing"


__all__ = [
    "BINANCE_KINDS", "DATASETS", "LandedFile", "LandingFileError", "NoLandedFile", "ScanResult",
    "TARDIS_TYPES", "covering_files", "landing_root_from_env", "parse_name", "precedence_key",
    "read_partition", "scan",
]  # fmt: skip
