"""nearid._files.atomic_write: the complete file or nothing, flushed before the rename."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import nearid.app.report
import nearid.io
from nearid._files import atomic_write


def test_fsync_comes_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write(tmp_path / "f.bin", lambda name: Path(name).write_bytes(b"data"))
    assert events[:2] == ["fsync", "replace"] and (tmp_path / "f.bin").read_bytes() == b"data"


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    def fails(name):
        Path(name).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "f.bin", fails)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f.bin").write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "f.bin", fails)
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"] and (tmp_path / "f.bin").read_bytes() == b"old"


def test_permissions_of_a_replaced_file_are_kept_and_links_followed(tmp_path):
    target = tmp_path / "target.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    atomic_write(link, lambda name: Path(name).write_bytes(b"new"))
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640


def test_io_and_report_write_through_it():
    # One implementation: io keeps the name it has always had, report uses the same function.
    assert nearid.io.atomic_write is atomic_write and nearid.app.report.atomic_write is atomic_write
