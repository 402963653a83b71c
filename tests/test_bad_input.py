"""Every row of docs/bad-input.md, run as a user would: the status, one line, nothing touched."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

TABLE = ROOT / "docs" / "bad-input.md"
MEASURE = """
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(run.returncode)
"""


def rows() -> list[tuple[str, int, str]]:
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"\| `(.+)` \| (\d) \| `(.+)` \|", line.strip())
        if m:
            found.append((m.group(1), int(m.group(2)), m.group(3)))
    return found


def snapshot(folder: Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        body = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_size, hash(body))
    return out


def test_the_table_has_its_rows():
    assert len(rows()) >= 25


@pytest.mark.parametrize(("args", "status", "message"), rows(), ids=[r[0] for r in rows()])
def test_bad_input_is_answered_as_documented(tmp_path, args, status, message):
    for f in (FIXTURES / "hostile").iterdir():
        shutil.copy(f, tmp_path / f.name)
    os.mkfifo(tmp_path / "pipe.mp3")
    (tmp_path / "output").mkdir()  # where a render would write by default
    before = snapshot(tmp_path)
    started = time.perf_counter()
    # A small wrapper runs calmcast and reports its peak memory: a child forked straight from
    # this process would count this process's own memory as its own (Linux's ru_maxrss).
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "calmcast", *shlex.split(args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    stderr, returncode = proc.stderr, proc.returncode
    peak_kb = int(proc.stdout.strip().splitlines()[-1])
    took = time.perf_counter() - started
    assert returncode == status, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calmcast: "), stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in stderr
    assert snapshot(tmp_path) == before
    assert took < 30
    assert peak_kb < 300_000  # this run's own peak
