"""Scripts as people write them: plain text and Markdown, their notes read as pauses."""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import subprocess
import sys

import pytest

import calmcast
from calmcast.formats import LONG, OPEN, SHORT, note_for
from calmcast.model import Bell, Chapter, Pause, Speech
from calmcast.practice import load_practice
from calmcast.script import render_script
from conftest import FIXTURES, write

SCRIPTS = FIXTURES / "scripts"


def segments(path, minutes=None):
    return render_script(load_practice(str(path)), minutes).segments


def said(segs) -> list[str]:
    return [s.text for s in segs if isinstance(s, Speech)]


def written(segs) -> list[tuple[float, float]]:
    return [(s.minimum, s.maximum) for s in segs if isinstance(s, Pause) and s.kind == "pause"]


@pytest.mark.parametrize(("note", "pause"), [
    ("pause", "[pause]"), ("Pause.", "[pause]"), ("PAUSE", "[pause]"),
    ("pause for 30 seconds", "[pause 30s]"), ("Pause for a minute.", "[pause 1m]"),
    ("pause for one minute", "[pause 1m]"), ("pause 10s", "[pause 10s]"),
    ("20 second pause", "[pause 20s]"), ("two minutes of silence", "[pause 2m]"),
    ("1 min", "[pause 1m]"), ("90 sec", "[pause 1m30s]"), ("half a minute", "[pause 30s]"),
    ("pause for a minute and a half", "[pause 1m30s]"), ("1.5 minutes", "[pause 1m30s]"),
    ("twenty-five seconds", "[pause 25s]"), ("two to three minutes of silence", "[pause 2m..3m]"),
    ("2-3 minutes", "[pause 2m..3m]"), ("silence for 5 minutes", "[pause 5m]"),
    ("long pause", f"[pause {LONG[0]:g}s..{LONG[1] / 60:g}m]"),
    ("a while", f"[pause {LONG[0]:g}s..{LONG[1] / 60:g}m]"),
    ("pause for a while", f"[pause {LONG[0]:g}s..{LONG[1] / 60:g}m]"),
    ("silence", f"[pause {OPEN[0]:g}s..{OPEN[1] / 60:g}m]"),
    ("rest here", f"[pause {OPEN[0]:g}s..{OPEN[1] / 60:g}m]"),
    ("short pause", f"[pause {SHORT:g}s]"), ("a moment", f"[pause {SHORT:g}s]"),
    ("a minute", "[pause 1m]"), ("a few minutes", "[pause 2m..4m]"),
    ("30-second pause", "[pause 30s]"), ("one-minute pause", "[pause 1m]"),
    ("two minutes' silence", "[pause 2m]"), ("two and a half minutes", "[pause 2m30s]"),
    ("2m30s", "[pause 2m30s]"), ("pause 0:30", "[pause 30s]"),
    ("30 seconds to 1 minute", "[pause 30s..1m]"), ("seventy seconds", "[pause 1m10s]"),
    ("pause 2 minutes 30 seconds", "[pause 2m30s]"), ("pauses", "[pause]"),
    ("Pausing", "[pause]"), ("a pause", "[pause]"), ("3 breaths", "[pause 15s]"),
    ("take three deep breaths", "[pause 15s]"), ("a couple of minutes", "[pause 2m]"),
    ("several minutes of silence", "[pause 3m..5m]"), ("-5 seconds", None),
    ("pause for 99999 hours", None), ("pause for 0 seconds", None),
    ("bell", "[bell]"), ("ring the bell", "[bell]"), ("bell rings", "[bell]"),
    ("gong", "[bell gong]"), ("singing bowl", "[bell bowl]"),
    ("BELL x3", "[bell] [pause 4s] [bell] [pause 4s] [bell]"),
    ("the bell rings twice", "[bell] [pause 4s] [bell]"), ("bell of mindfulness", None),
    ("bells and gongs", None), ("ring 20 bells", None),
    ("smile", None), ("music fades", None), ("rest your hands on your lap", None),
    ("or your body", None), ("see page 3", None), ("", None),
])  # fmt: skip
def test_pause_notes_as_people_write_them(note, pause):
    assert note_for(note) == pause


def test_a_plain_script_reads_its_notes_as_pauses_and_speaks_no_note(caplog):
    with caplog.at_level(logging.WARNING):
        practice = load_practice(str(SCRIPTS / "notes.txt"))
        segs = render_script(practice).segments
    assert practice.title == "Evening Rest"
    assert said(segs) == [
        "Welcome.", "Find a comfortable position, and let your eyes close.",
        "Take a deep breath in", "and let it go.",
        "Notice your feet (and your hands) resting here.",
        "Now, gently", "come back.", "Stay here", "and rest.", "Thank you.",
    ]  # fmt: skip
    assert written(segs) == [
        (3, 3), (1.5, 1.5), (30, 30), (60, 60), LONG, (120, 120), (10, 10), (20, 20), (3, 3),
        (120, 180), LONG, (SHORT, SHORT), OPEN, (60, 60), (90, 90), (30, 30),
    ]  # fmt: skip
    assert [s.name for s in segs if isinstance(s, Bell)] == [None]
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        f"{SCRIPTS / 'notes.txt'}:14: (smile): not a pause note calmcast knows; not spoken",
        f"{SCRIPTS / 'notes.txt'}:15: [music fades]: not a pause note calmcast knows; not spoken",
    ]


def test_a_markdown_script_s_headings_are_its_title_and_chapters():
    practice = load_practice(str(SCRIPTS / "course.md"))
    segs = render_script(practice).segments
    assert practice.title == "Kindness for Yourself"
    assert [s.title for s in segs if isinstance(s, Chapter)] == ["Arriving", "Wishing well"]
    assert said(segs) == [
        "A short practice of warmth and care, with a link read as its text.",
        "Sit comfortably.", "Let your shoulders soften.", "May I be safe.",
        "May I be kind to myself.", "Rest in this quietly", "for a while.", "Now return.",
    ]  # fmt: skip
    assert written(segs) == [(60, 60), (30, 120), (1.5, 1.5), (2, 2), LONG]


def test_underlined_headings_and_other_tools_markers_in_plain_text():
    practice = load_practice(str(SCRIPTS / "underlined.txt"))
    segs = render_script(practice).segments
    assert practice.title == "Body of Light"
    assert [s.title for s in segs if isinstance(s, Chapter)] == ["Part Two"]
    assert written(segs) == [(5, 5), (10, 10)]
    assert said(segs)[-1] == "{{ name }} stays as written."  # braces are text, not template


def test_a_script_s_front_matter_is_kept_and_its_lines_are_its_own(tmp_path):
    script = write(tmp_path / "mine.txt", '+++\ntitle = "Mine"\nminutes = 3\n+++\nHello.\n'
                   "(pause for a while)\nBye. [pause 10s..nope]\n")  # fmt: skip
    with pytest.raises(calmcast.ScriptError, match=r"mine\.txt:7:\d+: \[pause 10s\.\.nope\]"):
        segments(script)
    script.write_text('+++\ntitle = "Mine"\nminutes = 2\n+++\nHello.\n(pause for a while)\nBye.\n',
                      encoding="utf-8")  # fmt: skip
    practice = load_practice(str(script))
    assert practice.title == "Mine" and practice.minutes == 2
    p = calmcast.plan(script, voice="fake:steady", ambience=None)
    assert p.timeline.length == 2 * 60 * p.timeline.sample_rate


def test_a_script_reaches_other_lengths_through_its_elastic_notes():
    shortest = calmcast.plan(SCRIPTS / "notes.txt", voice="fake:steady", ambience=None)
    rate = shortest.timeline.sample_rate
    for extra in (1, 3):
        minutes = math.ceil(shortest.timeline.length / rate / 60) + extra
        p = calmcast.plan(SCRIPTS / "notes.txt", minutes=minutes, voice="fake:steady",
                          ambience=None)  # fmt: skip
        assert p.timeline.length == minutes * 60 * rate
    with pytest.raises(calmcast.CalmcastError, match="out of reach"):
        calmcast.plan(SCRIPTS / "notes.txt", minutes=60, voice="fake:steady", ambience=None)


def test_espeak_speaks_a_markdown_script_without_its_marks(tmp_path):
    copy = shutil.copy(SCRIPTS / "course.md", tmp_path / "course.md")
    p = calmcast.plan(copy, voice="espeak:en-gb", ambience=None)
    for u in p.speech:
        assert not re.search(r"[\[\]<>*_#`]", u.text), u.text
        assert u.frames > 0
    assert math.isclose(p.timeline.length / p.timeline.sample_rate,
                        sum(e.length for e in p.timeline.events) / p.timeline.sample_rate)  # fmt: skip


def test_cli_renders_a_markdown_script_to_the_plan_s_length(tmp_path):
    out = tmp_path / "kindness.mp3"
    proc = subprocess.run([sys.executable, "-m", "calmcast", "render", str(SCRIPTS / "course.md"),
                           "--voice", "espeak:en-gb", "--ambience", "none", "--minutes", "4",
                           "-o", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from mutagen.mp3 import MP3

    audio = MP3(out)
    assert audio.info.length == pytest.approx(240, abs=0.06)
    assert str(audio.tags["TIT2"]) == "Kindness for Yourself"
    assert [str(f.sub_frames["TIT2"]) for f in audio.tags.getall("CHAP")][-2:] == [
        "Arriving", "Wishing well"]  # fmt: skip


def test_an_ssml_script_s_breaks_and_subs_are_read_and_no_tag_is_spoken(caplog):
    with caplog.at_level(logging.WARNING):
        segs = segments(SCRIPTS / "breaks.ssml")
    assert said(segs) == [
        "Welcome to this practice.", "Let your eyes close.", "Breathe in", "and out.",
        "I am doctor Neff & friends.", "Slowly now.", "Rest.", "A bell rings.",
        'Say Neff break time="9s"/ once.',  # escaped in the file: text, not a tag
    ]  # fmt: skip
    assert written(segs) == [(3, 3), (2, 2), (0.5, 0.5), (2.5, 2.5), (2.5, 2.5)]
    assert [r.getMessage().split(": ", 1)[0].rsplit(":", 1)[1] for r in caplog.records] == [
        "10", "10", "11"]  # fmt: skip
    assert "<audio> is not played: calmcast fetches nothing" in caplog.text
    assert "<prosody> is not read" in caplog.text and "<emphasis> is not read" in caplog.text


@pytest.mark.parametrize(("xml", "message"), [
    ('<?xml version="1.0"?>\n<!DOCTYPE speak [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;'
     '&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n<speak>&c;</speak>',
     "SSML with a DTD is refused"),
    ('<?xml version="1.0"?>\n<!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
     "<speak>&x;</speak>", "SSML with a DTD is refused"),
    ('<?xml version="1.0"?>\n<!DOCTYPE speak SYSTEM "http://example.com/speak.dtd">\n<speak>Hi</speak>',
     "SSML with a DTD is refused"),
    ("<speak>\n<p>Hi</speak>", r"x\.ssml:2:\d+: not well-formed SSML: mismatched tag"),
    ("<speak>Hi &nbsp; there</speak>", r"x\.ssml:1:\d+: not well-formed SSML: undefined entity"),
])  # fmt: skip
def test_hostile_ssml_is_refused_quickly_reading_no_file(tmp_path, xml, message):
    import time

    script = write(tmp_path / "x.ssml", xml)
    started = time.perf_counter()
    with pytest.raises(calmcast.ScriptError, match=message):
        segments(script)
    assert time.perf_counter() - started < 2


def test_ssml_audio_is_never_fetched(tmp_path):
    import http.server
    import threading

    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        script = write(tmp_path / "a.ssml", f'<speak>Hi. <audio src="{url}/bell.mp3">A bell.</audio>'
                       f'<break time="1s"/></speak>')  # fmt: skip
        assert said(segments(script)) == ["Hi.", "A bell."]
    finally:
        server.shutdown()
    assert hits == []


def test_a_text_file_holding_ssml_or_apg_is_read_as_such(tmp_path):
    from calmcast.formats import kind_of

    assert kind_of("a.txt", '\ufeff<?xml version="1.0"?>\n<speak>Hi</speak>') == "ssml"
    assert kind_of("a.txt", "Breathe in;4\n\nBreathe out;6\n") == "apg"
    assert kind_of("a.txt", "Breathe in;4\nBreathe out, slowly.\n") == "txt"
    assert kind_of("a.md", "<speak>Hi</speak>") == "md" and kind_of("a.j2", "x;3") == "j2"
    segs = segments(SCRIPTS / "steps.txt")
    assert said(segs) == ["Breathe in slowly", "Hold", "Breathe out slowly", "Rest here"]
    assert written(segs) == [(4, 4), (2, 2), (6, 6), (30.5, 30.5)]


def test_format_says_how_to_read_a_file_whatever_its_name(tmp_path):
    copy = shutil.copy(SCRIPTS / "course.md", tmp_path / "course.txt")
    as_md = calmcast.plan(copy, format="md", voice="fake:steady", ambience=None)
    chapters = [e.segment.title for e in as_md.timeline.events if isinstance(e.segment, Chapter)]
    assert chapters == ["Arriving", "Wishing well"]
    with pytest.raises(calmcast.ScriptError, match=r"notes\.txt:11:\d+: unknown marker \[long pause\]"):
        calmcast.plan(SCRIPTS / "notes.txt", format="j2", voice="fake:steady", ambience=None)
    proc = subprocess.run([sys.executable, "-m", "calmcast", "plan", str(SCRIPTS / "notes.txt"),
                           "--format", "docx"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "'--format'" in proc.stderr


@pytest.mark.parametrize("name", ["notes.txt", "course.md", "breaks.ssml", "steps.txt",
                                  "underlined.txt"])  # fmt: skip
def test_convert_makes_a_template_that_renders_at_its_default_and_its_extremes(tmp_path, name):
    from calmcast.convert import make_template
    from calmcast.formats import convert_script, kind_of

    script = SCRIPTS / name
    made = make_template(script, voice="fake:steady")
    template = write(tmp_path / "made.j2", made.template)
    practice = load_practice(str(template))
    assert practice.title == load_practice(str(script)).title
    if made.min_minutes is None:  # its length is fixed: it lasts as written
        p = calmcast.plan(template, voice="fake:steady", ambience=None)
        assert p.timeline.length / p.timeline.sample_rate / 60 == pytest.approx(made.minutes)
    else:
        assert made.min_minutes <= practice.minutes <= made.max_minutes
        for minutes in (None, made.min_minutes, made.max_minutes):
            p = calmcast.plan(template, minutes=minutes, voice="fake:steady", ambience=None)
            want = practice.minutes if minutes is None else minutes
            assert p.timeline.length == round(want * 60 * p.timeline.sample_rate)
    # The report names every note the script has, on its own line.
    text = script.read_text(encoding="utf-8")
    notes = convert_script(text, kind_of(script, text), str(script)).notes
    assert [int(line.split(":")[0]) for line in made.report] == [n.line for n in notes]
    for line, note in zip(made.report, notes, strict=True):
        assert json.dumps(note.text, ensure_ascii=False) in line
        assert ("not spoken" in line) == (note.made is None)


def test_a_stated_length_becomes_the_shortest_of_an_elastic_silence():
    from calmcast.formats import stretch

    assert stretch("[pause 30s] [pause 2m] [pause 1m] [pause 5s] [pause] [pause 1m..2m]") == (
        "[pause 30s.. weight=0.5] [pause 2m.. weight=2] [pause 1m..] [pause 5s] [pause] "
        "[pause 1m..2m]")  # fmt: skip


def test_cli_convert_writes_only_a_template_it_was_asked_for(tmp_path):
    script = shutil.copy(SCRIPTS / "notes.txt", tmp_path / "notes.txt")
    before = script.read_bytes()

    def convert(*args):
        return subprocess.run([sys.executable, "-m", "calmcast", "convert", str(script),
                               "--voice", "espeak:en-gb", *args], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)  # fmt: skip

    (tmp_path / "link.j2").symlink_to(script)
    for args, says in ((["-o", str(script)], "writes a template (.j2, .jinja)"),
                       (["-o", str(tmp_path / "link.j2")], "is one of this render's inputs"),
                       (["-o", "/dev/null"], "writes a template"),
                       (["-o", str(tmp_path / "no" / "x.j2")], "does not exist")):  # fmt: skip
        proc = convert(*args)
        assert proc.returncode == 1 and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 3  # the notes' warnings, then one line
    assert script.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.j2", "notes.txt"]
    proc = convert()
    assert proc.returncode == 0, proc.stderr
    made = tmp_path / "notes.j2"
    assert '"(pause for 30 seconds)" -> [pause 30s.. weight=0.5]' in proc.stdout
    assert '14: "(smile)" -> not a pause note: not spoken' in proc.stdout
    assert "notes.j2: 18 notes;" in proc.stderr
    p = calmcast.plan(made, voice="espeak:en-gb", ambience=None, minutes=15)
    assert p.timeline.length == 15 * 60 * p.timeline.sample_rate


@pytest.mark.parametrize("text", [
    "— " + "two " * 20000 + "—", "[" + "x" * 5000 + "]", "(" + "pause " * 40000 + ")",
    "[" + "for a while and " * 10000 + "]", "(" * 50000 + ")" * 50000, "[" * 50000,
    "... " * 50000, "(pause) " * 20000, "(" + "9" * 5000 + " minutes)",
])  # fmt: skip
def test_a_hostile_script_is_read_or_refused_in_bounded_time(tmp_path, text, caplog):
    import time

    started = time.perf_counter()
    for suffix in (".txt", ".md"):
        script = write(tmp_path / f"x{suffix}", text)
        try:
            segs = segments(script)
        except calmcast.CalmcastError as e:
            assert "\n" not in str(e)
            continue
        for s in said(segs):
            assert not re.search(r"[\[\]]", s)
    assert time.perf_counter() - started < 10
    assert all(len(r.getMessage()) < 300 for r in caplog.records)


def test_notes_as_scripts_hold_them_wrapped_bare_wide_or_amid_words(tmp_path, caplog):
    path = write(tmp_path / "s.txt", """\
Breathe in slowly. (pause for
30 seconds) Then out.

Pause

*long pause*

- pause for 10 seconds -

Pause and notice the breath.

（pause）

A retreat (3 hours) begins. Breathe in (pause 4 seconds) and out.

(ring the bell)

[bell rings]

(take three breaths)

((((((
""")  # fmt: skip
    segs = segments(path)
    assert said(segs) == ["Breathe in slowly.", "Then out.", "Pause and notice the breath.",
                          "A retreat (3 hours) begins.", "Breathe in", "and out."]  # fmt: skip
    assert written(segs) == [(30, 30), (3, 3), (LONG[0], LONG[1]), (10, 10), (3, 3), (4, 4),
                             (15, 15)]  # fmt: skip
    assert [s.name for s in segs if isinstance(s, Bell)] == [None, None]
    assert "not a pause note" not in caplog.text


def test_markdown_tables_fences_autolinks_and_indented_text(tmp_path, caplog):
    path = write(tmp_path / "s.md", """\
# Title

Hello *there*.

    Indented by hand, and spoken.

| a | b |
|---|---|
| c | d |

```
not spoken
```

See <https://example.com> now. And &lt;break time="9s"/&gt; words.

Page\x0cbreak.

*pause*

last (pause for
30 seconds) line.
""")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        practice = load_practice(str(path))
    segs = render_script(practice, None).segments
    assert said(segs) == ["Hello there.", "Indented by hand, and spoken.", "See now.",
                          'And break time="9s"/ words.', "Page break.", "last", "line."]  # fmt: skip
    assert written(segs) == [(3, 3), (30, 30)]
    assert "s.md:7: a table is not spoken" in caplog.text
    assert "s.md:11: a fenced block" in caplog.text
    # Each line keeps its number: a page break is not a new line.
    last = [s for s in segs if isinstance(s, Speech)][-1]
    assert last.place.line == 22


def test_silences_beyond_a_session_are_refused_before_anything_is_spoken(tmp_path):
    from calmcast.errors import ScriptError
    from calmcast.pipeline import Request, plan

    path = write(tmp_path / "long.txt", "Hello.\n" + "(pause for 12 hours)\n" * 100)
    with pytest.raises(ScriptError, match=r"long.txt:3:1: the silences up to here already last 24h"):
        plan(Request(str(path), voice="fake:steady"))


@pytest.mark.parametrize("kind", ["folder", "fifo", "device"])
def test_a_practice_path_that_is_no_file_says_what_it_is(tmp_path, kind):
    import os

    from calmcast.errors import ScriptError

    path = tmp_path / "p.txt"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path = "/dev/null"
    with pytest.raises(ScriptError, match="a folder, not" if kind == "folder" else "a FIFO or a device"):
        load_practice(str(path))
