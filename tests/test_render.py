"""End to end: a real voice, a real bed, ffmpeg, and the file read back by other tools."""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

import calmcast
from calmcast.encode import ffmpeg_exe
from calmcast.pipeline import Output, Request, plan, render
from conftest import FIXTURES, ebur128, run_cli

SAMPLE = str(FIXTURES / "sample.j2")


def decoded_seconds(path) -> float:
    """Return the length ffmpeg decodes (it honours the gapless LAME header)."""
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-"],
        capture_output=True,
        check=True,
    ).stdout
    rate = MP3(str(path)).info.sample_rate
    return len(raw) / 2 / rate


@pytest.fixture(scope="module")
def fifteen(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "fifteen.mp3"
    request = Request(
        "soften-soothe-allow",
        minutes=15,
        voice="espeak:en-gb",
        values={"name": "Ana"},
        ambience="rain",
        bell="bowl",
    )
    result = render(request, Output(out, track="2/8", album="Tests", artist="Test Guide"))
    return result, out


@pytest.mark.slow
def test_fifteen_minutes_is_fifteen_minutes(fifteen):
    _result, out = fifteen
    assert abs(decoded_seconds(out) - 900) <= 0.05
    assert abs(MP3(str(out)).info.length - 900) < 0.1  # mutagen counts the encoder's padding
    assert int(str(ID3(str(out))["TLEN"])) == 900_000


@pytest.mark.slow
def test_every_tag_is_written(fifteen):
    result, out = fifteen
    tags = ID3(str(out))
    assert tags.version == (2, 3, 0)
    assert str(tags["TIT2"]) == "Soften, Soothe, Allow"
    assert str(tags["TPE1"]) == "Test Guide"
    assert str(tags["TALB"]) == "Tests"
    assert str(tags["TCON"]) == "Meditation"
    assert str(tags["TRCK"]) == "2/8"
    lyrics = tags.getall("USLT")[0].text
    assert "Ana" in lyrics and "Soften. Soothe. Allow." in lyrics
    assert "[" not in lyrics and "{" not in lyrics
    assert lyrics.startswith(result.plan.script.speech[0].text)
    made = {f.desc: str(f) for f in tags.getall("TXXX")}
    assert made["calmcast:practice"] == "soften-soothe-allow"
    assert made["calmcast:minutes"] == "15.000"
    assert made["calmcast:voice"].startswith("espeak:")
    assert made["calmcast:ambience"] == "rain"
    assert made["calmcast:version"]


@pytest.mark.slow
def test_chapters_read_back_match_the_plan(fifteen):
    result, out = fifteen
    tags = ID3(str(out))
    (toc,) = tags.getall("CTOC")
    assert toc.flags & 0x03 == 0x03  # top level, ordered
    chaps = {c.element_id: c for c in tags.getall("CHAP")}
    got = [
        (str(chaps[i].sub_frames["TIT2"]), chaps[i].start_time, chaps[i].end_time)
        for i in toc.child_element_ids
    ]
    rate = result.plan.timeline.sample_rate
    want = [
        (t, round(a * 1000 / rate), round(b * 1000 / rate))
        for t, a, b in result.plan.timeline.chapters
    ]
    assert got == want
    assert [g[0] for g in got][:2] == ["Arriving", "Finding the difficulty"]
    assert len(got) >= 5
    assert got[-1][2] == 900_000


@pytest.mark.slow
def test_loudness_and_peak_read_back(fifteen):
    lufs, peak = ebur128(fifteen[1])
    assert -17 <= lufs <= -15
    assert peak <= -1.0


def test_plan_json_matches_the_timeline():
    proc = run_cli("plan", SAMPLE, "--minutes", "12.5", "--json", "--voice", "espeak:en-gb")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["kind"] for r in rows} >= {
        "speech",
        "pause",
        "chapter",
        "bell",
        "lead-in",
        "lead-out",
    }
    assert abs(sum(r["length"] for r in rows) - 750) < 0.01
    for a, b in itertools.pairwise(rows):
        assert abs(a["start"] + a["length"] - b["start"]) < 0.002


def test_longer_script_adapts_with_jinja():
    short = calmcast.plan(SAMPLE, minutes=5, voice="espeak:en-gb")
    long = calmcast.plan(SAMPLE, minutes=20, voice="espeak:en-gb")
    assert "Each time the mind wanders" not in short.script.text
    assert "Each time the mind wanders" in long.script.text


def test_rerender_at_another_length_speaks_nothing_new(tmp_path):
    from calmcast.voices.cache import SpeechCache

    cache = SpeechCache(tmp_path)
    plan(Request(SAMPLE, minutes=6, voice="espeak:en-gb"), cache)
    first = cache.misses
    again = SpeechCache(tmp_path)
    plan(Request(SAMPLE, minutes=7.5, voice="espeak:en-gb"), again)
    assert first > 5 and again.misses == 0 and again.hits == first


@pytest.mark.slow
def test_voice_only_mono_render(tmp_path):
    out = tmp_path / "voice.mp3"
    proc = run_cli(
        "render",
        SAMPLE,
        "--minutes",
        "2.5",
        "--ambience",
        "none",
        "--channels",
        "1",
        "--loudness",
        "-19",
        "--bitrate",
        "96k",
        "--id3",
        "4",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    info = MP3(str(out)).info
    assert (info.channels, info.bitrate) == (1, 96000)
    assert ID3(str(out)).version == (2, 4, 0)
    assert abs(decoded_seconds(out) - 150) <= 0.05
    lufs, peak = ebur128(out)
    assert -20 <= lufs <= -18 and peak <= -1.0
    assert proc.stdout.startswith(f"{out}: 2:30.000")


def test_the_fake_voice_times_exactly():
    p = calmcast.plan(SAMPLE, minutes=3, voice="fake:steady")
    speech = [e for e in p.timeline.events if type(e.segment).__name__ == "Speech"]
    # 40 ms a character, at 44.1 kHz after resampling from 22.05 kHz.
    assert [e.length for e in speech] == [len(e.segment.text) * 1764 for e in speech]
    assert p.timeline.length == 3 * 60 * 44100


@pytest.mark.slow
def test_memory_stays_flat_for_long_sessions(tmp_path):
    """Mixing streams blocks: an 8-minute session needs hardly more memory than a 2-minute one."""
    script = (
        "import resource, sys\n"
        f"sys.path.insert(0, {str(FIXTURES.parent)!r}); import conftest\n"
        "from calmcast.pipeline import Request, Output, render\n"
        f"render(Request({SAMPLE!r}, minutes=float(sys.argv[1]), voice='fake:steady', ambience='rain'),"
        " Output(__import__('pathlib').Path(sys.argv[2])))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peaks = []
    for minutes in ("2", "8"):
        proc = subprocess.run(
            [__import__("sys").executable, "-c", script, minutes, str(tmp_path / f"{minutes}.mp3")],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks.append(int(proc.stdout.split()[-1]))
    assert peaks[1] < peaks[0] * 1.25, peaks


def test_bell_option_replaces_a_scripts_own_opening_and_closing_bell(tmp_path):
    from calmcast.model import Bell

    script = tmp_path / "bells.j2"
    script.write_text("[bell]\nArrive here. [pause 10s]\n[bell]\nRest now.\n[bell gong]\n")
    p = plan(Request(str(script), voice="fake:steady", bell="chime"))
    struck = [(e.start, e.segment.name) for e in p.timeline.events if isinstance(e.segment, Bell)]
    # Opening and closing bells become the chime, the one between speech stays; none doubled.
    assert [n for _, n in struck] == ["chime", "chime", "chime"]
    assert len({t for t, _ in struck}) == 3
    plain = plan(Request(str(script), voice="fake:steady"))
    assert [e.segment.name for e in plain.timeline.events if isinstance(e.segment, Bell)] == [
        "bowl", "bowl", "gong",
    ]  # fmt: skip
