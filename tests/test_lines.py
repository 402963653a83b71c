"""`calmcast lines`: every line a practice can speak, as a script to record."""

from __future__ import annotations

import json

import pytest

from calmcast.errors import ScriptError
from calmcast.lines import MAX_RENDERS, line_id, script_lines
from calmcast.practice import builtin_practices
from conftest import run_cli, write

PRACTICE = """\
+++
title = "Lines"
minutes = 6
min_minutes = 5
max_minutes = 7.6
[variables.posture]
default = "sitting"
choices = ["sitting", "lying"]
[variables.bell_at_end]
default = true
[variables.name]
default = ""
[variables.colour]
default = "golden"
[voices]
guide = "fake:steady"
second = "fake:slow"
+++
Welcome{% if name %}, {{ name }}{% endif %}. Settle in.
{% if posture == "lying" %}Lie back.{% else %}Sit tall.{% endif %}
[pause 10s..]
Breathe in {{ colour }} light.

{% if minutes >= 7.5 %}A longer rest.{% endif %}
[voice second]
{% if bell_at_end %}I ring the bell.{% else %}No bell today.{% endif %}
"""


def texts(lines) -> list[str]:
    return [line.text for line in lines]


def test_every_line_at_every_length_and_choice_in_reading_order(tmp_path):
    lines = script_lines(str(write(tmp_path / "p.j2", PRACTICE)))
    assert texts(lines) == [
        "Welcome. Settle in. Sit tall.",  # sentences between breaths are one line
        "Welcome, {name}. Settle in. Sit tall.",
        "Welcome. Settle in. Lie back.",
        "Welcome, {name}. Settle in. Lie back.",
        "Breathe in golden light.",  # a paragraph ends a line
        "A longer rest.",  # only at 7.5 minutes and more: a threshold, not a whole minute
        "I ring the bell.",
        "No bell today.",
    ]
    by_text = {line.text: line for line in lines}
    assert by_text["Welcome, {name}. Settle in. Sit tall."].holds == ("name",)
    assert by_text["Breathe in golden light."].holds == ("colour",)
    assert by_text["Welcome. Settle in. Sit tall."].holds == ()
    assert [line.role for line in lines][-2:] == ["second", "second"]
    assert lines[0].id == line_id("Welcome. Settle in.  Sit tall.") and len(lines[0].id) == 6
    assert len({line.id for line in lines}) == len(lines)


def test_set_holds_a_choice_and_lists_only_its_lines(tmp_path):
    path = str(write(tmp_path / "p.j2", PRACTICE))
    lines = script_lines(path, {"posture": "lying", "bell_at_end": "false", "name": "Sam"})
    assert "Sit tall" not in " ".join(texts(lines))
    assert texts(lines)[0] == "Welcome, Sam. Settle in. Lie back." and not lines[0].holds
    assert "I ring the bell." not in texts(lines)


def test_an_id_is_its_words_and_changes_with_them():
    assert line_id("Breathe in.") == line_id("Breathe  in.") != line_id("Breathe out.")


def test_too_many_versions_are_refused_before_any_is_rendered(tmp_path):
    many = "".join(f'[variables.v{i}]\ndefault = "a"\nchoices = ["a", "b", "c"]\n'
                   for i in range(8))  # fmt: skip
    path = write(tmp_path / "many.j2", f"+++\nmin_minutes = 1\nmax_minutes = 30\n{many}+++\nHi.\n")
    with pytest.raises(ScriptError, match=f"more than the {MAX_RENDERS} a listing reads"):
        script_lines(str(path))


def test_cli_prints_a_page_and_json(tmp_path):
    path = write(tmp_path / "p.j2", PRACTICE)
    done = run_cli("lines", str(path))
    assert done.returncode == 0, done.stderr
    page = done.stdout.splitlines()
    assert page[0] == "Lines: 8 lines to record, in 2 voices"
    assert page[2].split(None, 2)[2] == "[guide] Welcome. Settle in. Sit tall."
    assert "holds the listener's name: leave it out" in done.stdout
    assert "holds the listener's colour: read it with the default shown" in done.stdout
    done = run_cli("lines", str(path), "--json", "--set", "posture=sitting")
    rows = json.loads(done.stdout)
    assert rows[0] == {"number": 1, "id": line_id("Welcome. Settle in. Sit tall."),
                       "text": "Welcome. Settle in. Sit tall.", "role": "guide", "holds": []}  # fmt: skip
    done = run_cli("lines", str(path), "--set", "posture=kneeling")
    assert done.returncode == 1 and "expected one of sitting, lying" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", builtin_practices())
def test_every_built_in_practice_lists_its_lines(name):
    lines = script_lines(name)
    assert lines and all(line.text and len(line.id) == 6 for line in lines)
    assert not any(c in line.text for line in lines for c in "[]<>")
