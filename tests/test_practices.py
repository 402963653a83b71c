"""The built-in practices, planned with the real espeak voice at their shortest, usual and
longest lengths: exact totals, a meditation's balance of speech and silence, and the
listener's choices reading naturally wherever they appear."""

from __future__ import annotations

import functools
import itertools
import re
import sys
from pathlib import Path

import pytest

import calmcast
from calmcast.model import Bell, Chapter, Pause, Speech
from calmcast.practice import builtin_practices, load_practice
from calmcast.script import render_script
from conftest import load_script_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COURSE = Path(__file__).resolve().parents[1] / "examples" / "compassion-course.toml"
VOICE = "espeak:en-gb"  # pinned: the neural default, when installed, paces differently
PRACTICES = [
    "settling",
    "soften-soothe-allow",
    "compassionate-colour",
    "compassionate-being",
    "mandala-of-compassion",
    "self-compassion-break",
    "compassionate-enquiry",
    "loving-kindness",
    "silent-sit",
    "body-scan",
    "counting-breaths",
    "compassion-for-others",
    "recognise-allow",
    "hard-moment",
]
#: The practices written in other languages too, by the name each is found by.
TRANSLATED = [f"{language}/{name}" for language in ("de", "es")
              for name in ("self-compassion-break", "settling", "silent-sit")]  # fmt: skip
#: Short by design: one to three minutes, its own frame.
BRIEF = ["hard-moment"]
GUIDED = [p for p in PRACTICES if p not in ("silent-sit", *BRIEF)]
#: The practices that take an anchor (counting the breath is the breath's own practice).
ANCHORED = [p for p in GUIDED if p != "counting-breaths"]
#: A silence at least this long lets the listener breathe between stretches of speech.
RESTING_PAUSE = 2.0


@functools.cache
def planned(name: str, minutes: float, values: tuple[tuple[str, str], ...] = ()):
    """Return the plan, made once per session: every figure below reads the same one."""
    return calmcast.plan(name, minutes=minutes, voice=SHAPES.voice_for(name, VOICE),
                         values=dict(values), ambience=None)  # fmt: skip


def figures(p) -> dict[str, float]:
    """Return the total, the speech share, the longest pause's share and the longest run."""
    tl = p.timeline
    seconds = [(e.segment, e.length / tl.sample_rate) for e in tl.events]
    total = tl.length / tl.sample_rate
    speech = sum(s for seg, s in seconds if isinstance(seg, Speech))
    longest_pause = max((s for seg, s in seconds if isinstance(seg, Pause)), default=0.0)
    run = longest_run = 0.0
    for seg, s in seconds:
        if isinstance(seg, Pause) and s >= RESTING_PAUSE:
            run = 0.0
        elif isinstance(seg, (Speech, Pause)):
            run += s
            if isinstance(seg, Speech):
                longest_run = max(longest_run, run)
    return {
        "total": total,
        "speech": speech / total,
        "pause": longest_pause / total,
        "run": longest_run,
    }


def lengths(name: str) -> list[float]:
    practice = load_practice(name)
    # 30 minutes, or the practice's longest if shorter; the walks reach 45 with timing voices.
    longest = min(practice.max_minutes or 30.0, 30.0)
    return sorted({practice.min_minutes, practice.minutes, longest})


def _case(name: str, minutes: float):
    """A practice at a length: at its default in the fast lane, at its ends in the full one."""
    default = load_practice(name).minutes
    return pytest.param(name, minutes, marks=() if minutes == default else pytest.mark.slow)


CASES = [_case(name, m) for name in PRACTICES for m in lengths(name)]
GUIDED_CASES = [c for c in CASES if c.values[0] in GUIDED]


def spoken(p) -> list[str]:
    return [seg.text for seg in p.script.segments if isinstance(seg, Speech)]


def chapters(p) -> list[str]:
    return [seg.title for seg in p.script.segments if isinstance(seg, Chapter)]


def test_the_practices_are_built_in_and_partials_are_not():
    assert builtin_practices("en") == sorted(PRACTICES)
    assert builtin_practices() == sorted(PRACTICES) + sorted(TRANSLATED)


@pytest.mark.parametrize("name", PRACTICES + TRANSLATED)
def test_front_matter_is_complete_and_lengths_are_ordered(name):
    practice = load_practice(name)
    assert practice.title and len(practice.description) > 80
    assert practice.min_minutes <= practice.minutes
    assert practice.language == (name.split("/")[0] if "/" in name else "en")
    if name.endswith("silent-sit"):
        assert practice.min_minutes == 1 and practice.max_minutes is None
    else:
        assert practice.minutes <= practice.max_minutes
        assert "name" in {v.name for v in practice.variables}
    for variable in practice.variables:
        assert variable.help, f"{name}: variable {variable.name} needs help text"


@pytest.mark.parametrize(("name", "minutes"), CASES)
def test_plan_lasts_exactly_the_minutes_asked(name, minutes):
    p = planned(name, minutes)
    assert p.timeline.length == round(minutes * 60 * p.timeline.sample_rate)
    assert figures(p)["total"] == pytest.approx(minutes * 60)


@pytest.mark.parametrize(("name", "minutes"), GUIDED_CASES)
def test_speech_and_silence_are_in_balance(name, minutes):
    f = figures(planned(name, minutes))
    assert 0.05 <= f["speech"] <= 0.60, f"speech is {f['speech']:.1%} of the session"
    assert f["pause"] <= 1 / 3, f"one pause is {f['pause']:.1%} of the session"


@pytest.mark.parametrize(("name", "minutes"), GUIDED_CASES)
def test_no_long_stretch_of_speech_without_a_rest(name, minutes):
    assert figures(planned(name, minutes))["run"] <= 40.0


@pytest.mark.parametrize(("name", "minutes"), GUIDED_CASES)
def test_several_elastic_pauses_share_the_spare_time(name, minutes):
    p = planned(name, minutes)
    elastic = [seg for seg in p.script.segments if isinstance(seg, Pause) and seg.elastic]
    assert len(elastic) >= (5 if minutes < 8 else 8)
    assert len(chapters(p)) >= 4
    assert chapters(p)[0] == "Arriving" and chapters(p)[-1] == "Returning"


@pytest.mark.slow
def test_longer_sessions_say_more_not_only_wait_longer():
    for name in GUIDED:
        short, _, long = (planned(name, m) for m in lengths(name))
        assert len(spoken(long)) > 1.3 * len(spoken(short)), name


@pytest.mark.parametrize("name", GUIDED)
@pytest.mark.parametrize("who", ["", "Sam"])
def test_renders_with_and_without_a_name(name, who):
    minutes = load_practice(name).minutes
    p = planned(name, minutes, (("name", who),))
    lines = spoken(p)
    for line in lines:
        assert line[0].isupper(), f"{line!r} does not start with a capital"
        assert not re.search(r"\s[,.?]|,,|\.\.|\s\s|[{}\[\]\"]", line), line
    mentions = sum("Sam" in line for line in lines)
    if who:
        assert 2 <= mentions <= 6, f"the name is spoken {mentions} times"
        assert any(line.startswith("Sam, ") and line[5].islower() for line in lines)
    else:
        assert mentions == 0
        assert not any(line.startswith(", ") or " , " in line for line in lines)


def test_mandala_meets_the_parts_the_listener_names():
    parts = "the critic, the frightened child,  the one who is never good enough ,"
    p = planned("mandala-of-compassion", 20, (("parts", parts),))
    assert [c for c in chapters(p) if c.startswith("Meeting")] == [
        "Meeting the critic",
        "Meeting the frightened child",
        "Meeting the one who is never good enough",
    ]
    text = " ".join(spoken(p))
    assert "The critic. The frightened child. And the one who is never good enough." in text
    assert "anxious" not in text
    f = figures(p)
    assert 0.15 <= f["speech"] <= 0.60 and f["pause"] <= 1 / 3 and f["run"] <= 40


def test_mandala_default_parts_each_get_a_chapter():
    p = planned("mandala-of-compassion", 20)
    met = [c for c in chapters(p) if c.startswith("Meeting")]
    assert met == [
        "Meeting the anxious one",
        "Meeting the angry one",
        "Meeting the grieving one",
        "Meeting the tired one",
    ]


def test_loving_kindness_round_for_someone_difficult_is_optional():
    without = planned("loving-kindness", 20)
    named = (("loved_one", "Anna"), ("difficult_person", "someone you find difficult"))
    with_round = planned("loving-kindness", 20, named)
    assert "Someone difficult" not in chapters(without)
    assert "Someone difficult" in chapters(with_round)
    text = " ".join(spoken(with_round))
    assert "bring to mind Anna." in text and "bring to mind someone you find difficult." in text
    assert 0.15 <= figures(with_round)["speech"] <= 0.60


@pytest.mark.parametrize(("colour", "phrase"), [
    ("soft blue", "Perhaps a soft blue light."), ("amber", "Perhaps an amber light."),
    ("Emerald", "Perhaps an Emerald light."), ("pale blue light", "Perhaps a pale blue light."),
    ("twilight", "Perhaps a twilight light."), (" rose pink ", "Perhaps a rose pink light."),
])  # fmt: skip
def test_compassionate_colour_speaks_the_chosen_colour(colour, phrase):
    text = render_script(load_practice("compassionate-colour"), 12, {"colour": colour}).text
    assert phrase in " ".join(text.split())


@pytest.mark.parametrize(("being", "phrase"), [
    ("my grandmother", "Perhaps your grandmother."), ("My old teacher", "Perhaps your old teacher."),
    ("a warm golden light", "Perhaps a warm golden light."),
])  # fmt: skip
def test_compassionate_being_speaks_the_listeners_own_being(being, phrase):
    text = render_script(load_practice("compassionate-being"), 15, {"being": being}).text
    assert phrase in " ".join(text.split())


@pytest.mark.parametrize(
    ("minutes", "interval", "marks"),
    [(20, "5", [5, 10, 15]), (12, "2.5", [2.5, 5, 7.5, 10]), (6, "5", []), (1, "0", [])],
)
def test_silent_sit_is_bells_and_silence_with_interval_bells_on_the_minute(
    minutes, interval, marks
):
    p = planned("silent-sit", minutes, (("interval", interval),))
    rate = p.timeline.sample_rate
    assert p.timeline.length == minutes * 60 * rate
    assert not spoken(p)
    bells = [e.start / rate for e in p.timeline.events if isinstance(e.segment, Bell)]
    opening, *between, closing = bells
    assert [round(t - opening, 3) for t in between] == [m * 60 for m in marks]
    if between:
        assert closing - between[-1] >= 30, "an interval bell crowds the closing bell"
    # The closing bell is struck early enough to ring out before the file ends.
    assert opening < closing < minutes * 60


def test_silent_sit_has_no_upper_limit():
    p = planned("silent-sit", 90)
    assert p.timeline.length == 90 * 60 * p.timeline.sample_rate


def test_example_course_uses_the_practices_as_they_are_declared():
    course = tomllib.loads(COURSE.read_text(encoding="utf-8"))
    assert course["title"] and course["description"]
    tracks = course["track"]
    assert [t["title"][:6] for t in tracks[:8]] == [f"Week {n}" for n in range(1, 9)]
    for track in tracks:
        practice = load_practice(track["practice"])
        lengths = track.get("minutes", course["defaults"]["minutes"])
        for minutes in lengths if isinstance(lengths, list) else [lengths]:
            assert practice.min_minutes <= minutes <= (practice.max_minutes or minutes)
            values = {k: str(v) for k, v in track.get("set", {}).items()}
            assert set(values) <= {v.name for v in practice.variables}, track["title"]
            p = planned(track["practice"], minutes, tuple(sorted(values.items())))
            assert p.timeline.length == round(minutes * 60 * p.timeline.sample_rate)


def _bells(p) -> list[tuple[float, str]]:
    rate = p.timeline.sample_rate
    return [(e.start / rate, e.segment.name) for e in p.timeline.events
            if isinstance(e.segment, Bell)]  # fmt: skip


@pytest.mark.parametrize("name", ["settling", "soften-soothe-allow", "silent-sit"])
def test_the_session_bell_replaces_the_practices_bells(name):
    default = load_practice(name).minutes
    plain = _bells(calmcast.plan(name, minutes=default, voice=VOICE, ambience=None))
    gong = _bells(calmcast.plan(name, minutes=default, voice=VOICE, ambience=None, bell="gong"))
    assert {n for _, n in plain} == {"bowl"}
    # The same strikes, none added (the last may come earlier: a gong needs longer to ring out).
    assert len(gong) == len(plain) and gong[0][0] == plain[0][0]
    assert {n for _, n in gong} == {"gong"}


def test_bell_none_silences_every_bell():
    for name in ("settling", "silent-sit"):
        p = calmcast.plan(name, minutes=10, voice=VOICE, ambience=None, bell="none",
                          values={"interval": "5"} if name == "silent-sit" else {})  # fmt: skip
        assert _bells(p) == [] and p.bells == {}
        assert p.timeline.length == 10 * 60 * p.timeline.sample_rate
    with pytest.raises(calmcast.ConfigError, match="--interval-bell has none to strike"):
        calmcast.plan("silent-sit", bell="none", interval_bell="5m", voice=VOICE)


def test_a_timer_and_the_silent_sits_own_intervals_never_strike_twice_at_once():
    p = calmcast.plan("silent-sit", minutes=20, voice=VOICE, ambience=None,
                      values={"interval": "5"}, interval_bell="5m")  # fmt: skip
    times = [t for t, _ in _bells(p)]
    assert all(b - a >= 10 for a, b in itertools.pairwise(times)), times
    # Counted from the opening bell, the timer's bells fall on the sit's own intervals.
    assert [round(t - times[0], 3) for t in times[1:-1]] == [300, 600, 900]


#: The practices that turn towards difficult feelings.
TOWARDS_DIFFICULTY = ["soften-soothe-allow", "compassionate-enquiry", "self-compassion-break",
                      "mandala-of-compassion", "compassionate-being", "loving-kindness",
                      "compassion-for-others", "recognise-allow"]  # fmt: skip


@pytest.mark.parametrize("name", TOWARDS_DIFFICULTY)
def test_the_safety_line_is_said_once_at_every_length(name):
    practice = load_practice(name)
    for minutes in range(int(practice.min_minutes), int(practice.max_minutes) + 1):
        text = " ".join(render_script(practice, minutes, {}).text.split())
        assert text.count("You are in charge of this practice.") == 1, (name, minutes)
        assert re.search(r"open your eyes, feel your feet.*stop at any time", text)
        assert "Strong feelings" in text and "they pass." in text


# How length shapes a session (the rules docs/practices.md shows in its table).
SHAPES = load_script_file("practice-table")
#: Every practice can be had this short, or shorter.
SHORTEST = {"self-compassion-break": 3, "mandala-of-compassion": 8, "silent-sit": 1,
            "hard-moment": 1}  # fmt: skip
#: And this long, or longer.
LONGEST = {"settling": 45, "silent-sit": 45, "body-scan": 45, "counting-breaths": 45,
           "hard-moment": 3}  # fmt: skip


@pytest.mark.parametrize("name", PRACTICES)
def test_every_practice_can_be_had_at_common_lengths(name):
    practice = load_practice(name)
    assert practice.min_minutes <= SHORTEST.get(name, 5)
    assert (practice.max_minutes or 999) >= LONGEST.get(name, 30)


def _walk(name: str, voice: str, every: bool = True) -> list[str]:
    practice = load_practice(name)
    if practice.language != "en":
        voice = f"{voice}@{practice.language}"
    lo, hi = int(practice.min_minutes), int(practice.max_minutes or 45)
    scripts = {m: render_script(practice, m, {}).segments for m in range(lo - 1, hi + 2)}
    # The lengths one script can reach are an interval, so where neighbouring minutes render
    # the same script only the ends of that run of minutes need planning.
    ends = [m for m in range(lo, hi + 1) if scripts[m] != scripts[m - 1] or scripts[m] != scripts[m + 1]]
    missed = []
    for minutes in sorted({lo, hi, *ends}) if every else (lo, hi):
        try:
            p = calmcast.plan(name, minutes=minutes, voice=voice, ambience=None)
        except calmcast.LengthError as e:
            missed.append(f"{minutes}: {e.reason}")
            continue
        assert p.timeline.length == minutes * 60 * p.timeline.sample_rate
    return missed


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n == "self-compassion-break" else pytest.mark.slow)
    for n in PRACTICES + TRANSLATED
])  # fmt: skip
def test_every_whole_minute_of_the_range_plans_with_a_slow_voice(name):
    # Where a template adds words partway up its range, a slow voice can miss that length:
    # 90 ms a character is slower than any real voice here, so every minute is walked.
    assert _walk(name, "fake:slow") == []


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n == "self-compassion-break" else pytest.mark.slow)
    for n in PRACTICES + TRANSLATED
])  # fmt: skip
def test_a_fast_voice_reaches_both_ends_of_the_range(name):
    # Quick speech leaves the most time to fill: the late silences are open-ended.
    assert _walk(name, "fake:steady", every=False) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", GUIDED + [n for n in TRANSLATED if not n.endswith("silent-sit")])
def test_length_shapes_the_session_with_the_real_voice(name):
    shapes = {m: SHAPES.measure(name, m, VOICE) for m in (5, 10, 30) if m >= SHORTEST.get(name, 5)}
    # Longer sessions mostly mean longer silences: the words grow slowly with the length.
    assert shapes[30].speech <= 1.6 * shapes[10].speech
    assert shapes[30].longest_silence >= 180
    if 5 in shapes:
        assert shapes[5].framing_share <= 0.25


def test_the_shape_of_a_session_is_measured_from_its_timeline():
    p = calmcast.plan("settling", minutes=5, voice="fake:steady", ambience=None)
    s = SHAPES.shape(p)
    tl, rate = p.timeline, p.timeline.sample_rate
    assert s.total == 300
    assert s.speech == sum(e.length for e in tl.events if isinstance(e.segment, Speech)) / rate
    # Silences between two sounds: the longest is at least the longest single pause, and
    # no silence holds speech or a bell.
    longest = max(e.length for e in tl.events if isinstance(e.segment, Pause)) / rate
    assert longest <= s.longest_silence < s.total - s.speech
    (_, _, first_end), *_, (last, last_start, _) = tl.chapters
    assert last == "Returning"
    assert s.framing == (first_end + tl.length - last_start) / rate


def test_the_practices_table_in_the_docs_is_the_scripts_own():
    doc = SHAPES.DOC.read_text(encoding="utf-8")
    table = doc.split(SHAPES.BEGIN)[1].split(SHAPES.END)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert sorted(r.split("`")[1] for r in rows) == sorted(PRACTICES + TRANSLATED)
    for row in rows:
        name = row.split("`")[1]
        assert f"| {load_practice(name).min_minutes:g} min |" in row, row


# The timer: bell times, strikes, a start delay and a distinct end bell.


def _timer(name="silent-sit", minutes=30, **options):
    return calmcast.plan(name, minutes=minutes, voice=VOICE, ambience=None, **options)


def test_bells_at_the_times_asked_counted_from_the_opening_bell():
    p = _timer(bells="0,10m,25m")
    times = [t for t, _ in _bells(p)]
    opening, *between, closing = times
    # 0 is the opening bell itself, not a second bell at the same moment.
    assert [round(t - opening, 3) for t in between] == [600, 1500]
    assert closing > opening + 1500 + 10
    assert p.timeline.length == 30 * 60 * p.timeline.sample_rate


def test_bell_times_come_as_a_list_too_and_are_checked_before_any_audio():
    from calmcast.settings import parse

    # A manifest gives a list; the command line a comma list.
    assert parse("bells", ["25m", 0, "10m"]) == parse("bells", "25m, 0,10m") == (0, 600, 1500)
    p = _timer(minutes=20, bells=["10m"])
    assert [round(t - _bells(p)[0][0]) for t, _ in _bells(p)][1] == 600
    with pytest.raises(calmcast.ConfigError, match=r"--bells 25m is too late: this 20m session"):
        _timer(minutes=20, bells="0,25m")
    with pytest.raises(calmcast.ConfigError, match=r"bells: .soon. is not a duration"):
        _timer(bells="0,soon")


def test_every_bell_struck_three_times_four_seconds_apart():
    one, three = _timer(minutes=20, interval_bell="5m"), _timer(
        minutes=20, interval_bell="5m", strikes=3
    )
    assert len(_bells(three)) == 3 * len(_bells(one))
    times = [t for t, _ in _bells(three)]
    for k in range(0, len(times), 3):
        assert [round(b - a, 3) for a, b in itertools.pairwise(times[k : k + 3])] == [4.0, 4.0]
    # The strikes of one bell are one bell: the groups keep the timer's spacing.
    assert [round(t - times[0], 3) for t in times[3:-3:3]] == [300, 600, 900]
    assert three.timeline.length == 20 * 60 * three.timeline.sample_rate
    # A guided practice's own bells are struck three times too, and its words keep clear.
    guided = _timer("settling", minutes=10, strikes=3)
    assert len(_bells(guided)) == 6
    first_words = next(e.start for e in guided.timeline.events if isinstance(e.segment, Speech))
    assert first_words / guided.timeline.sample_rate > _bells(guided)[2][0]


def test_a_start_delay_is_silence_before_the_first_bell_and_the_length_holds():
    p = _timer(minutes=10, delay="10s", interval_bell="5m")
    (first, _), (interval, _), *_ = _bells(p)
    assert first == 10.0 and interval == 310.0
    assert p.timeline.length == 10 * 60 * p.timeline.sample_rate
    assert _bells(_timer("settling", minutes=5, delay=0))[0][0] == 0.0


@pytest.mark.parametrize("name", ["silent-sit", "settling", "loving-kindness"])
def test_the_end_bell_is_struck_at_the_end_only(name):
    p = _timer(name, minutes=10, end_bell="gong", interval_bell="4m")
    names = [n for _, n in _bells(p)]
    assert names[-1] == "gong" and set(names[:-1]) == {"bowl"}
    assert p.timeline.length == 10 * 60 * p.timeline.sample_rate
    # The gong rings longer than the bowl: it is struck early enough to ring out.
    last = _bells(p)[-1][0]
    assert last + p.bells["gong"].ring <= 10 * 60


def test_timer_options_on_the_command_line_and_their_mistakes(tmp_path):
    from conftest import run_cli

    proc = run_cli("plan", "silent-sit", "--minutes", "12", "--bells", "0,5m", "--strikes",
                   "2", "--end-bell", "gong", "--delay", "5s", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import json

    rows = json.loads(proc.stdout)
    events = rows["events"] if isinstance(rows, dict) else rows
    bells = [(r["start"], r.get("name") or r.get("text")) for r in events if r["kind"] == "bell"]
    assert [round(t, 3) for t, _ in bells[:4]] == [5.0, 9.0, 305.0, 309.0]
    for bad, says in [(("--strikes", "0"), "--strikes"), (("--strikes", "2.5"), "whole number"),
                      (("--delay", "20m"), "--delay"), (("--bells", ""), "--bells")]:  # fmt: skip
        proc = run_cli("plan", "silent-sit", *bad)
        assert proc.returncode != 0 and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 3


# Anchors and postures.
ANCHORS = {"breath": "the breath", "sound": "the sounds around you", "feet": "your feet",
           "hands": "your hands"}  # fmt: skip


@pytest.mark.parametrize("name", ANCHORED)
def test_every_guided_practice_offers_four_anchors_and_two_postures(name):
    declared = {v.name: v for v in load_practice(name).variables}
    assert declared["anchor"].choices == tuple(ANCHORS) and declared["anchor"].default == "breath"
    assert declared["posture"].choices == ("sitting", "lying")


@pytest.mark.parametrize("name", ANCHORED)
@pytest.mark.parametrize("anchor", ["sound", "feet", "hands"])
def test_another_anchor_replaces_the_breath_wherever_attention_returns(name, anchor):
    practice = load_practice(name)
    for minutes in (practice.min_minutes, 20):
        text = " ".join(render_script(practice, minutes, {"anchor": anchor}).text.split())
        assert ANCHORS[anchor] in text, (name, minutes)
        for breath_line in ("Let your attention find the breath", "Come back to the breath",
                            "count the breaths", "Feel the breath wherever"):  # fmt: skip
            assert breath_line not in text, (name, minutes, breath_line)


@pytest.mark.parametrize("name", GUIDED)
def test_lying_down_changes_the_words_about_the_body(name):
    practice = load_practice(name)
    for minutes in (practice.min_minutes, 10, 20):
        sitting = " ".join(render_script(practice, minutes, {}).text.split())
        lying = " ".join(render_script(practice, minutes, {"posture": "lying"}).text.split())
        for seated in ("Your weight in the seat", "Simply sit.", "sitting here",
                       "Feel your seat.", "Find a way of sitting", "sinking into the seat"):  # fmt: skip
            assert seated not in lying, (name, minutes, seated)
        if minutes >= 8:
            assert "Find a way of lying down" in lying and "Find a way of sitting" in sitting


def test_an_anchor_the_practice_does_not_offer_is_refused_with_the_choices():
    with pytest.raises(calmcast.ScriptError, match="anchor=toes: expected one of breath, sound"):
        render_script(load_practice("settling"), 10, {"anchor": "toes"})
    assert "ground" in render_script(load_practice("settling"), 10, {"anchor": "FEET"}).text


# Fidelity: each practice keeps its defining moves at every length.


@pytest.mark.parametrize("minutes", [5, 12, 30])
def test_soften_soothe_allow_names_the_feeling_before_softening(minutes):
    names = chapters(planned("soften-soothe-allow", minutes))
    assert names.index("Naming the feeling") < names.index("Soften")


def test_the_mandala_speaks_of_its_parts_as_people_not_things():
    text = " ".join(render_script(load_practice("mandala-of-compassion"), 30, {}).text.split())
    assert "Ask them, gently, what do you need?" in text
    for thing in ("Ask it,", "how it looks", "Offer it", "let it return"):
        assert thing not in text


@pytest.mark.parametrize("minutes", [5, 10, 30])
def test_loving_kindness_wishes_freedom_from_suffering_and_has_a_compassion_round(minutes):
    p = planned("loving-kindness", minutes)
    text = " ".join(spoken(p))
    assert "May I be free from suffering." in text
    assert ("Someone who is suffering" in chapters(p)) == (minutes >= 10)


@pytest.mark.parametrize("minutes", [5, 10, 30])
def test_the_enquiry_asks_one_question_before_each_silence(minutes):
    p = planned("compassionate-enquiry", minutes)
    assert "Can I pause here, for a moment?" in " ".join(spoken(p))
    asked = 0
    for seg in p.script.segments:
        if isinstance(seg, Speech):
            asked += seg.text.count("?")
        elif isinstance(seg, Pause) and seg.minimum >= 5:
            assert asked <= 1, "two questions before one silence"
            asked = 0


@pytest.mark.parametrize("minutes", [5, 12])
def test_the_colour_carries_its_wish_at_every_length(minutes):
    text = " ".join(spoken(planned("compassionate-colour", minutes)))
    assert "Let the colour carry a wish for you." in text


@pytest.mark.parametrize("name", GUIDED)
def test_the_bedtime_ending_has_no_return_and_no_bell_and_the_bed_plays_on(name):
    practice = load_practice(name)
    for minutes, bell in ((practice.min_minutes, None), (20, "gong")):  # --bell adds none
        p = calmcast.plan(name, minutes=minutes, voice="fake:steady", values={"ending": "sleep"},
                          bell=bell)  # fmt: skip
        assert chapters(p)[-1] == "Drifting off"
        rate, events = p.timeline.sample_rate, p.timeline.events
        last_words = max(e.end for e in events if isinstance(e.segment, Speech))
        assert not [e for e in events if isinstance(e.segment, Bell) and e.start >= last_words]
        assert (p.timeline.length - last_words) / rate >= 24  # a long last silence of bed
        text = " ".join(spoken(p))
        closing = text.split("Now let the practice go.")[-1]
        assert "open your eyes" not in closing and "Goodnight" in closing


@pytest.mark.parametrize("minutes", [1, 2, 3])
def test_the_pause_for_a_hard_moment_is_feet_three_breaths_and_a_kind_word(minutes):
    p = planned("hard-moment", minutes)
    assert chapters(p) == ["Stop", "Feet", "Three breaths", "A kind word", "Back to the day"]
    text = " ".join(spoken(p))
    assert "Feel your feet on the ground." in text and "Say something kind to yourself." in text
    assert len(_bells(p)) == (0 if minutes < 2 else 2)
    assert p.timeline.length == minutes * 60 * p.timeline.sample_rate


@pytest.mark.parametrize("direction", ["up", "down"])
def test_the_body_scan_travels_the_way_asked_and_visits_more_places_in_longer_sits(direction):
    practice = load_practice("body-scan")
    visits = {}
    for minutes in (5, 20):
        text = " ".join(render_script(practice, minutes, {"direction": direction}).text.split())
        feet, head = text.index("Begin with your feet" if direction == "up" else "your feet."), \
            text.index("the top of your head" if minutes >= 10 else "your face and your head")
        assert (feet < head) == (direction == "up")
        visits[minutes] = text.count("Now your ")
    assert visits[20] > 2 * visits[5]


def test_counting_falls_away_into_resting_in_longer_sits():
    assert "Letting the counting go" not in chapters(planned("counting-breaths", 5))
    assert "Letting the counting go" in chapters(planned("counting-breaths", 20))
