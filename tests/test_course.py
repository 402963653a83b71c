"""Courses: one manifest in, a folder of tagged MP3s out, rebuilt only where something changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from calmcast.course import build, load_course
from calmcast.errors import ConfigError
from conftest import FIXTURES, ROOT, run_cli, write

MANIFEST = f"""
title = "Test Course"
guide = "A. Teacher"
[defaults]
voice = "espeak:en-gb"
ambience = "none"
minutes = 1
[[track]]
practice = "{FIXTURES / "dense.j2"}"
title = "Week 1: Dense"
[[track]]
practice = "{FIXTURES / "sample.j2"}"
title = "Week 2: Sample"
minutes = 2
set = {{ name = "Ana" }}
"""


@pytest.mark.slow
def test_build_makes_a_tagged_folder_and_then_only_what_changed(tmp_path):
    manifest = write(tmp_path / "course.toml", MANIFEST)
    out = tmp_path / "out"
    done = build(load_course(manifest), out)
    assert [d.status for d in done] == ["made", "made"]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["01-week-1-dense.mp3", "02-week-2-sample.mp3", "playlist.m3u8"]
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
    assert "course.toml: track 1: minutes: expected a positive number, got 'ten'" in message
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
    assert "9 tracks, all fine" in proc.stdout
    course = load_course(ROOT / "examples" / "compassion-course.toml")
    assert [Path(t.request.practice).name for t in course.tracks][:2] == [
        "settling",
        "soften-soothe-allow",
    ]
