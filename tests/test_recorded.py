"""A teacher's own voice: clips imported per line, spoken as recorded, the rest by a fallback."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import calmcast
from calmcast.encode import ffmpeg_exe
from calmcast.errors import VoiceError
from calmcast.lines import script_lines
from calmcast.model import Speech
from calmcast.voices import open_voice
from calmcast.voices.recorded import MARGIN, RATE, Folder, import_files
from calmcast.voices.recorded import decode as read
from conftest import decode, ebur128, run_cli, write

PRACTICE = """\
+++
title = "Recorded"
minutes = 2
min_minutes = 1
max_minutes = 5
[variables.name]
default = ""
+++
Welcome{% if name %}, {{ name }}{% endif %}. Settle in. Let the breath be easy.
[pause 10s..]
Breathe in, and breathe out.
[pause 20s..]
This is the end.
"""


def take(path, text: str, lead: float = 0.8, voice: str = "espeak:en-us") -> None:
    """Write a stand-in reading of `text`: another voice and pace, room noise, an M4A at 48 kHz."""
    v = open_voice(voice, 120, 60)
    words = v.synthesize(text)
    pad = np.zeros(int(lead * v.sample_rate), np.float32)
    y = np.concatenate([pad, words, pad])
    y += np.random.default_rng(1).normal(0, 10 ** (-62 / 20), len(y)).astype(np.float32)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", str(v.sample_rate),
                    "-ac", "1", "-i", "-", "-ar", "48000", "-c:a", "aac", "-b:a", "96k", str(path)],
                   input=y.astype("<f4").tobytes(), check=True)  # fmt: skip


@pytest.fixture
def reading(tmp_path, monkeypatch):
    """A practice, its voice folder, and a take of every line but the one with a name."""
    monkeypatch.setenv("CALMCAST_VOICES", str(tmp_path / "voices"))
    practice = write(tmp_path / "p.j2", PRACTICE)
    files = []
    for n, line in enumerate(script_lines(str(practice)), 1):
        if not line.holds:
            files.append(tmp_path / f"{n:02d}-{line.id}.m4a")
            take(files[-1], line.text)
    return practice, files


def test_a_reading_imports_line_by_line_and_says_what_is_missing(reading, tmp_path):
    practice, files = reading
    voice, added, _ = import_files("teacher", files, str(practice))
    assert len(added) == 3 and voice.language == "en"
    stored = Folder.open(tmp_path / "voices" / "teacher")
    for f in files:
        entry = stored.lines[f.stem[-6:]]
        # trimmed to the words with the margin: most of the 0.8 s of room either side gone
        whole = len(read(f)) / RATE
        assert 0.3 < entry["seconds"] <= whole - 1.6 + 2 * MARGIN + 0.05, f
        assert entry["take"] == f.name
    done = run_cli("voices", "status", "teacher", "--practice", str(practice),
                   env={"CALMCAST_VOICES": str(tmp_path / "voices")})  # fmt: skip
    assert done.stdout.splitlines()[0] == f"recorded:teacher: 3 of 4 lines of {practice} recorded"
    assert "missing   2" in done.stdout and "(holds the listener's name)" in done.stdout


@pytest.mark.slow
def test_a_recorded_voice_speaks_its_lines_and_the_fallback_the_rest(reading, tmp_path):
    practice, files = reading
    import_files("teacher", files, str(practice))
    out = tmp_path / "r.mp3"
    result = calmcast.render(practice, out, voice="recorded:teacher", values={"name": "Sam"},
                             ambience=None, minutes=2)  # fmt: skip
    rows = [r for r in result.plan.rows() if r["kind"] == "speech"]
    assert [(r["text"], r["voice"], r.get("fallback", False)) for r in rows] == [
        ("Welcome, Sam. Settle in. Let the breath be easy.", "espeak:en", True),
        ("Breathe in, and breathe out.", "recorded:teacher", False),  # a line, one clip
        ("This is the end.", "recorded:teacher", False),
    ]
    assert result.seconds == pytest.approx(120, abs=1 / 44100)
    assert ebur128(out)[0] == pytest.approx(-16, abs=1.0)
    # Each recorded line in the file is its clip, as the chain prepared it.
    audio = decode(out, 44100, 1)[:, 0]
    starts = [e.start for e in result.plan.timeline.events if isinstance(e.segment, Speech)]
    for start, utterance in list(zip(starts, result.plan.speech, strict=True))[1:]:
        clip = utterance.audio(44100)
        heard = audio[start : start + len(clip)]
        similar = abs(np.dot(heard, clip)) / (np.linalg.norm(heard) * np.linalg.norm(clip))
        assert similar > 0.9


def test_a_retake_changes_the_line_and_nothing_else(reading, tmp_path):
    practice, files = reading
    import_files("teacher", files, str(practice))
    before = calmcast.plan(practice, voice="recorded:teacher", ambience=None)
    take(files[-1], "This is the end.", voice="espeak:en-gb")
    import_files("teacher", [files[-1]], str(practice))
    after = calmcast.plan(practice, voice="recorded:teacher", ambience=None)
    lengths = lambda p: [u.frames for u in p.speech]  # noqa: E731
    assert lengths(before)[:-1] == lengths(after)[:-1] and lengths(before)[-1] != lengths(after)[-1]


def test_what_cannot_be_imported_is_one_line_and_changes_nothing(reading, tmp_path):
    practice, files = reading
    not_audio = write(tmp_path / f"05-{files[0].stem[-6:]}.m4a", "not audio at all")
    with pytest.raises(VoiceError, match=f"{not_audio}: not audio calmcast can read"):
        import_files("teacher", [files[1], not_audio], str(practice))
    assert not (tmp_path / "voices" / "teacher").exists()
    stray = write(tmp_path / "take.m4a", "x")
    with pytest.raises(VoiceError, match="its name holds no line id"):
        import_files("teacher", [files[0], stray], str(practice))
    # Alone, a file named by no line is a continuous take, and read as one.
    with pytest.raises(VoiceError, match=f"{stray}: not audio calmcast can read"):
        import_files("teacher", [stray], str(practice))
    with pytest.raises(VoiceError, match="is also in"):
        import_files("teacher", [files[0], tmp_path / f"x-{files[0].stem[-6:]}.wav"], str(practice))


def test_a_recording_takes_no_rate_or_pitch_and_can_be_removed(reading, tmp_path):
    practice, files = reading
    import_files("teacher", files[:1], str(practice))
    env = {"CALMCAST_VOICES": str(tmp_path / "voices")}
    done = run_cli("plan", str(practice), "--voice", "recorded:teacher", "--wpm", "100", env=env)
    assert done.returncode == 1 and "--wpm and --pitch do not apply to a recorded voice" in done.stderr
    listed = run_cli("voices", env=env).stdout
    assert "recorded:teacher" in listed and "1 lines recorded" in listed
    done = run_cli("voices", "remove", "teacher", env=env)
    assert done.returncode == 0 and not (tmp_path / "voices" / "teacher").exists()
    done = run_cli("plan", str(practice), "--voice", "recorded:teacher", env=env)
    assert done.returncode == 1 and "no recorded voice 'teacher'" in done.stderr


def test_plan_json_marks_the_lines_the_fallback_says(reading, tmp_path):
    practice, files = reading
    import_files("teacher", files, str(practice))
    env = {"CALMCAST_VOICES": str(tmp_path / "voices")}
    done = run_cli("plan", str(practice), "--voice", "recorded:teacher", "--set", "name=Sam",
                   "--fallback-voice", "espeak:en-us", "--json", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout) if r["kind"] == "speech"]
    assert [r.get("fallback", False) for r in rows] == [True, False, False]
    assert rows[0]["voice"] == "espeak:en-us"
    assert "1 line said by espeak:en-us, not recorded" in done.stderr
    assert RATE == 48000


def test_a_course_speaks_a_recorded_voices_lines_and_rebuilds_after_a_retake(reading, tmp_path):
    from calmcast.course import check, fingerprint, load_course

    practice, files = reading
    import_files("teacher", files, str(practice))
    manifest = write(tmp_path / "course.toml", 'title = "Mine"\n[defaults]\nvoice = '
                     '"recorded:teacher"\n[[track]]\npractice = "p.j2"\nset = { name = "Sam" }\n')  # fmt: skip
    course = load_course(manifest)
    [track] = course.tracks
    found = check(course)[track.file].by_voice()
    assert found == {"espeak:en-gb": ["Welcome, Sam. Settle in. Let the breath be easy."],
                     "recorded:teacher": ["Breathe in, and breathe out.", "This is the end."]}  # fmt: skip
    before = fingerprint(course, track)
    take(files[-1], "This is the end.", voice="espeak:en-gb")
    import_files("teacher", [files[-1]], str(practice))
    assert fingerprint(course, track) != before


def test_hostile_takes_and_a_damaged_folder_are_one_line_each(reading, tmp_path):
    import os

    practice, files = reading
    ids = [f.stem[-6:] for f in files]
    both = tmp_path / f"{ids[0]}-{ids[1]}.m4a"
    both.write_bytes(files[0].read_bytes())
    with pytest.raises(VoiceError, match="its name holds two line ids"):
        import_files("teacher", [both], str(practice))
    copy = tmp_path / f"{ids[0]} (1).m4a"  # as a phone or a browser names a second copy
    copy.write_bytes(files[0].read_bytes())
    assert import_files("teacher", [copy], str(practice))[1] == [ids[0]]
    fifo = tmp_path / f"x-{ids[1]}.wav"
    os.mkfifo(fifo)
    with pytest.raises(VoiceError, match="not a regular file"):
        import_files("teacher", [fifo], str(practice))
    silent = tmp_path / f"{ids[1]}.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
                    "-t", "5", str(silent)], check=True)  # fmt: skip
    with pytest.raises(VoiceError, match="no speech in it"):
        import_files("teacher", [silent], str(practice))
    [name_line] = [line for line in script_lines(str(practice)) if line.holds]
    named = tmp_path / f"{name_line.id}.m4a"
    named.write_bytes(files[0].read_bytes())
    with pytest.raises(VoiceError, match="holds the listener's name, which the fallback voice says"):
        import_files("teacher", [named], str(practice))
    # A damaged voice.json, or a clip path outside the folder: one line, no traceback.
    where = tmp_path / "voices" / "teacher" / "voice.json"
    data = json.loads(where.read_text())
    data["lines"][ids[0]]["clip"] = "/etc/passwd"
    where.write_text(json.dumps(data))
    with pytest.raises(VoiceError, match=r"voice\.json: damaged, not as calmcast wrote it"):
        calmcast.plan(practice, voice="recorded:teacher")
    with pytest.raises(VoiceError, match="no recorded voice here"):
        open_voice(str(tmp_path))


def test_a_clip_gone_from_the_folder_is_missing_and_said_by_the_fallback(reading, tmp_path):
    practice, files = reading
    import_files("teacher", files, str(practice))
    folder = Folder.open(tmp_path / "voices" / "teacher")
    gone = files[-1].stem[-6:]
    (folder.path / folder.lines[gone]["clip"]).unlink()
    done = run_cli("voices", "status", "teacher", "--practice", str(practice),
                   env={"CALMCAST_VOICES": str(tmp_path / "voices")})  # fmt: skip
    assert f"missing   4  {gone}" in done.stdout
    p = calmcast.plan(practice, voice="recorded:teacher", ambience=None)
    assert p.fallbacks == [("espeak:en", "This is the end.")]


def test_a_listing_too_large_is_refused_at_once(tmp_path):
    import time

    many = "".join(f'[variables.v{i}]\ndefault = "a"\nchoices = [{", ".join(f"{chr(34)}{c}{chr(34)}" for c in "abcdefghij")}]\n'
                   for i in range(10))  # fmt: skip
    path = write(tmp_path / "huge.j2", f"+++\nmin_minutes = 5\nmax_minutes = 30\n{many}+++\nHi.\n")
    started = time.perf_counter()
    with pytest.raises(Exception, match="more than the 5000 a listing reads"):
        script_lines(str(path))
    assert time.perf_counter() - started < 5  # counted, not listed: 10^10 versions


def test_strict_voice_refuses_a_line_with_no_clip_before_any_work(reading, tmp_path):
    practice, files = reading
    import_files("teacher", files, str(practice))
    env = {"CALMCAST_VOICES": str(tmp_path / "voices")}
    out = tmp_path / "s.mp3"
    done = run_cli("render", str(practice), "--voice", "recorded:teacher", "--set", "name=Sam",
                   "--strict-voice", "--ambience", "none", "-o", str(out), env=env)  # fmt: skip
    assert done.returncode == 1 and not out.exists()
    [message] = done.stderr.strip().splitlines()
    assert f"{practice}:" in message and "recorded:teacher has no clip of 'Welcome, Sam." in message
    assert "--strict-voice" in message
    # Every line recorded (no name given): strict is satisfied; --no-strict-voice undoes it.
    ok = run_cli("plan", str(practice), "--voice", "recorded:teacher", "--strict-voice",
                 "--ambience", "none", env=env)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    loose = run_cli("plan", str(practice), "--voice", "recorded:teacher", "--set", "name=Sam",
                    "--strict-voice", "--no-strict-voice", "--ambience", "none", env=env)  # fmt: skip
    assert loose.returncode == 0 and "not recorded" in loose.stderr, loose.stderr
