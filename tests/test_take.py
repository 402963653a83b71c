"""One continuous take of a practice's lines, cut into clips by aligning it with the script."""

from __future__ import annotations

import json
import re

import pytest

import standin
from calmcast.lines import script_lines
from calmcast.voices.recorded import MARGIN, import_files
from calmcast.voices.take import Expected, Piece, align
from conftest import run_cli, write

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
