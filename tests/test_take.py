"""One continuous take of a practice's lines, cut into clips by aligning it with the script."""

from __future__ import annotations

import itertools
import json
import re
import wave

import numpy as np
import pytest

import calmcast
import standin
from calmcast.errors import VoiceError
from calmcast.lines import script_lines
from calmcast.mix import RoomTone
from calmcast.model import Speech
from calmcast.voices.recorded import MARGIN, import_files
from calmcast.voices.room import measure
from calmcast.voices.take import Expected, Piece, align
from conftest import decode, ebur128, run_cli, write

PRACTICE = """\
+++
title = "A Reading"
minutes = 4
min_minutes = 3
max_minutes = 8
[variables.name]
default = ""
[variables.colour]
default = "soft blue"
+++
Welcome{% if name %}, {{ name }}{% endif %}. Let yourself arrive, just as you are.
[pause 10s..]
Find a way of sitting that feels steady and easy. Let your hands rest.
[pause 10s..]
Notice where your body meets the chair, the floor, the cushion. Let it hold you.
[pause 10s..]
Breathe in.
[pause 5s..]
Let your attention rest on the breath, coming in and going out, in its own time.
[pause 10s..]
Imagine a colour of kindness, {{ colour }}, all around you. Let it be warm.
[pause 10s..]
When the mind wanders, and it will, notice where it went. Then come back, gently.
[pause 10s..]
Feel your shoulders soften. Your jaw. The space between your eyebrows.
[pause 10s..]
Rest here for a while.
[pause 30s..]
Now let the breath deepen a little. Feel the room around you again.
[pause 5s..]
Thank you for giving yourself this time.
"""


@pytest.fixture
def practice(tmp_path, monkeypatch):
    monkeypatch.setenv("CALMCAST_VOICES", str(tmp_path / "voices"))
    return write(tmp_path / "reading.j2", PRACTICE)


def readable(practice):
    """Return the lines a reader records: all but the one that holds the listener's name."""
    return [line for line in script_lines(str(practice)) if "name" not in line.holds]


@pytest.mark.slow
def test_a_take_is_cut_into_its_lines_within_30_ms_of_the_words(practice, tmp_path):
    lines = readable(practice)
    reading = standin.make(lines, seed=11)
    assert reading.inner and reading.breaths and reading.cough != (0.0, 0.0)
    take = reading.write(tmp_path / "take.flac")
    voice, added, again = import_files("teacher", [take], str(practice))
    assert sorted(added) == sorted(line.id for line in lines) and not again
    for line in lines:
        entry = voice.lines[line.id]
        start, end = reading.words[line.id]
        at = entry["at"]
        # From the margin before the words to the margin after them: a line with a pause
        # inside it is one clip, the breath before a line and the cough left out.
        assert at == pytest.approx(start - MARGIN, abs=0.03), line.text
        assert at + entry["seconds"] == pytest.approx(end + MARGIN, abs=0.03), line.text
    assert voice.room is not None and voice.room.level == pytest.approx(standin.ROOM, abs=1.5)
    data = json.loads((voice.path / "voice.json").read_text())
    assert data["lines"][lines[0].id]["take"] == "take.flac"


def test_the_alignment_keeps_a_line_whole_across_its_inner_pause():
    # Three lines of 2, 4 and 2 s (as the synthetic voice reads them), the second read with a
    # 1.4 s pause in it and the gaps between lines shorter than that: durations decide.
    lines = [Expected(n, f"{n:06d}", "x", s, False, m)
             for n, s, m in ((1, 2.0, ()), (2, 4.0, (0.5,)), (3, 2.0, ()))]  # fmt: skip
    found = [Piece(0.0, 2.0, -20), Piece(2.7, 4.7, -20), Piece(6.1, 8.1, -20),
             Piece(8.8, 10.8, -20)]  # fmt: skip
    _, runs, dropped = align(found, lines, 1.0, -20)
    assert [(r[1], r[2]) for r in runs] == [(0, 1), (1, 3), (3, 4)] and not dropped
    # A breath before the last line (quiet, short) is dropped, not made part of it.
    found.insert(3, Piece(8.2, 8.45, -40))
    _cost, runs, dropped = align(found, lines, 1.0, -20)
    assert [(r[1], r[2]) for r in runs] == [(0, 1), (1, 3), (4, 5)] and dropped == [3]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["missing", "extra", "ends early"])
def test_a_take_that_does_not_fit_is_one_line_naming_the_line_and_changes_nothing(
    practice, tmp_path, fault
):
    lines = readable(practice)
    import_files("teacher", [standin.make(lines[:3], seed=3).write(tmp_path / "first.wav")],
                 str(practice), numbers={1, 3, 4})  # fmt: skip
    before = (tmp_path / "voices" / "teacher" / "voice.json").read_bytes()
    numbers = {line.id: n for n, line in enumerate(script_lines(str(practice)), 1)}
    if fault == "missing":
        # (lines[5] holds the colour: a reader may leave it out, so not a line beside it)
        read, want = lines[:2] + lines[3:], f"line {numbers[lines[2].id]} is not in the take"
    elif fault == "extra":
        stranger = type(lines[0])("0" * 6, "Picture a still lake in the mountains, its water "
                                  "clear and cold. Rest your gaze on it for a while.", "guide")
        read = [*lines[:4], stranger, *lines[4:]]
        want = r"at 0:\d\d.\d, after line \d+, '.*': \d.\d s of speech fit no line"
    else:
        read = lines[:-2]
        want = (f"the take ends after {len(read)} utterances; {len(lines)} lines expected, the "
                f"first missing is {numbers[lines[-2].id]}")  # fmt: skip
    take = standin.make(read, seed=5).write(tmp_path / "take.m4a")
    done = run_cli("voices", "import", "teacher", str(take), "--practice", str(practice),
                   env={"CALMCAST_VOICES": str(tmp_path / "voices")})  # fmt: skip
    assert done.returncode != 0
    [message] = done.stderr.strip().splitlines()
    assert message.startswith(f"calmcast: {take}: ")
    assert re.search(want, message), message
    assert (tmp_path / "voices" / "teacher" / "voice.json").read_bytes() == before


@pytest.mark.slow
def test_a_retake_of_some_lines_replaces_just_those(practice, tmp_path):
    lines = readable(practice)
    numbers = {line.id: n for n, line in enumerate(script_lines(str(practice)), 1)}
    voice, _added, _ = import_files("teacher", [standin.make(lines, seed=2).write(
        tmp_path / "all.wav")], str(practice))  # fmt: skip
    clips = {k: v["sha256"] for k, v in voice.lines.items()}
    again = lines[4:7]
    wanted = ",".join(str(numbers[line.id]) for line in again)
    retake = standin.make(again, seed=9, wpm=110).write(tmp_path / "retake.m4a")
    done = run_cli("voices", "import", "teacher", str(retake), "--practice", str(practice),
                   "--lines", wanted, env={"CALMCAST_VOICES": str(tmp_path / "voices")})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "0 lines added, 3 recorded again" in done.stdout
    after = json.loads((tmp_path / "voices" / "teacher" / "voice.json").read_text())["lines"]
    changed = {k for k in clips if after[k]["sha256"] != clips[k]}
    assert changed == {line.id for line in again}


def test_lines_must_name_lines_of_the_practice(practice, tmp_path):
    f = write(tmp_path / "take.wav", "")
    for given, said in (("3-x", "is not a line number"), ("0", "lines count from 1"),
                        ("99", "has 12 lines, not 99")):  # fmt: skip
        done = run_cli("voices", "import", "t", str(f), "--practice", str(practice),
                       "--lines", given, env={"CALMCAST_VOICES": str(tmp_path / "v")})  # fmt: skip
        assert done.returncode != 0 and said in done.stderr, done.stderr
    assert not (tmp_path / "v").exists()


def _db(x) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


@pytest.mark.slow
@pytest.mark.parametrize(("minutes", "ambience"), [(4, None), (7, "rain")])
def test_a_take_renders_as_one_continuous_recording(practice, tmp_path, minutes, ambience):
    lines = readable(practice)
    take = standin.make(lines, seed=4).write(tmp_path / "take.m4a")
    import_files("teacher", [take], str(practice))
    out = tmp_path / "s.mp3"
    result = calmcast.render(practice, out, voice="recorded:teacher", minutes=minutes,
                             ambience=ambience, values={"name": "Sam"})  # fmt: skip
    rows = [r for r in result.plan.rows() if r["kind"] == "speech"]
    assert [r["voice"] for r in rows].count("recorded:teacher") == len(rows) - 1
    assert rows[0]["fallback"] and rows[0]["text"].startswith("Welcome, Sam.")
    assert result.plan.timeline.length == minutes * 60 * 44100
    x = decode(out, 44100, 1)[:, 0]
    r = 44100
    said = [(e.start, e.start + u.length(r), u.voice) for e, u in zip(
        [e for e in result.plan.timeline.events if isinstance(e.segment, Speech)],
        result.plan.speech, strict=True)]  # fmt: skip
    # The voice on target, measured by ffmpeg's meter on the speech alone (bed and all).
    stereo = decode(out, 44100, 2)
    voice = np.concatenate([stereo[a:b] for a, b, _ in said])
    wav = tmp_path / "voice.wav"
    with wave.open(str(wav), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(r)
        f.writeframes(np.clip(np.round(voice * 32767), -32768, 32767).astype("<i2").tobytes())
    assert ebur128(wav)[0] == pytest.approx(-16, abs=1.0)
    clips = [(a, b) for a, b, v in said if v == "recorded:teacher"]
    # No step at any join: the room either side of each clip's edge is at one level.
    w = int(0.09 * r)
    for a, b in clips:
        for before, after in ((x[a - w - 441 : a - 441], x[a + 441 : a + 441 + w]),
                              (x[b - 441 - w : b - 441], x[b + 441 : b + 441 + w])):  # fmt: skip
            assert abs(_db(before) - _db(after)) < 3.0, (a / r, b / r)
    if ambience is None:
        # The longest pause is the room: as loud as the room in the clips' margins, steady,
        # never black, and never repeating (no echo of itself in its autocorrelation).
        margins = _db(np.concatenate([x[a + 441 : a + 441 + w] for a, _ in clips]))
        gaps = [(b, c) for (_, b, _), (c, _, _) in itertools.pairwise(said)]
        b, c = max(gaps, key=lambda g: g[1] - g[0])
        assert (c - b) / r > 30
        pause = x[b + r : c - r].astype(np.float64)
        assert _db(pause) == pytest.approx(margins, abs=3.0)
        seconds = np.array([_db(pause[k : k + r]) for k in range(0, len(pause) - r, r)])
        assert seconds.max() - seconds.min() < 2.0 and seconds.min() > -75
        pause -= pause.mean()
        spectrum = np.fft.rfft(pause, 2 * len(pause))
        ac = np.fft.irfft(np.abs(spectrum) ** 2)[: len(pause)]
        assert np.abs(ac[int(0.05 * r) : len(pause) // 2] / ac[0]).max() < 0.05


def test_the_room_tone_is_the_room_measured_at_any_range_and_never_repeats():
    rng = np.random.default_rng(0)
    room_noise = standin.pink(10 * standin.RATE, -60.0, rng)
    heard = measure([room_noise], standin.RATE)
    assert heard is not None and heard.level == pytest.approx(-60.0, abs=0.2)
    tone = RoomTone(heard, 48000, highpass=0.0)
    y = tone.render(0, 20 * 48000)
    assert _db(y) == pytest.approx(-60.0, abs=0.5)
    # The same samples whichever range is asked for: blocks of a render join seamlessly.
    assert np.allclose(tone.render(123_456, 200_000), y[123_456:200_000], atol=1e-9)
    # Pink in, pink out: each octave band about 3 dB below the one under it.
    again = measure([y], 48000)
    bands = dict(again.bands)
    near = lambda hz: min(bands, key=lambda f: abs(f - hz))  # noqa: E731
    for hz in (200, 400, 800, 1600, 3200):
        assert bands[near(hz)] - bands[near(2 * hz)] == pytest.approx(3.0, abs=1.0)
    ac = np.fft.irfft(np.abs(np.fft.rfft(y, 2 * len(y))) ** 2)[: len(y)]
    assert np.abs(ac[2400 : len(y) // 2] / ac[0]).max() < 0.02


@pytest.mark.slow
def test_plan_gives_the_lengths_a_reading_reaches(practice, tmp_path):
    lines = readable(practice)
    shortest = {}
    for name, wpm in (("slow", 90), ("quick", 150)):
        take = standin.make(lines, seed=6, wpm=wpm).write(tmp_path / f"{name}.wav")
        import_files(name, [take], str(practice))
        p = calmcast.plan(practice, voice=f"recorded:{name}", ambience=None)
        shortest[name] = p.reach[0]
        assert p.reach[0] <= p.seconds <= p.reach[1]
    # A slow reader's recording reaches a longer shortest.
    assert shortest["slow"] > shortest["quick"] + 10
    done = run_cli("plan", str(practice), "--voice", "recorded:slow", "--ambience", "none",
                   env={"CALMCAST_VOICES": str(tmp_path / "voices")})  # fmt: skip
    assert "this speech reaches" in done.stdout.splitlines()[0]


def test_a_take_of_silence_or_of_noise_alone_is_refused(practice, tmp_path):
    rng = np.random.default_rng(0)
    for name, x, said in (("silence.wav", np.zeros(5 * 48000), "no speech in it"),
                          ("hiss.wav", rng.normal(0, 0.1, 20 * 48000), "no speech stands out")):  # fmt: skip
        path = tmp_path / name
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(48000)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        with pytest.raises(VoiceError, match=f"{path}: {said}"):
            import_files("teacher", [path], str(practice))
    assert not (tmp_path / "voices").exists()
