"""Faults: renders killed at random moments, and a disk that fills up."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import FIXTURES, ffprobe_duration, tmpfs

pytestmark = pytest.mark.slow

SAMPLE = str(FIXTURES / "sample.j2")


def _render(out, minutes="5"):
    cmd = [sys.executable, "-m", "calmcast", "render", SAMPLE, "--minutes", minutes,
           "--voice", "espeak:en-gb", "-o", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_renders_killed_at_random_moments_leave_the_output_whole(tmp_path):
    out = tmp_path / "session.mp3"
    out.write_bytes(b"an earlier render")
    rng = random.Random(7)
    for _ in range(6):
        proc = _render(out)
        time.sleep(rng.uniform(0.3, 6.0))
        proc.send_signal(rng.choice([signal.SIGTERM, signal.SIGKILL, signal.SIGHUP]))
        proc.wait(timeout=120)
        body = out.read_bytes()
        # Either the earlier file, untouched, or a whole new one: never a half-written file.
        assert body == b"an earlier render" or abs(ffprobe_duration(out) - 300) < 0.1
        strays = [n for n in os.listdir(tmp_path) if n != "session.mp3"]
        if proc.returncode != -signal.SIGKILL:
            assert strays == [], (proc.returncode, strays)  # cleaned up by itself
    proc = _render(out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert os.listdir(tmp_path) == ["session.mp3"]  # a killed run's part file swept
    assert abs(ffprobe_duration(out) - 300) < 0.1


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 kB file system: a tmpfs, where the test may mount one (as root in CI)."""
    where = tmp_path / "tiny"
    where.mkdir()
    with tmpfs(where, "size=512k"):
        yield where


def test_a_full_disk_is_said_plainly_and_loses_nothing(tiny_disk):
    out = tiny_disk / "session.mp3"
    out.write_bytes(b"an earlier render")
    proc = _render(out)
    assert proc.wait(timeout=300) == 1
    (line,) = proc.stderr.read().decode().strip().splitlines()
    assert line.startswith(f"calmcast: {out}: ") and line.endswith("the disk is full"), line
    assert out.read_bytes() == b"an earlier render"
    assert os.listdir(tiny_disk) == ["session.mp3"]
