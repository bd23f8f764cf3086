"""Crash-safe file replacement: readers see the old file or the new one, never a partial one.

A new version is written to a hidden temporary file in the *same directory*
(so the final rename never crosses a filesystem), flushed and fsynced, then
``os.replace``d over the target, and the directory is fsynced so the rename
itself survives a power loss. A writer killed at any point leaves the previous
file intact; at worst a hidden ``.<name>.<pid>.<random>.tmp`` remains, which no
``*.parquet`` glob matches and which the next writer of that directory removes
once its process is gone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def _tmp_path_for(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files left in ``directory`` by writers that no longer run."""
    if not directory.is_dir():
        return
    for tmp in directory.glob(f".*{TMP_SUFFIX}"):
        parts = tmp.name.rsplit(".", 3)  # ['.part-0.parquet', pid, random, 'tmp']
        if len(parts) == 4 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files_atomically(targets: Sequence[tuple[Path, Callable[[BinaryIO], None]]]) -> None:
    """Write every ``(path, writer)`` pair, then publish them all.

    All temporary files are fully written and fsynced before the first rename,
    so a failure while producing any of them changes none of the targets.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, write in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(target.parent)
            tmp = _tmp_path_for(target)
            staged.append((tmp, target))
            with open(tmp, "xb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
    for directory in {target.parent for _, target in staged}:
        _fsync_dir(directory)
