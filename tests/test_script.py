"""The script format: front matter, the sandboxed template, and the markers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmcast.errors import ScriptError
from calmcast.model import Bell, Chapter, Pause, Speech
from calmcast.script import practice_from_source, render_script


def parse(body: str, **values):
    practice = practice_from_source(body, "test", "/lessons/test.j2")
    return render_script(practice, values=values).segments


def kinds(segments):
    return [type(s).__name__ if not isinstance(s, Pause) else s.kind for s in segments]


@pytest.mark.parametrize(
    ("marker", "lo", "hi", "weight"),
    [
        ("[pause 10s]", 10, 10, 1),
        ("[pause 1m30s]", 90, 90, 1),
        ("[pause 2.5s]", 2.5, 2.5, 1),
        ("[pause 90]", 90, 90, 1),
        ("[PAUSE 30s..2m]", 30, 120, 1),
        ("[pause 30s..]", 30, math.inf, 1),
        ("[pause 30s..2m weight=2]", 30, 120, 2),
        ("[pause ..1m]", 0, 60, 1),
        ("[pause]", 3, 3, 1),
    ],
)
def test_pause_markers(marker, lo, hi, weight):
    (pause,) = [
        s for s in parse(f"Breathe. {marker} Rest.") if isinstance(s, Pause) and s.kind == "pause"
    ]
    assert (pause.minimum, pause.maximum, pause.weight) == (lo, hi, weight)


def test_sentences_get_breaths_and_paragraphs_get_longer_pauses():
    segs = parse("One. Two!\n\nThree?\n   \nFour")
    assert kinds(segs) == [
        "Speech",
        "breath",
        "Speech",
        "paragraph",
        "Speech",
        "paragraph",
        "Speech",
    ]
    assert [s.text for s in segs if isinstance(s, Speech)] == ["One.", "Two!", "Three?", "Four"]


def test_explicit_pause_replaces_the_automatic_one():
    segs = parse("One. [pause 5s] Two.\n\n[pause 10s]\n\nThree.")
    assert kinds(segs) == ["Speech", "pause", "Speech", "pause", "Speech"]


def test_chapter_and_bell_start_after_the_paragraph_pause():
    segs = parse("Settle here.\n\n[chapter The body]\n[bell gong]\nFeel your feet.")
    assert kinds(segs) == ["Speech", "paragraph", "Chapter", "Bell", "Speech"]
    assert segs[2] == Chapter("The body", segs[2].place)
    assert segs[3].name == "gong"
    assert str(segs[2].place) == "/lessons/test.j2:3:1"


def test_timing_and_variables_from_front_matter():
    body = '+++\ntitle = "T"\nminutes = 7\n[timing]\nbreath = "1.5s"\npause = 4\n[variables.name]\ndefault = ""\nhelp = "h"\n+++\n{% if name %}{{ name }}, rest.{% else %}Rest.{% endif %} Soft. [pause]'
    segs = parse(body, name="Ana")
    assert segs[0].text == "Ana, rest."
    assert segs[1].minimum == 1.5
    assert segs[-1].minimum == 4
    assert parse(body)[0].text == "Rest."


def test_template_sees_minutes_and_language():
    practice = practice_from_source(
        "{% if minutes > 10 %}Long.{% else %}Short.{% endif %} {{ language }}."
    )
    assert render_script(practice, 12).segments[0].text == "Long."
    assert render_script(practice, 5, language="fr").segments[-1].text == "fr."


def test_very_long_sentence_is_split_into_bounded_utterances():
    sentence = ", ".join(["breathing in and breathing out slowly"] * 60) + "."
    segs = parse(sentence)
    speech = [s for s in segs if isinstance(s, Speech)]
    assert len(speech) > 3
    assert all(len(s.text) <= 400 for s in speech)
    assert " ".join(s.text for s in speech) == sentence


def test_no_front_matter_title_comes_from_the_file_name(tmp_path):
    from calmcast.script import load_practice

    path = tmp_path / "evening-wind-down.j2"
    path.write_text("Rest.")
    assert load_practice(str(path)).title == "Evening wind down"


# -- bad input: one line naming the file and place ------------------------------------------

BAD = [
    ("Hello {% if %}", r"^/lessons/test.j2:1: "),
    ("Line one.\nHello {{ colour }}.", r"^/lessons/test.j2:2: 'colour' is undefined"),
    ("Rest.\n  [pause 10x]", r"^/lessons/test.j2:2:3: \[pause 10x\]: '10x' is not a duration"),
    (
        "Rest. [paws 3s]",
        r"^/lessons/test.j2:1:7: unknown marker \[paws 3s\] \(did you mean \[pause\]\?\)",
    ),
    ("[pause 2m..30s]", r"the shortest \(2m\) is longer than the longest \(30s\)"),
    ("[pause 10s weight=2]", r"weight applies only to a range"),
    ("[pause 10s..1m weight=0]", r"weight must be a positive number"),
    ("[chapter]", r"a chapter needs a title"),
    ("Rest [ here.", r"unmatched '\['"),
    ("Rest ] here.", r"unmatched '\]'"),
    ("+++\ntitle = \n+++\nHi.", r"^/lessons/test.j2:2:\d+: front matter: "),
    (
        "+++\ntitle = 'x'\n",
        r"^/lessons/test.j2:1: the front matter opened with \+\+\+ is never closed",
    ),
    ("+++\ncolour = 'x'\n+++\nHi.", r"front matter: unknown key 'colour'"),
    ("+++\nminutes = 'ten'\n+++\nHi.", r"minutes: expected a positive number"),
    (
        "+++\nmin_minutes = 20\nmax_minutes = 5\n+++\n",
        r"min_minutes \(20\) is more than max_minutes \(5\)",
    ),
    (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        r"^/lessons/test.j2:1: .*(unsafe|not allowed|undefined)",
    ),
    ("{% include '/etc/passwd' %}", r"included template '/etc/passwd' not found"),
    ("{% include '../../etc/passwd' %}", r"not found"),
    ("{{ 1 / 0 }}", r"^/lessons/test.j2:1: division by zero"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_scripts_give_one_line_naming_the_place(body, message):
    with pytest.raises(ScriptError, match=message) as info:
        parse(body)
    assert "\n" not in info.value.format_message()


def test_unknown_set_name_lists_the_variables():
    practice = practice_from_source('+++\n[variables.colour]\ndefault = "gold"\n+++\n{{ colour }}.')
    with pytest.raises(
        ScriptError, match=r"--set name: .* has no variable 'name' \(it has: colour\)"
    ):
        render_script(practice, values={"name": "x"})


def test_numeric_variable_is_checked():
    practice = practice_from_source(
        "+++\n[variables.rounds]\ndefault = 3\n+++\n{% for i in range(rounds) %}Breathe. {% endfor %}"
    )
    assert (
        len(
            [
                s
                for s in render_script(practice, values={"rounds": "2"}).segments
                if isinstance(s, Speech)
            ]
        )
        == 2
    )
    with pytest.raises(ScriptError, match="--set rounds=many: expected a finite number"):
        render_script(practice, values={"rounds": "many"})


# -- properties --------------------------------------------------------------------------------

words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
sentence = st.lists(words, min_size=1, max_size=6).map(lambda w: " ".join(w).capitalize() + ".")
seconds = st.integers(min_value=0, max_value=3600)


def spelled(s: int) -> str:
    m, sec = divmod(s, 60)
    return f"{m}m{sec}s" if m and sec else (f"{m}m" if m else f"{sec}s")


item = st.one_of(
    sentence.map(lambda t: ("speech", t, t)),
    seconds.map(lambda s: ("pause", f"[pause {spelled(s)}]", (s, s))),
    st.tuples(seconds, seconds).map(
        lambda p: ("pause", f"[pause {spelled(min(p))}..{spelled(max(p))}]", (min(p), max(p)))
    ),
    seconds.map(lambda s: ("pause", f"[pause {spelled(s)}..]", (s, math.inf))),
    st.sampled_from(["bowl", "gong", "chime"]).map(lambda n: ("bell", f"[bell {n}]", n)),
    words.map(lambda t: ("chapter", f"[chapter {t}]", t)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(item, st.sampled_from([" ", "\n", "\n\n"])), max_size=25))
def test_parser_keeps_every_item_in_order(items):
    body = "".join(text + sep for (_, text, _), sep in items)
    segs = [s for s in parse(body) if not (isinstance(s, Pause) and s.kind != "pause")]
    assert len(segs) == len(items)
    for seg, ((kind, _, want), _) in zip(segs, items, strict=True):
        if kind == "speech":
            assert isinstance(seg, Speech) and seg.text == want
        elif kind == "pause":
            assert isinstance(seg, Pause) and (seg.minimum, seg.maximum) == want
        elif kind == "bell":
            assert isinstance(seg, Bell) and seg.name == want
        else:
            assert isinstance(seg, Chapter) and seg.title == want
    # Automatic silences only ever stand between two pieces of speech.
    all_segs = parse(body)
    for i, seg in enumerate(all_segs):
        if isinstance(seg, Pause) and seg.kind in ("breath", "paragraph"):
            assert any(isinstance(s, Speech) for s in all_segs[:i])
            assert isinstance(
                next(s for s in all_segs[i + 1 :] if not isinstance(s, (Bell, Chapter))), Speech
            )
