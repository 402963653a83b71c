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
from calmcast.errors import CalmcastError, ConfigError
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
        for suffix in (".mp3", ".vtt", ".srt", ".chapters.json", ".chapters.vtt")
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
        "duration", "interval_bell", "wpm", "[[track]]", "[defaults]", "[track.set]"]  # fmt: skip
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


BAD = {  # a value each setting refuses, written as TOML and as a command-line argument
    "minutes": ("0", "0"), "duration": ('"soon"', "soon"), "voice": ('"a\\tb"', "a\tb"),
    "wpm": ("20", "20"), "pitch": ("101", "101"), "ambience": ('"a\\tb"', "a\tb"),
    "bell": ('"a\\tb"', "a\tb"), "interval_bell": ('"often"', "often"),
    "bed_level": ("5", "5"), "duck": ("-1", "-1"), "fade_in": ('"1h"', "1h"),
    "fade_out": ('"x"', "x"), "loudness": ("-5", "-5"), "sample_rate": ("8000", "8000"),
    "channels": ("3", "3"), "bitrate": ('"999k"', "999k"), "title": ('"a\\tb"', "a\tb"),
    "artist": ('"a\\tb"', "a\tb"), "album": ('"a\\tb"', "a\tb"),
    "cover": ('"a\\tb"', "a\tb"), "id3": ("5", "5"),
    "bells": ('["0", "later"]', "0,later"), "strikes": ('"many"', "many"),
    "delay": ('"20m"', "20m"), "end_bell": ('"a\\tb"', "a\tb"),
    "pronounce": ('"Neff"', "Neff"), "language": ('"Deutsch!"', "Deutsch!"),
    "format": ('"docx"', "docx"), "voices": ('"second"', "second"),
    "fallback_voice": ('"a\\tb"', "a\tb"),
    "strict_voice": ('"maybe"', None),  # a switch on the command line: nothing to get wrong
}  # fmt: skip


def test_the_settings_table_covers_the_cli_and_the_manifest_alike():
    from calmcast import settings

    names = {s.name for s in settings.for_command("build")}
    assert names == set(BAD)
    proc = run_cli("render", "--help")
    for s in settings.for_command("render"):
        assert s.flag in proc.stdout
    assert "--track" not in {s.flag for s in settings.for_command("build")}  # numbered by order


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_manifest_refuses_what_the_cli_refuses_with_the_same_words(tmp_path, name):
    from calmcast import settings

    toml, arg = BAD[name]
    with pytest.raises(ConfigError) as info:
        load_course(
            write(
                tmp_path / "c.toml",
                f'title = "T"\n[[track]]\npractice = "sample.j2"\n{name} = {toml}\n',
            )
        )
    message = info.value.format_message()
    assert f"c.toml: track 1: {name}: " in message
    if settings.BY_NAME[name].choices or settings.BY_NAME[name].switch:
        return  # click words a choice its own way on the command line; a switch has no value
    proc = run_cli("render", "sample.j2", settings.BY_NAME[name].flag, arg, cwd=tmp_path)
    assert proc.returncode == 2
    # "Invalid value for '--wpm' / '--rate': expected ..., got '20'"
    cli_words = re.sub(r"^.*?Invalid value for [^:]*: ", "", proc.stderr.strip())
    cli_words = cli_words.split(", got ")[0]  # got 5, or got '5'
    assert f"{name}: {cli_words}" in message, (cli_words, message)


def test_a_track_s_own_length_beats_the_course_s_whichever_way_each_is_given(tmp_path):
    course = load_course(
        write(
            tmp_path / "c.toml",
            """title = "T"
[defaults]
duration = "12m"
[[track]]
practice = "sample.j2"
minutes = 3
[[track]]
practice = "sample.j2"
file = "b.mp3"
[[track]]
practice = "sample.j2"
file = "c.mp3"
duration = "90s"
""",
        )
    )
    assert [t.request.minutes for t in course.tracks] == [3, 12, 1.5]


def test_a_track_at_several_lengths_is_a_file_per_length_named_with_it(tmp_path):
    course = load_course(
        write(
            tmp_path / "c.toml",
            """title = "T"
[[track]]
practice = "sample.j2"
title = "A Colour of Kindness"
minutes = [5, 10, 12.5]
[[track]]
practice = "sample.j2"
file = "own.mp3"
duration = ["2m", "3m"]
""",
        )
    )
    assert [t.file for t in course.tracks] == [
        "01-a-colour-of-kindness-5min.mp3", "01-a-colour-of-kindness-10min.mp3",
        "01-a-colour-of-kindness-12m30s.mp3", "own-2min.mp3", "own-3min.mp3",
    ]  # fmt: skip
    assert [t.title for t in course.tracks][:2] == [
        "A Colour of Kindness (5 min)", "A Colour of Kindness (10 min)"]  # fmt: skip
    assert {t.tags["track"] for t in course.tracks[:3]} == {"1/2"}


def test_sound_and_cover_paths_are_found_beside_the_manifest(tmp_path):
    import subprocess

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=880:d=2",
                    str(sounds / "ting.wav")], check=True)  # fmt: skip
    course = load_course(
        write(
            tmp_path / "c.toml",
            """title = "T"
[defaults]
bell = "sounds/ting.wav"
ambience = "sounds/ting.wav"
[[track]]
practice = "sample.j2"
""",
        )
    )
    (track,) = course.tracks
    assert track.request.bell == str((sounds / "ting.wav").resolve())
    assert track.request.ambience == str((sounds / "ting.wav").resolve())


def test_publishing_fields_and_mix_limits_are_checked_all_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_course(
            write(
                tmp_path / "c.toml",
                """title = "T"
base_url = "ftp://example.org"
email = "nobody"
category = "Meditation"
explicit = "no"
language = "english please"
[[track]]
practice = "sample.j2"
channels = 1
loudness = -14
[[track]]
practice = "sample.j2"
file = "x.mp3"
date = "tomorrow"
minutes = [1, "x"]
""",
            )
        )
    message = info.value.format_message()
    for words in ("base_url: expected an http(s):// address", "email: expected an email",
                  "category: expected an Apple Podcasts category", "explicit: expected true or false",
                  "language: expected a language", "track 2: date: expected a date",
                  "track 2: minutes: expected a number", "track 1 (01-sample.mp3): --loudness -14"):  # fmt: skip
        assert words in message, (words, message)


def test_a_build_refuses_a_folder_it_would_write_through_or_over(tmp_path):
    from calmcast.errors import OutputError

    manifest = write(tmp_path / "course.toml", MANIFEST)
    victim = write(tmp_path / "victim.txt", "precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "01-week-1-dense.mp3").symlink_to(victim)
    with pytest.raises(OutputError, match="a symbolic link; a course build writes only plain"):
        build(load_course(manifest), out)
    (out / "01-week-1-dense.mp3").unlink()
    (out / ".calmcast").symlink_to(tmp_path)
    with pytest.raises(OutputError, match=r"\.calmcast: a symbolic link"):
        build(load_course(manifest), out)
    assert victim.read_text() == "precious"
    # Built into its own folder, a track may not overwrite the course's own inputs.
    clash = write(tmp_path / "clash.toml", MANIFEST.replace(
        'title = "Week 1: Dense"', 'title = "Week 1: Dense"\nfile = "sample.j2.mp3"\nambience = "sample.mp3"'))  # fmt: skip
    (tmp_path / "sample.mp3").write_bytes(b"not really")
    write(clash, clash.read_text().replace('file = "sample.j2.mp3"', 'file = "sample.mp3"'))
    with pytest.raises(CalmcastError):
        build(load_course(clash), tmp_path)
    assert (tmp_path / "sample.mp3").read_bytes() == b"not really"
    with pytest.raises(OutputError, match="not a folder"):
        build(load_course(manifest), victim)


def test_dates_text_and_addresses_a_feed_can_carry(tmp_path):
    from datetime import timezone

    course = load_course(
        write(
            tmp_path / "c.toml",
            """title = "T"
base_url = "HTTPS://Example.org/c"
[[track]]
practice = "sample.j2"
date = 2026-01-31T10:00:00+01:00
""",
        )
    )
    assert course.base_url == "https://example.org/c/"
    assert course.tracks[0].date.tzinfo == timezone.utc and course.tracks[0].date.hour == 9
    for bad, words in (('base_url = "https://e.org/c/#x"', "takes no ?query or #fragment"),
                       ('base_url = "https://me:pw@e.org/"', "user name or password"),
                       ('description = "a\\u0000b"', "control characters"),
                       ('guide = "a\\uffffb"', "no control characters")):  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_course(
                write(
                    tmp_path / "c.toml", f'title = "T"\n{bad}\n[[track]]\npractice = "sample.j2"\n'
                )
            )


def test_the_cover_is_published_by_what_it_is_not_by_its_name(tmp_path):
    import subprocess

    from calmcast.publish import cover_name

    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=s=64x64", "-frames:v", "1",
                    "-f", "image2", "-c:v", "png", str(tmp_path / "art.html")], check=True)  # fmt: skip
    course = load_course(
        write(
            tmp_path / "c.toml",
            'title = "T"\ncover = "art.html"\n[[track]]\npractice = "sample.j2"\n',
        )
    )
    assert cover_name(course) == "cover.png"


def test_names_made_from_titles_are_plain_and_short(tmp_path):
    course = load_course(
        write(
            tmp_path / "c.toml",
            f"""title = "T"
[[track]]
practice = "sample.j2"
title = "Über Ruhe"
[[track]]
practice = "sample.j2"
title = "{"a" * 300}"
""",
        )
    )
    assert course.tracks[0].file == "01-uber-ruhe.mp3"
    assert len(course.tracks[1].file) <= 90


def test_a_course_over_its_limits_is_refused_before_any_track_is_checked(tmp_path):
    tracks = '[[track]]\npractice = "nope"\nminutes = [5, 6]\n' * 501
    with pytest.raises(ConfigError) as info:
        load_course(write(tmp_path / "c.toml", f'title = "T"\n{tracks}'))
    message = info.value.format_message()
    assert "1002 files in all; a course makes at most 1000" in message
    assert "no built-in practice" not in message  # not one of the 501 templates was looked for


@pytest.mark.parametrize("key", ["bell", "end_bell"])
def test_a_bell_file_is_fingerprinted_by_its_content_wherever_the_course_lies(tmp_path, key):
    import shutil

    from calmcast.course import fingerprint

    def fingerprints(folder: Path) -> list[str]:
        course = load_course(folder / "course.toml")
        return [fingerprint(course, t) for t in course.tracks]

    here = tmp_path / "here"
    here.mkdir()
    write(here / "sample.j2", "Breathe.\n[bell]\n")
    (here / "ding.wav").write_bytes(b"one")
    write(here / "course.toml", f'title = "T"\n[defaults]\n{key} = "ding.wav"\n'
          '[[track]]\npractice = "sample.j2"\n')  # fmt: skip
    before = fingerprints(here)
    (here / "ding.wav").write_bytes(b"two")
    changed = fingerprints(here)
    assert changed != before
    shutil.copytree(here, tmp_path / "there")
    assert fingerprints(tmp_path / "there") == changed
