"""The output writer's fault paths, where a real full disk cannot be had: a faked ENOSPC."""

from __future__ import annotations

import errno
import os

import pytest

from calmcast.errors import OutputError
from calmcast.output import Destination, describe


def test_enospc_reads_as_a_full_disk():
    assert describe(OSError(errno.ENOSPC, "No space left on device")) == "the disk is full"
    assert describe(OSError(errno.EROFS, "Read-only file system")) == "the file system is read-only"


def test_a_rename_that_meets_a_full_disk_leaves_the_old_file_and_no_part(tmp_path, monkeypatch):
    out = tmp_path / "session.mp3"
    out.write_bytes(b"an earlier render")
    dest = Destination(out)
    tmp = dest.create()
    tmp.write_bytes(b"ID3 new audio")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match=r"session\.mp3: the disk is full"):
        dest.commit()
    assert out.read_bytes() == b"an earlier render"
    assert sorted(os.listdir(tmp_path)) == ["session.mp3"]


def test_part_files_of_live_processes_are_kept_and_of_dead_ones_swept(tmp_path):
    out = tmp_path / "session.mp3"
    dead = tmp_path / ".session.calmcast-999999999-abcd1234.part.mp3"
    live = tmp_path / f".session.calmcast-{os.getppid()}-abcd1234.part.mp3"
    other = tmp_path / ".other.calmcast-999999999-abcd1234.part.mp3"
    for f in (dead, live, other):
        f.write_bytes(b"x")
    Destination(out).sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
