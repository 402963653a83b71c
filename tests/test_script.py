"""The script format: front matter, the sandboxed template, and the markers."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmcast.errors import ScriptError
from calmcast.model import Bell, Chapter, Pause, Speech
from calmcast.practice import practice_from_source
from calmcast.script import render_script


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
    assert render_script(practice, 5).segments[-1].text == "en."
    french = practice_from_source('+++\nlanguage = "fr"\n+++\n{{ language }}.')
    assert render_script(french, 5).segments[-1].text == "fr."


def test_very_long_sentence_is_split_into_bounded_utterances():
    sentence = ", ".join(["breathing in and breathing out slowly"] * 60) + "."
    segs = parse(sentence)
    speech = [s for s in segs if isinstance(s, Speech)]
    assert len(speech) > 3
    assert all(len(s.text) <= 400 for s in speech)
    assert " ".join(s.text for s in speech) == sentence


def test_no_front_matter_title_comes_from_the_file_name(tmp_path):
    from calmcast.practice import load_practice

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

# Words from these letters, less the abbreviations that do not end a sentence ("cf.").
words = st.text(alphabet="abcdefghij", min_size=1, max_size=8).filter(lambda w: w != "cf")
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


RUNAWAY = {
    "a multiplied string": ('{{ "x" * 10**9 }}', "longer than 1,000,000 characters"),
    "nested ranges": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "more than 1,000,000 steps",
    ),
    "a huge power": ("{{ 9**9**9 }}", "a power above"),
    "a wide % format": ('{{ "%999999999d" % 1 }}', "a field wider than"),
    "a wide str.format": ('{{ "{:>999999999}".format(1) }}', "a field wider than"),
    "a wide center": ('{{ "x"|center(999999999) }}', "a width above"),
    "a wide ljust": ('{{ "x".ljust(10**9) }}', "a field wider than"),
    "a doubling loop": (
        '{% set ns = namespace(x="ab") %}{% for i in range(60) %}{% set ns.x = ns.x ~ ns.x %}'
        "{% endfor %}{{ ns.x|length }}",
        "more than 256 MB|longer than",
    ),
    "a growing replace": ('{{ ("a" * 100000)|replace("a", "a" * 1000) }}', "longer than"),
    "a recursive macro": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "called itself"),
    "a list of a huge range": ("{{ range(10**12)|list|length }}", "more than 1,000,000 steps"),
    "a long loop of output": ("{% for i in range(900000) %}Breathe. {% endfor %}", "more than"),
}


@pytest.mark.parametrize("case", RUNAWAY)
def test_a_runaway_template_is_stopped_with_a_message(case):
    source, message = RUNAWAY[case]
    # In a process of its own, so that its peak memory is the template's alone (its own
    # high-water mark: getrusage's maxrss in a child starts at its parent's).
    program = (
        "import json, sys, time\n"
        "from calmcast.errors import ScriptError\n"
        "from calmcast.practice import practice_from_source\n"
        "from calmcast.script import render_script\n"
        "started = time.perf_counter()\n"
        "try:\n"
        "    render_script(practice_from_source(sys.argv[1], 'runaway', 'runaway.j2'))\n"
        "    said = 'rendered'\n"
        "except ScriptError as e:\n"
        "    said = e.format_message()\n"
        "peak = [int(line.split()[1]) for line in open('/proc/self/status')\n"
        "        if line.startswith('VmHWM:')][0]\n"
        "print(json.dumps([said, time.perf_counter() - started, peak]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", program, source], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said, seconds, peak_kb = json.loads(proc.stdout)
    assert re.match(f"runaway.j2: stopped: .*({message})", said), said
    assert seconds < 15
    assert peak_kb < 900_000


def test_a_template_including_itself_is_stopped(tmp_path):
    from calmcast.practice import load_practice

    (tmp_path / "self.j2").write_text('Breathe. {% include "self.j2" %}')
    with pytest.raises(ScriptError, match="called itself"):
        render_script(load_practice(str(tmp_path / "self.j2")))


def test_an_include_cannot_follow_a_link_out_of_the_practice_s_folder(tmp_path):
    from calmcast.practice import load_practice

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("swordfish")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "part.txt").symlink_to(outside / "secret.txt")
    (mine / "p.j2").write_text('Hello. {% include "part.txt" %}')
    with pytest.raises(ScriptError, match="leads outside the practice's folder") as info:
        render_script(load_practice(str(mine / "p.j2")))
    assert "swordfish" not in str(info.value)


def test_a_template_over_the_size_limit_is_refused_before_reading_it_all(tmp_path):
    from calmcast.limits import MAX_TEMPLATE_BYTES
    from calmcast.practice import load_practice

    big = tmp_path / "big.j2"
    big.write_text("Breathe. " * (MAX_TEMPLATE_BYTES // 9 + 10))
    with pytest.raises(ScriptError, match=r"big\.j2: larger than 256 kB"):
        load_practice(str(big))


def test_the_parser_is_linear_up_to_the_size_limit():
    import gc
    import time

    from calmcast.limits import MAX_TEMPLATE_BYTES

    line = "Breathe in, and breathe out slowly. [pause 2s]\n"

    def seconds(n: int, tries: int) -> float:
        p = practice_from_source(line * n)
        best = float("inf")
        gc.collect()
        gc.disable()
        try:
            # The CPU time of this process alone, the quickest of a few: the other test
            # workers and their encoders share the machine's cores.
            for _ in range(tries):
                started = time.process_time()
                render_script(p)
                best = min(best, time.process_time() - started)
        finally:
            gc.enable()
        return best

    most = MAX_TEMPLATE_BYTES // len(line)
    small, large = seconds(500, 5), seconds(most, 3)
    # Linear takes about most/500 (11) times as long; quadratic 11 times that again.
    assert large < 4 * small * most / 500


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Sam [bell gong]", "cannot hold \\["),
        ('Sam <break time="1m"/>', "cannot hold <"),
        ("Sam>", "cannot hold >"),
        ("Sam\x00x", "control character U\\+0000"),
        ("Sam\nJo", "control character U\\+000A"),
        ("x" * 600, "at most 500 characters"),
    ],
)
def test_a_listener_s_value_is_plain_text(value, message):
    p = practice_from_source('+++\n[variables.name]\ndefault = ""\n+++\nHello, {{ name }}.')
    with pytest.raises(ScriptError, match=message):
        render_script(p, values={"name": value})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_duration_text_parses_or_is_refused_plainly(text):
    from calmcast.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds) and 0 <= seconds <= 12 * 3600


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("Breath. []:.,.. 0123456789smh\n{}%#weight=chapterbell")),
        max_size=300,
    )
)
def test_any_script_text_renders_or_raises_calmcast_s_own_error(text):
    import contextlib

    with contextlib.suppress(ScriptError):
        render_script(practice_from_source(text))


@pytest.mark.parametrize(("text", "sentences"), [
    ("Dr. Neff teaches this. Breathe.", ["Dr. Neff teaches this.", "Breathe."]),
    ("Ask Mrs. Lee, e.g. your neighbour. Rest.", ["Ask Mrs. Lee, e.g. your neighbour.", "Rest."]),
    ("Walk to St. Mary's. Then sit.", ["Walk to St. Mary's.", "Then sit."]),
    ("I am drawn. Rest.", ["I am drawn.", "Rest."]),  # "drawn." is not "Dr."
])  # fmt: skip
def test_an_abbreviation_does_not_end_a_sentence(text, sentences):
    segs = render_script(practice_from_source(text + "\n")).segments
    assert [s.text for s in segs if isinstance(s, Speech)] == sentences


@pytest.mark.parametrize(("marker", "seconds"), [
    ("[pause:2.5s]", 2.5), ("[PAUSE=10]", 10), ("[PAUSE:10]", 10), ("[pause: 1m]", 60),
    ("[Pause = 4s]", 4), ('<break time="2s"/>', 2), ('<break time="500ms"/>', 0.5),
    ("<break time='1.5s' />", 1.5), ('<BREAK TIME="750 ms"/>', 0.75), ("<break/>", 1),
    ('<break strength="none"/>', 0), ('<break strength="x-weak"/>', 0.25),
    ('<break strength="weak"/>', 0.5), ('<break strength="medium"/>', 1),
    ('<break strength="strong"/>', 2), ('<break strength="x-strong"/>', 5),
    ('<break time="3s"></break>', 3),
])  # fmt: skip
def test_other_tools_pause_markup_is_a_fixed_pause(marker, seconds):
    segs = parse(f"Breathe. {marker} Rest.")
    (pause,) = [s for s in segs if isinstance(s, Pause)]
    assert (pause.minimum, pause.maximum, pause.kind) == (seconds, seconds, "pause")
    assert [s.text for s in segs if isinstance(s, Speech)] == ["Breathe.", "Rest."]


def test_the_name_of_any_marker_may_be_followed_by_a_colon_or_equals():
    segs = parse("[chapter: Settling] Breathe. [bell=gong]")
    assert [s.title for s in segs if isinstance(s, Chapter)] == ["Settling"]
    assert [s.name for s in segs if isinstance(s, Bell)] == ["gong"]


def test_a_sub_speaks_its_alias_within_its_sentence():
    segs = parse('I am <sub alias="doctor">Dr.</sub> Neff. <sub alias=\'R A I N\'>RAIN</sub> helps.')
    assert [s.text for s in segs if isinstance(s, Speech)] == ["I am doctor Neff.", "R A I N helps."]


def test_punctuation_left_beside_a_tag_is_not_spoken():
    segs = parse('Rest here <break time="1s"/>. And <break/>, here.')
    assert [s.text for s in segs if isinstance(s, Speech)] == ["Rest here", "And", ", here."]


@pytest.mark.parametrize(("body", "message"), [
    ("Hello.\n<p>Rest.</p>", r"test.j2:2:1: <p>: unknown tag <p> .*a tag is never spoken"),
    ('Hi. <audio src="http://example.com/a.mp3"/>', "unknown tag <audio>"),
    ("<speak>Hi.</speak>", "unknown tag <speak>"),
    ('Hi. <break time="soon"/>', "time: 'soon' is not a duration"),
    ('Hi. <break strength="loud"/>', "strength is one of none, x-weak"),
    ('Hi. <break foo="1"/>', "a break takes time or strength, not foo"),
    ('Hi. <break time=2s/>', "cannot read 'time=2s'"),
    ('Hi. <break time="2s"', "unclosed tag"),
    ('Hi. <sub alias="x">y', 'a sub is written <sub alias="what to say">shown</sub>'),
    ("Hi. [pause:soon]", r"\[pause:soon\]: 'soon' is not a duration"),
    ("Hi. [paws:2s]", r"unknown marker \[paws:2s\] \(did you mean \[pause\]\?\)"),
])  # fmt: skip
def test_tags_calmcast_does_not_read_are_errors_with_the_place(body, message):
    with pytest.raises(ScriptError, match=message):
        parse(body)


def test_less_than_in_prose_is_not_a_tag():
    segs = parse("Count to <3 or 4> breaths.")
    assert [s.text for s in segs if isinstance(s, Speech)] == ["Count to <3 or 4> breaths."]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('Rest. <>/="\'break timesub alias strength 0123456789ms\n')),
               max_size=200))  # fmt: skip
def test_any_tag_soup_renders_or_raises_and_never_speaks_a_tag(text):
    try:
        segs = render_script(practice_from_source(text)).segments
    except ScriptError:
        return
    for s in segs:
        if isinstance(s, Speech):
            assert not re.search(r"<\s*/?\s*[A-Za-z]", s.text), s.text
