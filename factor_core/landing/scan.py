"""Scan of the landing folder: every file, classified by name, with a cheap content fingerprint.

Skipped, never reported: the ``news/`` subfolder (news items have their own
asset), the book collector's ``raw_book/`` area, hidden files (``.name``),
temporary files (``*.tmp``, ``*.part``, ``*.partial``, ``*.crdownload``, ``*~``)
and ``.CHECKSUM`` companions (they are read with the zip they verify).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from factor_core.timeutil import month_days

from .names import FileName, LandingFileError, parse_name

SKIPPED_FOLDERS = ("news", "raw_book")
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", "~")
CHECKSUM_SUFFIX = ".CHECKSUM"
#: Bytes read from each end of a file for its fingerprint: O(1) per file and tick.
FINGERPRINT_EDGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class LandedFile:
    """One usable landed file: what it holds and a fingerprint to notice replacements."""

    path: Path  # absolute
    relative_path: str  # to the landing root, '/'-separated: the name used in messages
    dataset: str  # klines | trades | book | funding | quotes
    symbol: str
    days: tuple[date, ...]  # UTC days covered (a monthly file: every day of its month)
    format: str  # binance-zip | binance-csv | tardis-csv-gz | parquet
    kind: str  # Binance kind (1m, aggTrades, ...), Tardis data type, or the dataset (Parquet)
    period: str  # daily | monthly
    size: int
    mtime_ns: int
    fingerprint: str  # blake2b of (size, first and last 64 KiB): changes when the content is replaced
    exchange: str | None = None  # Tardis exchange id

    @property
    def version(self) -> str:
        """``size:mtime_ns:fingerprint``: what a sensor cursor keeps per path. A replaced file
        changes it (an edit inside the unsampled middle that keeps the size still changes mtime)."""
        return f"{self.size}:{self.mtime_ns}:{self.fingerprint}"

    def covers(self, dataset: str, symbol: str, day: date) -> bool:
        return self.dataset == dataset and self.symbol == symbol and day in self.days

    def content_sha256(self) -> str:
        """Full-content SHA-256, read on demand (the fingerprint is the cheap per-tick check)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


@dataclass(frozen=True)
class ScanResult:
    """Every file under the landing root: usable ones and the ones to report."""

    root: Path
    files: tuple[LandedFile, ...] = ()
    errors: tuple[LandingFileError, ...] = ()
    partitions: frozenset[tuple[str, str, date]] = field(default=frozenset())

    def files_for(self, dataset: str, symbol: str, day: date) -> list[LandedFile]:
        """The files covering one partition, in precedence order (the first one is read)."""
        from .precedence import covering_files

        return covering_files(self.files, dataset, symbol, day)


def fingerprint(path: Path, size: int) -> str:
    """blake2b over the size and the first and last :data:`FINGERPRINT_EDGE_BYTES` of the file."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
        if size > 2 * FINGERPRINT_EDGE_BYTES:
            handle.seek(size - FINGERPRINT_EDGE_BYTES)
        digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
    return digest.hexdigest()


def _skipped(relative: tuple[str, ...]) -> bool:
    name = relative[-1]
    if relative[0] in SKIPPED_FOLDERS and len(relative) > 1:
        return True
    # '..'-prefixed names are not hidden files but malformed names: report them
    if any(part.startswith(".") and not part.startswith("..") for part in relative):
        return True
    return name.endswith(TEMP_SUFFIXES) or name.endswith(CHECKSUM_SUFFIX)


def _days(name: FileName) -> tuple[date, ...]:
    if name.period == "monthly":
        return month_days(name.first_day.year, name.first_day.month)
    return (name.first_day,)


def scan(landing_root: str | Path) -> ScanResult:
    """Walk ``landing_root`` (deterministic order) and classify every file by its name.

    Cheap enough for every sensor tick: one ``stat`` and two 64 KiB reads per
    file, no parsing. Content problems surface in :func:`read_partition`.
    A missing root is an empty result.
    """
    root = Path(landing_root).resolve()
    files: list[LandedFile] = []
    errors: list[LandingFileError] = []
    if not root.is_dir():
        return ScanResult(root)
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            relative = path.relative_to(root).parts
            if _skipped(relative):
                continue
            relative_path = "/".join(relative)
            try:
                parsed = parse_name(relative_path)
                stat = path.stat()
            except LandingFileError as exc:
                errors.append(exc)
                continue
            except OSError as exc:  # vanished or unreadable between walk and stat
                errors.append(LandingFileError(relative_path, f"cannot be read ({exc}); check its permissions"))
                continue
            if stat.st_size == 0:
                errors.append(LandingFileError(relative_path, "file is empty; replace it with a complete file"))
                continue
            files.append(LandedFile(
                path=path, relative_path=relative_path, dataset=parsed.dataset, symbol=parsed.symbol,
                days=_days(parsed), format=parsed.format, kind=parsed.kind, period=parsed.period,
                size=stat.st_size, mtime_ns=stat.st_mtime_ns, fingerprint=fingerprint(path, stat.st_size),
                exchange=parsed.exchange,
            ))
    partitions = frozenset((f.dataset, f.symbol, d) for f in files for d in f.days)
    return ScanResult(root, tuple(files), tuple(errors), partitions)
