"""Crash-safe file replacement: readers see the old file or the new one, never a partial one.

A new version is written to a hidden temporary file in the *same directory*
(so the final rename never crosses a filesystem), flushed and fsynced, then
``os.replace``d over the target, and the directory is fsynced so the rename
itself survives a power loss. A writer killed at any point leaves the previous
file intact; at worst a hidden ``.<name>.<host>-<pid>.<random>.tmp`` remains,
which no ``*.parquet`` glob matches and which the next writer of that directory
on the same host removes once its process is gone. ``<host>`` tells machines
apart when several write one shared data root (Celery workers, Kubernetes
pods): a process id means nothing on another machine, so another host's temp
file is left alone until it is older than any step (``FOREIGN_TEMP_MAX_AGE_S``).

Writing is split in two so that many files (a whole range run, produced by
several processes) can be *staged* first and *published* together only once
every one of them was written: :func:`stage_file`, then :func:`publish_files`
(or :func:`discard_files` when anything failed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"
#: Age after which another host's temp file counts as abandoned (its writer's liveness cannot be checked).
FOREIGN_TEMP_MAX_AGE_S = 7 * 24 * 3600


def host_tag() -> str:
    """A short, path-safe tag of this machine (host names may hold dots and dashes)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@dataclass(frozen=True)
class StagedFile:
    """A fully written, fsynced temporary file waiting to replace ``target``."""

    tmp: Path
    target: Path


def _tmp_path_for(target: Path) -> Path:
    return target.with_name(f".{target.name}.{host_tag()}-{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _abandoned(tmp: Path, own_host: str) -> bool:
    parts = tmp.name.rsplit(".", 3)  # ['.part-0.parquet', '<host>-<pid>' (or '<pid>'), random, 'tmp']
    if len(parts) != 4:
        return False
    host, _, pid = parts[1].rpartition("-")
    if not pid.isdigit():
        return False
    if host in ("", own_host):  # written on this machine ('' = before host tags): its process tells
        return not _pid_alive(int(pid))
    with contextlib.suppress(FileNotFoundError):
        return time.time() - tmp.stat().st_mtime > FOREIGN_TEMP_MAX_AGE_S
    return False


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files left in ``directory`` by writers that no longer run (see the module docstring)."""
    if not directory.is_dir():
        return
    own_host = host_tag()
    for tmp in directory.glob(f".*{TMP_SUFFIX}"):
        if _abandoned(tmp, own_host):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Files staged by the unit of work running in this process (see :func:`discarding_on_failure`).
_open_stages: list[list[StagedFile]] = []


@contextlib.contextmanager
def discarding_on_failure():
    """Every file staged inside the block is discarded if the block raises (a task that fails half-way)."""
    staged: list[StagedFile] = []
    _open_stages.append(staged)
    try:
        yield staged
    except BaseException:
        discard_files(staged)
        raise
    finally:
        _open_stages.remove(staged)


def stage_file(target: Path, write: Callable[[BinaryIO], None]) -> StagedFile:
    """Write ``target``'s next version to a temporary file beside it; nothing visible changes yet."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target.parent)
    tmp = _tmp_path_for(target)
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    staged = StagedFile(tmp, target)
    for stages in _open_stages:
        stages.append(staged)
    return staged


def publish_files(staged: Iterable[StagedFile]) -> None:
    """Rename every staged file over its target (each rename is atomic), then fsync the directories."""
    staged = list(staged)
    for item in staged:
        os.replace(item.tmp, item.target)
    for directory in {item.target.parent for item in staged}:
        _fsync_dir(directory)


def discard_files(staged: Iterable[StagedFile]) -> None:
    """Remove staged files that will not be published; the targets stay as they were."""
    for item in staged:
        with contextlib.suppress(FileNotFoundError):
            item.tmp.unlink()


def write_files_atomically(targets: Sequence[tuple[Path, Callable[[BinaryIO], None]]]) -> None:
    """Write every ``(path, writer)`` pair, then publish them all.

    All temporary files are fully written and fsynced before the first rename,
    so a failure while producing any of them changes none of the targets.
    """
    staged: list[StagedFile] = []
    try:
        for target, write in targets:
            staged.append(stage_file(target, write))
    except BaseException:
        discard_files(staged)
        raise
    publish_files(staged)
