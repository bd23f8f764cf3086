"""Stale temp files on a data root shared by several machines: only what is provably abandoned is removed."""

import os
import subprocess
import sys
import time

from factor_core import atomic_files
from factor_core.atomic_files import FOREIGN_TEMP_MAX_AGE_S, host_tag, remove_stale_temp_files, stage_file


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process (until the pid is reused)


def _touch(directory, name, age_s=0.0):
    path = directory / name
    path.write_bytes(b"partial")
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_temp_files_carry_this_hosts_tag_and_pid(tmp_path):
    staged = stage_file(tmp_path / "part-0.parquet", lambda h: h.write(b"x"))
    assert staged.tmp.name.startswith(f".part-0.parquet.{host_tag()}-{os.getpid()}.")
    assert staged.tmp.name.endswith(".tmp")


def test_a_dead_local_writers_temp_file_is_removed_and_a_live_ones_kept(tmp_path):
    dead = _touch(tmp_path, f".part-0.parquet.{host_tag()}-{_dead_pid()}.ab12cd34.tmp")
    legacy = _touch(tmp_path, f".part-0.parquet.{_dead_pid()}.ab12cd35.tmp")  # written before host tags
    alive = _touch(tmp_path, f".part-0.parquet.{host_tag()}-{os.getpid()}.ab12cd36.tmp")
    remove_stale_temp_files(tmp_path)
    assert not dead.exists() and not legacy.exists()
    assert alive.exists()


def test_another_hosts_temp_file_is_kept_until_it_is_older_than_any_step(tmp_path):
    other = "0" * 8 if host_tag() != "0" * 8 else "1" * 8
    pid = _dead_pid()  # dead here, but it says nothing about a process on the other machine
    fresh = _touch(tmp_path, f".part-0.parquet.{other}-{pid}.ab12cd34.tmp", age_s=3600)
    old = _touch(tmp_path, f".part-0.parquet.{other}-{pid}.ab12cd35.tmp", age_s=FOREIGN_TEMP_MAX_AGE_S + 60)
    remove_stale_temp_files(tmp_path)
    assert fresh.exists()
    assert not old.exists()


def test_a_host_name_with_dots_and_dashes_still_gives_a_parseable_tag(monkeypatch):
    monkeypatch.setattr(atomic_files.socket, "gethostname", lambda: "worker-3.celery.internal")
    tag = host_tag()
    assert len(tag) == 8 and tag.isalnum()
