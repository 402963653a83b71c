"""Courses: one manifest in, a folder of tagged MP3s out, rebuilt only where something changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.id3 import ID3

from calmcast.building import build
from calmcast.course import load_course
from calmcast.errors import ConfigError
from conftest import FIXTURES, ROOT, run_cli, write

MANIFEST = """
title = "Test Course"
guide = "A. Teacher"
[defaults]
voice = "espeak:en-gb"
ambience = "none"
minutes = 1
[[track]]
practice = "dense.j2"
title = "Week 1: Dense"
[[track]]
practice = "sample.j2"
title = "Week 2: Sample"
minutes = 2
set = { name = "Ana" }
"""


@pytest.fixture(autouse=True)
def beside(tmp_path):
    """The manifest's practices sit beside it, as a course folder's do."""
    import shutil

    for name in ("dense.j2", "sample.j2"):
        shutil.copy(FIXTURES / name, tmp_path / name)


@pytest.mark.slow
def test_build_makes_a_tagged_folder_and_then_only_what_changed(tmp_path):
    manifest = write(tmp_path / "course.toml", MANIFEST)
    out = tmp_path / "out"
    done = build(load_course(manifest), out)
    assert [d.status for d in done] == ["made", "made"]
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == sorted([
        f"{stem}{suffix}" for stem in ("01-week-1-dense", "02-week-2-sample")
        for suffix in (".mp3", ".vtt", ".srt", ".chapters.json")
    ] + ["playlist.m3u8", "feed.xml", "index.html", "manifest.json"])  # fmt: skip
    tags = ID3(str(out / "02-week-2-sample.mp3"))
    assert (str(tags["TIT2"]), str(tags["TALB"]), str(tags["TPE1"]), str(tags["TRCK"])) == (
        "Week 2: Sample", "Test Course", "A. Teacher", "2/2")  # fmt: skip
    assert "Ana" in tags.getall("USLT")[0].text
    playlist = (out / "playlist.m3u8").read_text().splitlines()
    assert playlist[0] == "#EXTM3U" and playlist[-1] == "02-week-2-sample.mp3"

    before = {p: p.stat().st_mtime_ns for p in out.glob("*.mp3")}
    assert [d.status for d in build(load_course(manifest), out)] == ["up to date", "up to date"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.mp3")} == before

    write(manifest, MANIFEST.replace("minutes = 2", "minutes = 2.5"))
    again = build(load_course(manifest), out)
    assert [d.status for d in again] == ["up to date", "made"]


def test_every_problem_in_a_manifest_is_reported_at_once(tmp_path):
    bad = MANIFEST.replace(
        'title = "Week 1: Dense"', 'title = "Week 1"\nminutes = "ten"\ncolour = "red"'
    )
    with pytest.raises(ConfigError) as info:
        load_course(write(tmp_path / "course.toml", bad))
    message = info.value.format_message()
    assert (
        "course.toml: track 1: minutes: expected a number above 0 and at most 720, got 'ten'"
        in message
    )
    assert "course.toml: track 1: unknown key 'colour'" in message


def test_a_typo_in_the_last_track_fails_before_anything_is_rendered(tmp_path):
    typo = write(tmp_path / "typo.j2", "Breathe. [paws 3s]")
    manifest = write(tmp_path / "course.toml", MANIFEST + f'[[track]]\npractice = "{typo}"\n')
    proc = run_cli("build", str(manifest), "-o", str(tmp_path / "out"))
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert re.search(
        r"course\.toml: track 3 \(03-typo\.mp3\): .*typo\.j2:1:10: unknown marker \[paws 3s\]", line
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_example_course_checks():
    proc = run_cli("build", str(ROOT / "examples" / "compassion-course.toml"), "--check")
    assert proc.returncode == 0, proc.stderr
    assert "files, all fine" in proc.stdout
    course = load_course(ROOT / "examples" / "compassion-course.toml")
    assert [Path(t.request.practice).name for t in course.tracks][:2] == [
        "settling",
        "soften-soothe-allow",
    ]


def _secret(tmp_path: Path) -> Path:
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir(exist_ok=True)
    return write(outside / "secret.j2", "The password is swordfish. [pause 10s..]")


STRANGER = {
    "an absolute practice": (lambda t: f'practice = "{_secret(t)}"', r"track 1: practice: .* lies outside"),
    "a practice up the tree": (lambda t: (_secret(t), f'practice = "../{t.name}-elsewhere/secret.j2"')[1],
                               r"track 1: practice: .* lies outside"),
    "a link out": (lambda t: ((t / "link.j2").symlink_to(_secret(t)), 'practice = "link.j2"')[1],
                   r"track 1: practice: 'link\.j2' lies outside"),
    "an ambience elsewhere": (lambda t: 'practice = "sample.j2"\nambience = "/etc/hostname.ogg"',
                              r"track 1: ambience: .* lies outside"),
    "a bell elsewhere": (lambda t: 'practice = "sample.j2"\nbell = "../x.ogg"', r"track 1: bell: .* lies outside"),
    "a track file up the tree": (lambda t: 'practice = "sample.j2"\nfile = "../escape.mp3"',
                                 r"track 1: file: '\.\./escape\.mp3' must be a plain file name"),
    "a track file that is absolute": (lambda t: 'practice = "sample.j2"\nfile = "/tmp/x.mp3"',
                                      r"track 1: file: .* must be a plain file name"),
    "a track file named like the playlist": (lambda t: 'practice = "sample.j2"\nfile = "playlist.m3u8"',
                                             r"track 1: file: 'playlist\.m3u8' must be a plain file name"),
    "infinite minutes": (lambda t: 'practice = "sample.j2"\nminutes = inf', r"track 1: minutes: .* got inf"),
    "NaN minutes": (lambda t: 'practice = "sample.j2"\nminutes = nan', r"track 1: minutes: .* got nan"),
}  # fmt: skip


@pytest.mark.parametrize("case", STRANGER)
def test_a_stranger_s_manifest_stays_inside_its_folders(tmp_path, case):
    make, message = STRANGER[case]
    manifest = write(tmp_path / "course.toml", f'title = "T"\n[[track]]\n{make(tmp_path)}\n')
    proc = run_cli("build", str(manifest), "-o", str(tmp_path / "out"))
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert re.search(message, line), line
    assert "swordfish" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "escape.mp3").exists()


def test_trust_lets_your_own_manifest_reach_outside(tmp_path):
    secret = _secret(tmp_path)
    manifest = write(tmp_path / "course.toml", f'title = "T"\n[[track]]\npractice = "{secret}"\n')
    assert load_course(manifest, trusted=True).tracks[0].request.practice == str(secret.resolve())
    with pytest.raises(ConfigError, match="lies outside"):
        load_course(manifest)


@pytest.mark.slow
def test_a_damaged_track_or_a_changed_include_in_a_subfolder_is_made_again(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    write(parts / "close.txt", "Rest now, and return.")
    write(tmp_path / "week.j2", 'Breathe here. [pause 10s..]\n{% include "parts/close.txt" %}\n')
    manifest = write(tmp_path / "course.toml", MANIFEST.replace('"dense.j2"', '"week.j2"'))
    out = tmp_path / "out"
    assert [d.status for d in build(load_course(manifest), out)] == ["made", "made"]
    first = out / "01-week-1-dense.mp3"

    data = first.read_bytes()  # cut short, as a full disk or a killed copy leaves it
    first.write_bytes(data[: len(data) // 2])
    assert [d.status for d in build(load_course(manifest), out)] == ["made", "up to date"]
    assert first.read_bytes()[:3] == b"ID3" and first.stat().st_size > len(data) // 2

    write(parts / "close.txt", "Rest now, and slowly return.")
    assert [d.status for d in build(load_course(manifest), out)] == ["made", "up to date"]
    assert "slowly return" in ID3(str(first)).getall("USLT")[0].text


KEYS = ["title", "practice", "minutes", "file", "ambience", "bell", "cover", "set", "voice",
        "duration", "interval_bell", "rate", "[[track]]", "[defaults]", "[track.set]"]  # fmt: skip
VALUES = ['"settling"', '"../x"', '"/etc/passwd"', "nan", "inf", "-1", "1e400", "true", "[]",
          "{ a = 1 }", '"a.mp3"', '"playlist.m3u8"', "12", '"10s"', '"x" ']  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=12))
def test_any_manifest_loads_or_raises_calmcast_s_own_error(tmp_path, lines):
    text = "\n".join(k if k.startswith("[") else f"{k} = {v}" for k, v in lines)
    manifest = write(tmp_path / "fuzz.toml", text)
    try:
        course = load_course(manifest)
    except ConfigError as e:
        assert "Traceback" not in e.format_message()
        return
    for t in course.tracks:
        assert "/" not in t.file and t.file.endswith(".mp3")
