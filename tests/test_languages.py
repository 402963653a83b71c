"""Practices in other languages: found by folder or front matter, spoken by a voice of their
language, numbers and lengths said in it, and the MP3 tagged with it (read back by mutagen)."""

from __future__ import annotations

import re

import pytest

import calmcast
from calmcast.course import check, load_course
from calmcast.errors import CalmcastError, ScriptError, VoiceError
from calmcast.languages import iso639_2, say_duration, say_number
from calmcast.model import Bell, Chapter, Speech
from calmcast.practice import builtin_languages, builtin_practices, load_practice
from calmcast.script import render_script
from conftest import run_cli

TRANSLATED = ["self-compassion-break", "settling", "silent-sit"]
LANGUAGES = ["de", "es"]
#: Words that would give away an English line left in a translation.
ENGLISH = re.compile(r"\b(the|and|your|you|breath|feel|let|this|with)\b", re.I)


def test_the_built_ins_come_in_three_languages():
    assert builtin_languages() == ["en", "de", "es"]
    for language in LANGUAGES:
        assert builtin_practices(language) == [f"{language}/{n}" for n in TRANSLATED]


@pytest.mark.parametrize(
    ("seconds", "language", "said"),
    [
        (60, "en", "one minute"),
        (1200, "en", "twenty minutes"),
        (750, "en", "twelve minutes and thirty seconds"),
        (60, "de", "eine Minute"),
        (1260, "de", "einundzwanzig Minuten"),
        (5400, "de", "eine Stunde und dreißig Minuten"),
        (60, "es", "un minuto"),
        (1260, "es", "veintiún minutos"),
        (1860, "es", "treinta y un minutos"),
        (75600, "es", "veintiuna horas"),
        (90, "es-419", "un minuto y treinta segundos"),
    ],
)
def test_lengths_are_said_in_the_language_with_its_agreement(seconds, language, said):
    assert say_duration(seconds, language) == said


def test_numbers_in_words_and_languages_that_cannot_say_them():
    assert (say_number(7, "en"), say_number(7, "de"), say_number(7, "es")) == (
        "seven", "sieben", "siete",
    )  # fmt: skip
    with pytest.raises(ValueError, match="lengths are said in en, de, es"):
        say_duration(60, "xx")


def test_id3_language_codes():
    assert [iso639_2(t) for t in ("en-GB", "de", "es-419", "fr_CA", "xx")] == [
        "eng", "deu", "spa", "fra", "und",
    ]  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", TRANSLATED)
def test_a_translation_takes_the_same_variables_and_lengths_as_its_original(name, language):
    original, translated = load_practice(name), load_practice(f"{language}/{name}")
    assert translated.language == language
    assert [(v.name, v.default, v.choices) for v in translated.variables] == [
        (v.name, v.default, v.choices) for v in original.variables
    ]
    assert (translated.minutes, translated.min_minutes, translated.max_minutes) == (
        original.minutes, original.min_minutes, original.max_minutes,
    )  # fmt: skip
    assert translated.title != original.title


def _text(name, minutes, **values):
    return render_script(load_practice(name), minutes, values)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["settling", "self-compassion-break"])
@pytest.mark.parametrize("values", [
    {}, {"anchor": "feet", "posture": "lying", "name": "Sam"}, {"anchor": "sound", "ending": "sleep"},
])  # fmt: skip
def test_a_translation_speaks_only_its_own_language_at_every_length(name, language, values):
    practice = load_practice(f"{language}/{name}")
    for minutes in range(int(practice.min_minutes), int(practice.max_minutes) + 1, 3):
        script = render_script(practice, minutes, values)
        for seg in script.segments:
            if isinstance(seg, (Speech, Chapter)):
                words = seg.text if isinstance(seg, Speech) else seg.title
                assert not ENGLISH.search(words), (minutes, words)
            if isinstance(seg, Speech):
                assert seg.text.lstrip("¿¡")[0].isupper(), seg.text
                assert not re.search(r"\s[,.?]|,,|\.\.|\s\s|[{}\[\]\"]", seg.text), seg.text
        if values.get("name"):
            spoken = [s.text for s in script.speech]
            assert any(t.startswith("Sam, ") and t[5].islower() for t in spoken)


@pytest.mark.parametrize(("language", "promise"), [
    ("de", "Du bestimmst, wie du übst."), ("es", "Tú decides cómo practicar."),
])  # fmt: skip
def test_the_safety_line_is_said_once_at_every_length_in_every_language(language, promise):
    practice = load_practice(f"{language}/self-compassion-break")
    for minutes in range(3, 31):
        text = " ".join(render_script(practice, minutes, {}).text.split())
        assert text.count(promise) == 1, minutes


@pytest.mark.parametrize("language", LANGUAGES)
def test_anchors_and_postures_change_the_words(language):
    name = f"{language}/settling"
    breath = _text(name, 20).text
    for anchor in ("sound", "feet", "hands"):
        assert _text(name, 20, anchor=anchor).text != breath
    lying = _text(name, 20, posture="lying").text
    seat = {"de": "Sitz", "es": "asiento"}[language]
    assert seat in breath and seat not in lying


@pytest.mark.parametrize(("language", "said"), [
    ("en", "Twelve minutes and thirty seconds of silence, with a bell every five minutes."),
    ("de", "Zwölf Minuten und dreißig Sekunden Stille, mit einer Glocke alle fünf Minuten."),
    ("es", "Doce minutos y treinta segundos de silencio, con una campana cada cinco minutos."),
])  # fmt: skip
def test_the_silent_sit_announces_its_length_in_its_language(language, said):
    name = "silent-sit" if language == "en" else f"{language}/silent-sit"
    script = _text(name, 12.5, announce="true", interval="5")
    assert [s.text for s in script.speech] == [said]
    assert not _text(name, 12.5).speech  # silent unless asked
    one = _text(name, 3, announce="true", interval="1").speech[0].text
    assert {"en": "every minute", "de": "jede Minute", "es": "cada minuto"}[language] in one


def test_language_picks_a_built_ins_version_and_a_voice_of_it():
    p = calmcast.plan("settling", minutes=5, language="de", ambience=None)
    assert p.practice.name == "de/settling" and p.voice.language == "de"
    assert p.timeline.length == 5 * 60 * p.timeline.sample_rate
    assert calmcast.plan("es/silent-sit", minutes=2, ambience=None).voice.name.startswith("espeak:es")
    assert calmcast.plan("de/settling", minutes=5, language="de-AT", ambience=None)


def test_a_voice_of_another_language_and_a_missing_version_are_refused():
    with pytest.raises(VoiceError, match="speaks en-gb, but the practice is in de"):
        calmcast.plan("de/settling", minutes=5, voice="espeak:en-gb")
    with pytest.raises(ScriptError, match=r"no built-in practice 'body-scan' in de \(it is written in en\)"):
        calmcast.plan("body-scan", language="de")
    with pytest.raises(ScriptError, match="no built-in practice 'settling' in fr"):
        calmcast.plan("settling", language="fr")
    with pytest.raises(ScriptError, match="de/settling: is written in de, not es: its version in es is es/settling"):
        calmcast.plan("de/settling", language="es")
    with pytest.raises(ScriptError, match=r"es/\.\./settling: no such practice file"):
        calmcast.plan("es/../settling")


def test_a_practice_of_ones_own_takes_its_language_from_its_folder_or_front_matter(tmp_path):
    folder = tmp_path / "de"
    folder.mkdir()
    mine = folder / "abend.j2"
    mine.write_text('+++\nminutes = 5\n[variables.name]\ndefault = ""\nhelp = "Name"\n+++\n'
                    '{% include "_opening.j2" %}\nRuhe.\n[pause 5s..]\n', encoding="utf-8")
    practice = load_practice(str(mine))
    assert practice.language == "de"
    first = render_script(practice, 5, {}).segments
    assert next(s.title for s in first if isinstance(s, Chapter)) == "Ankommen"  # the German partial
    spanish = tmp_path / "tarde.j2"
    spanish.write_text('+++\nlanguage = "es"\n+++\n{{ minutes | minutes_words | capitalize }} de calma.\n',
                       encoding="utf-8")  # fmt: skip
    assert render_script(load_practice(str(spanish)), 20, {}).speech[0].text == "Veinte minutos de calma."
    with pytest.raises(ScriptError, match="is written in es, not de"):
        load_practice(str(spanish), "de")
    unspoken = tmp_path / "xx.j2"
    unspoken.write_text('+++\nlanguage = "xx"\n+++\nx\n', encoding="utf-8")
    with pytest.raises(VoiceError, match=r"xx\.j2: written in xx, and no installed voice speaks xx"):
        calmcast.plan(str(unspoken))
    bad = tmp_path / "bad.j2"
    bad.write_text('+++\nlanguage = "deutsch!"\n+++\nx\n', encoding="utf-8")
    with pytest.raises(ScriptError, match="language: expected a language like de"):
        load_practice(str(bad))
    words = tmp_path / "words.j2"
    words.write_text('line one\n{{ "many" | number_words }}\n', encoding="utf-8")
    with pytest.raises(ScriptError, match=r"words\.j2:2: expected a number, got 'many'"):
        render_script(load_practice(str(words)), 5, {})


def test_a_course_in_german_takes_the_german_versions_and_its_tracks_may_differ(tmp_path):
    manifest = tmp_path / "kurs.toml"
    manifest.write_text(
        'title = "Kurs"\nlanguage = "de"\n'
        '[[track]]\npractice = "settling"\nminutes = 5\n'
        '[[track]]\npractice = "es/self-compassion-break"\nminutes = 3\n'
        '[[track]]\npractice = "silent-sit"\nminutes = 2\nlanguage = "es"\n',
        encoding="utf-8",
    )
    course = load_course(manifest)
    assert course.language == "de"
    found = check(course)
    practices = [load_practice(t.request.practice, t.request.language) for t in course.tracks]
    assert [p.name for p in practices] == ["de/settling", "es/self-compassion-break",
                                           "es/silent-sit"]  # fmt: skip
    assert any("Willkommen" in text for text in found[course.tracks[0].file].texts)
    # Without a language the course's is its tracks' own, when they agree.
    manifest.write_text('title = "Curso"\n[[track]]\npractice = "es/settling"\n', encoding="utf-8")
    assert load_course(manifest).language == "es"
    manifest.write_text('title = "K"\nlanguage = "de"\n[[track]]\npractice = "body-scan"\n',
                        encoding="utf-8")  # fmt: skip
    with pytest.raises(CalmcastError, match=r"track 1 .*no built-in practice 'body-scan' in de"):
        check(load_course(manifest))


def test_practices_lists_what_each_language_has():
    proc = run_cli("practices", "--language", "de")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if not line.startswith(" ")]
    assert names == [f"de/{n}" for n in TRANSLATED]
    assert "German" in proc.stdout
    proc = run_cli("practices", "--language", "fr")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "calmcast: no built-in practices in fr (there are some in en, de, es)"


def test_a_render_in_spanish_is_tagged_spanish(tmp_path):
    from mutagen.id3 import ID3

    out = tmp_path / "es.mp3"
    proc = run_cli("render", "silent-sit", "--language", "es", "--minutes", "1", "--set",
                   "announce=true", "--ambience", "none", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tags = ID3(out)
    assert tags["TLAN"].text == ["spa"]
    assert tags["TIT2"].text == ["Meditación en silencio"]
    assert tags["TXXX:calmcast:voice"].text[0].startswith("espeak:es")
    uslt = tags.getall("USLT")[0]
    assert uslt.lang == "spa" and uslt.text == "Un minuto de silencio."


def test_a_refused_voice_writes_nothing(tmp_path):
    out = tmp_path / "de.mp3"
    proc = run_cli("render", "de/settling", "--voice", "espeak:en-gb", "-o", str(out))
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "the practice is in de" in proc.stderr
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_german_and_a_spanish_break_render_whole_and_tagged(language, tmp_path):
    from mutagen.id3 import ID3

    from conftest import ebur128

    out = tmp_path / f"{language}.mp3"
    proc = run_cli("render", "self-compassion-break", "--language", language, "--minutes", "3",
                   "--ambience", "none", "--bell", "none", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tags = ID3(out)
    assert tags["TLAN"].text == [iso639_2(language)]
    chapters = [c.sub_frames["TIT2"].text[0] for c in tags.getall("CHAP")]
    assert chapters[0] == {"de": "Ankommen", "es": "Llegar"}[language]
    lufs, peak = ebur128(out)
    assert abs(lufs - (-16.0)) <= 1.0 and peak <= -1.0
    p = calmcast.plan("self-compassion-break", language=language, minutes=3, bell="none")
    assert not [e for e in p.timeline.events if isinstance(e.segment, Bell)]
