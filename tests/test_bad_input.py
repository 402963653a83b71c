"""Every row of docs/bad-input.md, run as a user would: the status, one line, nothing touched."""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

TABLE = ROOT / "docs" / "bad-input.md"


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
    proc = subprocess.run(
        [sys.executable, "-m", "calmcast", *shlex.split(args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    took = time.perf_counter() - started
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calmcast: "), proc.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before
    assert took < 30
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 300_000  # kB
