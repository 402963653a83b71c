"""The command line: help, version, and bad input that gets one clear line and loses nothing."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from conftest import FIXTURES, ebur128, run_cli, tmpfs, user_bed, write

SAMPLE = str(FIXTURES / "sample.j2")


def test_help_and_version():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("render", "plan", "voices", "practices", "show", "ambiences"):
        assert command in proc.stdout
    assert run_cli("render", "--help").returncode == 0
    assert run_cli("--version").stdout.startswith("calmcast, version ")


def test_voices_lists_espeak():
    proc = run_cli("voices")
    assert proc.returncode == 0
    assert "espeak:en-us" in proc.stdout


@pytest.fixture
def existing(tmp_path):
    """An earlier output that a failed render must leave as it was."""
    out = tmp_path / "out" / "session.mp3"
    out.parent.mkdir()
    out.write_bytes(b"an earlier render")
    return out


def bad(tmp_path, body: str) -> str:
    return str(write(tmp_path / "bad.j2", body))


CASES = {
    "syntax": (lambda t: [bad(t, "Hello.\n{% if %}")], r"bad\.j2:2: "),
    "undefined": (lambda t: [bad(t, "Hello {{ colour }}.")], r"bad\.j2:1: 'colour' is undefined"),
    "bad duration": (
        lambda t: [bad(t, "Rest.\n[pause 10x]")],
        r"bad\.j2:2:1: \[pause 10x\]: '10x' is not a duration",
    ),
    "unknown marker": (
        lambda t: [bad(t, "Rest. [paws 3s]")],
        r"bad\.j2:1:7: unknown marker \[paws 3s\]",
    ),
    "backwards range": (
        lambda t: [bad(t, "Rest. [pause 2m..30s]")],
        r"bad\.j2:1:7: .*shortest \(2m\) is longer than the longest \(30s\)",
    ),
    "unknown --set": (
        lambda t: [SAMPLE, "--set", "nmae=Ana"],
        r"--set nmae: .*sample\.j2 has no variable 'nmae' \(it has: colour, name\)",
    ),
    "unreachable": (
        lambda t: [SAMPLE, "--minutes", "1"],
        r"sample: 1m is out of reach: with this voice it can last from \d+m\d*s? to any length",
    ),
    "unreachable max": (
        lambda t: [bad(t, "Rest. [pause 1s..2s]"), "--minutes", "10"],
        r"bad: 10m is out of reach: .* from [\d.]+s to [\d.]+s",
    ),
    "unknown voice": (
        lambda t: [SAMPLE, "--voice", "espeak:xx-nowhere"],
        r"unknown voice 'espeak:xx-nowhere'",
    ),
    "unknown practice": (
        lambda t: ["soften-sooth-allow"],
        r"soften-sooth-allow: no built-in practice of that name",
    ),
    "missing ambience": (
        lambda t: [SAMPLE, "--ambience", str(t / "nope.ogg")],
        r"nope\.ogg: no such ambience file",
    ),
    "empty ambience": (
        lambda t: [SAMPLE, "--ambience", str(write(t / "empty.wav", ""))],
        r"empty\.wav: the file is empty",
    ),
    "corrupt ambience": (
        lambda t: [SAMPLE, "--ambience", str(write(t / "junk.ogg", "not audio at all" * 100))],
        r"junk\.ogg: ffmpeg failed: ",
    ),
    "unknown ambience": (
        lambda t: [SAMPLE, "--ambience", "thunder"],
        r"thunder: no built-in ambience of that name",
    ),
    "unknown bell": (
        lambda t: [SAMPLE, "--bell", "cowbell"],
        r"cowbell: no built-in bell of that name",
    ),
    "bad cover": (
        lambda t: [SAMPLE, "--cover", str(write(t / "cover.jpg", "text"))],
        r"cover\.jpg: the cover must be a JPEG or PNG image",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_loses_nothing(case, tmp_path, existing):
    args, message = CASES[case]
    # A case's own --voice comes later on the line, so it wins over the default here.
    proc = run_cli("render", "--voice", "espeak:en-gb", *args(tmp_path), "-o", str(existing))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("calmcast: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert existing.read_bytes() == b"an earlier render"
    assert sorted(os.listdir(existing.parent)) == ["session.mp3"]


def test_unwritable_output_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with contextlib.ExitStack() as stack:
            if os.access(folder, os.W_OK):  # root writes anywhere, but not on a read-only disk
                stack.enter_context(tmpfs(folder, "ro,size=64k"))
            assert not os.access(folder, os.W_OK)
            proc = run_cli("render", SAMPLE, "-o", str(folder / "x.mp3"))
            assert proc.returncode != 0
            assert "is not writable" in proc.stderr
            assert os.listdir(folder) == []
    finally:
        folder.chmod(0o700)


def test_missing_output_folder(tmp_path):
    proc = run_cli("render", SAMPLE, "-o", str(tmp_path / "no" / "such" / "x.mp3"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"calmcast: {tmp_path / 'no' / 'such' / 'x.mp3'}: the folder {tmp_path / 'no' / 'such'} does not exist"
    ]


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "render", bad(tmp_path, "{{ nope }}"))
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "'nope' is undefined" in proc.stderr


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_interrupted_render_leaves_nothing(tmp_path, existing, signum):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "calmcast",
            "render",
            SAMPLE,
            "--minutes",
            "30",
            "--voice",
            "espeak:en-gb",
            "-o",
            str(existing),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the encoder has started writing its temporary file, then interrupt.
    deadline = time.time() + 60
    while time.time() < deadline and len(os.listdir(existing.parent)) < 2:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signum))
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert existing.read_bytes() == b"an earlier render"
    assert sorted(os.listdir(existing.parent)) == ["session.mp3"], (
        proc.returncode,
        proc.stderr.read()[-3000:],
    )


@pytest.mark.parametrize(("args", "most"), [
    (["--loudness", "-12"], "at most -14 LUFS in stereo at 128k"),
    (["--loudness", "-16", "--channels", "1"], "at most -17 LUFS in mono at 128k"),
    (["--loudness", "-14", "--bitrate", "64k"], "at most -15 LUFS in stereo at 64k"),
])  # fmt: skip
def test_a_voice_too_loud_to_stay_calm_is_refused_before_any_work(tmp_path, args, most):
    out = tmp_path / "loud.mp3"
    proc = run_cli("render", SAMPLE, "--voice", "fake:steady", *args, "-o", str(out))
    assert proc.returncode != 0
    assert most in proc.stderr and proc.stderr.count("\n") == 1
    assert not out.exists()


def _tree(folder: Path) -> dict[str, tuple]:
    """Return every entry under folder with its kind, target, mode and content hash."""
    import hashlib
    import stat

    seen = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            seen[str(path)] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            seen[str(path)] = ("file", st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            seen[str(path)] = ("other", st.st_mode, st.st_rdev)
    return seen


def _fifo(t: Path) -> Path:
    os.mkfifo(t / "pipe.mp3")
    return t / "pipe.mp3"


def _link_to_device(t: Path) -> Path:
    (t / "null.mp3").symlink_to("/dev/null")
    return t / "null.mp3"


def _template_as_output(t: Path) -> Path:
    return write(t / "mine.mp3", "Rest here. [pause 10s..]\n")


OUTPUTS = {
    "a folder": (lambda t: t, None, r"is a directory|is a folder"),
    "a FIFO": (_fifo, None, r"pipe\.mp3: is a FIFO, not a file"),
    "a link to a device": (_link_to_device, None, r"null\.mp3: is a device, not a file"),
    "a WAV name": (lambda t: t / "x.wav", None, r"x\.wav: calmcast writes MP3 .* name it x\.mp3"),
    "no suffix": (lambda t: t / "session", None, r"session: calmcast writes MP3"),
    "the template itself": (_template_as_output, "template", r"mine\.mp3: is one of this render's inputs"),
    "the ambience": (lambda t: user_bed(t / "bed.wav").rename(t / "bed.mp3"), "ambience",
                     r"bed\.mp3: is one of this render's inputs"),
    "a file where its folder should be": (
        lambda t: write(t / "plain", "x") / "out.mp3", None, r"the folder .*plain does not exist"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", OUTPUTS)
def test_an_output_that_is_not_a_file_it_may_write_is_refused(case, tmp_path):
    make, role, message = OUTPUTS[case]
    out = make(tmp_path)
    args = [SAMPLE, "--voice", "espeak:en-gb", "--minutes", "5"]
    if role == "template":
        args[0] = str(out)
        args[4] = "1"
    if role == "ambience":
        args += ["--ambience", str(out)]
    before = _tree(tmp_path)
    proc = run_cli("render", *args, "-o", str(out))
    assert proc.returncode != 0
    assert re.search(message, proc.stderr) and proc.stderr.count("\n") == 1, proc.stderr
    assert _tree(tmp_path) == before


def test_writes_through_a_symlink_and_keeps_the_file_s_permissions(tmp_path):
    real = write(tmp_path / "real.mp3", "an earlier render")
    real.chmod(0o600)
    link = tmp_path / "link.mp3"
    link.symlink_to("real.mp3")
    proc = run_cli("render", SAMPLE, "--voice", "espeak:en-gb", "--minutes", "2", "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == "real.mp3"
    assert real.stat().st_mode & 0o777 == 0o600
    assert real.read_bytes()[:3] == b"ID3"
    assert sorted(os.listdir(tmp_path)) == ["link.mp3", "real.mp3"]


def test_dash_streams_the_mp3_to_stdout(tmp_path):
    import subprocess
    import sys

    run = [sys.executable, "-m", "calmcast", "render", SAMPLE, "--voice", "espeak:en-gb",
           "--minutes", "2", "-o", "-"]  # fmt: skip
    proc = subprocess.run(run, capture_output=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout[:3] == b"ID3" and b"stdout: 2:00" in proc.stderr
    (tmp_path / "piped.mp3").write_bytes(proc.stdout)
    lufs, peak = ebur128(tmp_path / "piped.mp3")
    printed = float(proc.stderr.split(b"programme ")[1].split()[0])
    # Over a bed the file reads up to 1.5 LU below the summary: noise loses more to LAME than
    # speech, the wheel's build more than Debian's.
    assert abs(lufs - printed) <= 1.5 and peak <= -1.0, (lufs, printed, peak)
    assert os.listdir(tmp_path) == ["piped.mp3"]


def test_a_killed_render_s_part_file_is_swept_by_the_next(tmp_path, existing):
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "calmcast", "render", SAMPLE, "--minutes", "30",
           "--voice", "espeak:en-gb", "-o", str(existing)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(os.listdir(existing.parent)) < 2:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: nothing can clean up
    proc.wait(timeout=60)
    left = [n for n in os.listdir(existing.parent) if n != "session.mp3"]
    assert len(left) == 1 and left[0].endswith(".part.mp3"), left
    assert existing.read_bytes() == b"an earlier render"
    again = run_cli(
        "render", SAMPLE, "--minutes", "2", "--voice", "espeak:en-gb", "-o", str(existing)
    )
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(existing.parent)) == ["session.mp3"]


def test_a_file_where_the_speech_cache_should_be_is_one_clear_line(tmp_path):
    blocker = write(tmp_path / "cache", "not a folder")
    out = tmp_path / "s.mp3"
    proc = run_cli("render", SAMPLE, "--voice", "espeak:en-gb", "-o", str(out),
                   env={"CALMCAST_CACHE": str(blocker)})  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"calmcast: {blocker}: the speech cache must be a folder, and a file stands there "
        "(set CALMCAST_CACHE to another place)"
    )
    assert not out.exists() and blocker.read_text() == "not a folder"


def test_a_render_shows_its_progress_on_a_terminal_only(tmp_path):
    import io

    from calmcast.progress import Progress, RenderProgress, Stage

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    seen = Terminal()
    with RenderProgress(stream=seen) as shown:
        shown.report(Progress(Stage.SPEAKING, 3, 3))
        shown.report(Progress(Stage.MIXING, 600, 600))
    assert "speaking 3 of 3 lines" in seen.getvalue()
    assert "mixing 10:00 of 10:00" in seen.getvalue()
    assert seen.getvalue().endswith("\r\x1b[K")
    piped = io.StringIO()
    with RenderProgress(stream=piped) as shown:
        shown.report(Progress(Stage.MIXING, 600, 600))
    assert piped.getvalue() == ""
    with RenderProgress(quiet=True, stream=Terminal()) as shown:
        assert not shown.live
