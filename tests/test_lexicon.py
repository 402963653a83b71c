"""Pronunciation: respellings reach the voice, and only the voice, and the cache knows."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import calmcast
from calmcast.lexicon import Lexicon, check
from calmcast.model import Pause, Speech
from conftest import FIXTURES, write

VOICE = "espeak:en-gb"


_IPA = """
import json, sys
from piper.phonemize_espeak import EspeakPhonemizer
p = EspeakPhonemizer()
print(json.dumps(["".join("".join(s) for s in p.phonemize("en", t)) for t in json.load(sys.stdin)]))
"""


def ipa(text: str) -> str:
    """Return espeak-ng's phonemes for `text`, through Piper's bridge to the same engine.

    In a process of its own: two espeak-ng libraries in one process (pyttsx3's and Piper's)
    crash it.
    """
    pytest.importorskip("piper.phonemize_espeak")
    proc = subprocess.run([sys.executable, "-c", _IPA], input=json.dumps([text]),
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return json.loads(proc.stdout)[0]


def test_whole_words_in_any_case_keep_their_capital_and_the_longest_wins():
    said = Lexicon({"Neff": "Neph", "eyes close": "eyes cloze"}, {"neff": "Nef"})
    assert said.say("Kristin Neff, neffish. Eyes  close.") == "Kristin Nef, neffish. Eyes cloze."
    assert Lexicon({"close": "cloce", "eyes close": "eyes cloze"}).say(
        "let your eyes close, a close friend") == "let your eyes cloze, a cloce friend"  # fmt: skip
    assert Lexicon().say("unchanged") == "unchanged" and not Lexicon()


@pytest.mark.parametrize(("given", "says"), [
    ("x", "expected WORD=SAY"), ({"a": ""}, "plain text"), ({"a": "[bell]"}, "no brackets"),
    ({"...": "dots"}, "a word or a few"), (3, "expected a table"), ({"a": 3}, "expected text"),
])  # fmt: skip
def test_a_bad_respelling_says_what_is_wrong(given, says):
    with pytest.raises(ValueError, match=says):
        check(given)


def test_the_built_in_opening_says_close_as_the_verb():
    p = calmcast.plan("settling", minutes=10, voice=VOICE, ambience=None)
    written = [e.text for e in p.timeline.events if "eyes close" in e.text]
    assert written, "the opening still says 'let your eyes close'"
    heard = [u.text for u in p.speech if "eyes cloz" in u.text]
    assert heard and "klˈəʊz" in ipa(heard[0]) and "klˈəʊs" in ipa(written[0])


def test_a_respelling_reaches_the_voice_not_the_captions_and_is_its_own_cache_entry(tmp_path):
    practice = write(tmp_path / "p.j2", "+++\n[pronounce]\nNeff = \"Neph\"\n+++\n"
                     "Kristin Neff wrote this.\n[pause 2s]\nAs Neff says, be kind.\n")  # fmt: skip
    p = calmcast.plan(practice, voice=VOICE, ambience=None, cache=tmp_path / "c")
    assert [u.text for u in p.speech] == ["Kristin Neph wrote this.", "As Neph says, be kind."]
    assert [e.text for e in p.timeline.events if isinstance(e.segment, Speech)] == [
        "Kristin Neff wrote this.", "As Neff says, be kind."]  # fmt: skip
    assert "nˈɛf" in ipa(p.speech[0].text)
    # --pronounce (or a manifest's table) wins over the practice's own, and is cached apart.
    q = calmcast.plan(practice, voice=VOICE, ambience=None, cache=tmp_path / "c",
                      pronounce={"Neff": "Nev"})  # fmt: skip
    assert q.speech[0].text == "Kristin Nev wrote this."
    assert q.speech[0].entry.path != p.speech[0].entry.path


def test_a_course_applies_its_respellings_before_it_speaks(tmp_path):
    from calmcast.course import check as check_course
    from calmcast.course import load_course

    write(tmp_path / "p.j2", "Kristin Neff wrote this.\n")
    manifest = write(tmp_path / "c.toml", 'title = "C"\n[defaults]\nvoice = "espeak:en-gb"\n'
                     '[defaults.pronounce]\nNeff = "Neph"\n[[track]]\npractice = "p.j2"\n')  # fmt: skip
    found = check_course(load_course(manifest))
    assert [c.texts for c in found.values()] == [("Kristin Neph wrote this.",)]


def test_a_bad_table_in_front_matter_names_the_file(tmp_path):
    practice = write(tmp_path / "p.j2", '+++\n[pronounce]\nNeff = ""\n+++\nHello.\n')
    with pytest.raises(calmcast.ScriptError, match=r"p.j2.*pronounce: Neff: the respelling"):
        calmcast.plan(practice, voice=VOICE, ambience=None)


def test_other_tools_markup_is_never_spoken_by_espeak(tmp_path):
    script = write(tmp_path / "borrowed.j2", (
        '+++\ntitle = "Borrowed"\n+++\nWelcome. [pause:2s] Breathe in. [PAUSE=3]\n'
        'Rest <break time="1500ms"/> here. <break strength="strong"/>\n'
        'I am <sub alias="doctor">Dr.</sub> Neff.\n'
    ))  # fmt: skip
    p = calmcast.plan(script, voice=VOICE, ambience=None)
    said = [u.text for u in p.speech]
    assert said == ["Welcome.", "Breathe in.", "Rest", "here.", "I am doctor Neff."]
    rate = p.timeline.sample_rate
    pauses = [e.length / rate for e in p.timeline.events
              if isinstance(e.segment, Pause) and e.segment.kind == "pause"]  # fmt: skip
    assert pauses == pytest.approx([2, 3, 1.5, 2])
    heard = ipa(" ".join(said))
    for word in ("break", "time", "alias", "strength", "less", "greater"):
        assert ipa(word).strip() not in heard, word


_MARKUP = re.compile(r"\[[^\]\n]*\]|\([^)\n]*\)|<[^>]*>")


@pytest.mark.parametrize("name", ["notes.txt", "course.md", "breaks.ssml", "steps.txt",
                                  "underlined.txt"])  # fmt: skip
def test_espeak_says_no_markup_of_a_script_as_people_write_it(name, tmp_path):
    """What the voice is given, and the phonemes espeak makes of it, hold no mark and no
    word that stands only inside brackets or tags in the script."""
    path = FIXTURES / "scripts" / name
    p = calmcast.plan(path, voice=VOICE, ambience=None, cache=tmp_path / "c")
    given = " ".join(u.text for u in p.speech)
    assert not set(given) & set("[]<>*#|_`"), given  # braces are text in these scripts
    source = path.read_text(encoding="utf-8").lower()
    said = set(re.findall(r"[a-z]+", given.lower()))
    markup_only = set(re.findall(r"[a-z]{4,}", " ".join(_MARKUP.findall(source)))) - said
    markup_only -= set(re.findall(r"[a-z]+", _MARKUP.sub(" ", source)))
    heard = _words(ipa(given))
    for word in sorted(markup_only | {"bracket", "asterisk", "underscore", "less than"}):
        sought = _words(ipa(word))
        assert not any(heard[i : i + len(sought)] == sought for i in range(len(heard))), word


def _words(phonemes: str) -> list[str]:
    return [w for w in re.split(r"[\s.,;:!?]+", phonemes) if w]
