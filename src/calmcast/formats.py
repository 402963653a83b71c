"""Scripts as people already write them: plain text and Markdown, read into a practice.

A teacher's script is a document: headings for the parts, blank lines between paragraphs,
and notes to the reader such as "(pause)", "(pause for 30 seconds)", "[long pause]",
"— two minutes of silence —" or "...". `convert_script` turns such a file into the text a
practice template holds (calmcast's own markers), line for line, so every place a message
names is the script's own line, and says what it made of each note (`Note`).

How notes read (the README's script-format section lists the same):

- a note with a length is a fixed silence of that length ("(pause for 30 seconds)",
  "(two minutes of silence)", "[1 min]"); a range ("2-3 minutes") is elastic between them;
- "(pause)" alone is the practice's default pause;
- "(long pause)", "(a while)" are elastic, `LONG` seconds; a pause word with no length
  ("(silence)", "[rest]") is elastic, `OPEN`; "(short pause)", "(a moment)" are `SHORT`;
- "..." inside a line is a short pause (`ELLIPSIS`); on a line of its own, the default pause;
- calmcast's own markers (`[pause 30s..2m]`, `[bell]`, `<break time="2s"/>`) work as written.

A note in square brackets that is none of these is a warning naming its line, and is not
spoken; so is a line that is a parenthesis of its own ("(smile)"). A parenthesis within a
sentence that is not a pause note is part of the sentence and is spoken.
"""

from __future__ import annotations

import logging
import re
import xml.sax.handler
from dataclasses import dataclass, field
from pathlib import Path

from . import languages
from .durations import format_duration, parse_duration
from .limits import MAX_PAUSE
from .roles import check_role
from .timeline import STRIKE_SPACING

log = logging.getLogger(__name__)

#: The kinds of script calmcast reads, by name (`--format`).
KINDS = ("j2", "txt", "md", "ssml", "apg")
#: The kind each file name suffix says.
SUFFIX_KINDS = {".j2": "j2", ".jinja": "j2", ".txt": "txt", ".text": "txt", ".md": "md",
                ".markdown": "md", ".ssml": "ssml"}  # fmt: skip
#: An audio-program-generator line: a phrase, then the seconds of silence after it.
_APG_LINE = re.compile(r"(?P<phrase>[^;\n]*);\s*(?P<seconds>\d+(?:\.\d+)?)\s*")
#: SSML elements whose text is spoken without a word of warning; others are warned about.
_SSML_QUIET = {"speak", "p", "s", "break", "sub", "phoneme", "paragraph", "sentence", "voice"}
#: SSML elements whose text is not spoken at all.
_SSML_UNSPOKEN = {"desc", "mark", "lexicon", "meta", "metadata"}

#: Elastic silences, (shortest, longest) seconds: a long pause or "a while"; a pause note
#: with no length.
LONG = (20.0, 120.0)
OPEN = (10.0, 60.0)
#: Fixed silences, seconds: a short pause or a moment; "..." within a line.
SHORT = 2.0
ELLIPSIS = 1.5


@dataclass(frozen=True)
class Note:
    """A note met in a script: its line, as written, and what it became (None: dropped)."""

    line: int
    text: str
    made: str | None


@dataclass
class Converted:
    """A script read into practice text, line for line, with what was made of its notes."""

    kind: str
    body: str
    title: str | None = None
    notes: list[Note] = field(default_factory=list)
    language: str | None = None  # the language the script says it is in (SSML's xml:lang)

    @property
    def unsure(self) -> list[Note]:
        return [n for n in self.notes if n.made is None]


def kind_of(path: str | Path, text: str = "") -> str:
    """Return the kind of script a file holds: by its suffix, then a look at its text.

    A `.txt` whose text starts with `<speak` is SSML; one whose every line that is not
    blank ends in `;SECONDS` is an audio-program-generator script. Any other suffix is a
    template.
    """
    kind = SUFFIX_KINDS.get(Path(path).suffix.lower(), "j2")
    if kind == "txt" and text:
        head = text.lstrip("\ufeff \t\r\n")
        if head.startswith("<speak") or (head.startswith("<?xml") and "<speak" in head[:500]):
            return "ssml"
        lines = [line for line in text.splitlines() if line.strip()]
        if lines and all(_APG_LINE.fullmatch(line) for line in lines):
            return "apg"
    return kind


def convert_script(text: str, kind: str, shown: str, first_line: int = 1) -> Converted:
    """Return a plain-text or Markdown script as practice text, notes made into markers.

    `first_line` is the file's line number of the text's first line (after front matter).
    """
    if kind == "ssml":
        return _convert_ssml(text, shown, first_line)
    if kind == "apg":
        return _convert_apg(text, shown, first_line)
    text = _without_comments(text).translate(_WIDE)
    lines = _joined(_markdown_lines(text, shown, first_line) if kind == "md" else _text_lines(text))
    out = Converted(kind, "")
    body: list[str] = []
    for number, (role, line) in enumerate(lines, first_line):
        if role == "heading":
            title = " ".join(_notes(line, number, out, heading=True).split())
            if out.title is None and not any(b.strip() for b in body):
                out.title = title  # the first heading, before any text, is the title
                body.append("")
            else:
                body.append(f"[chapter {title}]" if title else "")
            continue
        body.append(_notes(line, number, out))
    for note in out.unsure:
        text = note.text if len(note.text) <= 60 else note.text[:57] + "..."
        log.warning("%s:%d: %s: not a pause note calmcast knows; not spoken", shown, note.line,
                    text)  # fmt: skip
    # Braces are text here, never template code.
    out.body = "\n".join(body).replace("{", "{{ '{' }}") + "\n"
    return out


#: Full-width and other brackets, read as the ASCII ones.
_WIDE = str.maketrans({"（": "(", "）": ")", "［": "[", "］": "]", "【": "[", "】": "]"})
#: How many lines on a note may be wrapped over.
_WRAP = 3


def _joined(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return lines with a note wrapped over the next ones (`(pause for` / `30 seconds)`)
    brought onto the line it opens on, so each line keeps its number."""
    out = list(lines)
    for i, (role, line) in enumerate(out):
        for opener, closer in ("()", "[]"):
            at = line.rfind(opener)
            if at < 0 or closer in line[at:] or len(line) - at > MAX_NOTE:
                continue
            gathered = line[at:]
            for j in range(i + 1, min(i + _WRAP, len(out))):
                kind, more = out[j]
                if kind != role or not more.strip():
                    break
                end = more.find(closer)
                if end < 0:
                    gathered += " " + more.strip()
                    continue
                gathered += " " + more[: end + 1].strip()
                if len(gathered) <= MAX_NOTE and note_for(gathered[1:-1]) is not None:
                    out[i] = (role, line[:at] + " ".join(gathered.split()))
                    for k in range(i + 1, j):
                        out[k] = (out[k][0], "")
                    out[j] = (kind, more[end + 1 :])
                    line = out[i][1]
                break
    return out


# -- a practice made from a script ------------------------------------------------------------

#: A stated silence at least this long grows when a practice made from the script is asked
#: for more time; shorter ones (breaths, "(pause)") stay as they are.
STRETCH_FROM = 10.0
_FIXED = re.compile(r"\[pause ([0-9.hms]+)\]")


def stretch(text: str) -> str:
    """Return practice text with each stated silence of STRETCH_FROM or more made elastic.

    The stated length becomes the shortest, with no longest, weighted by its length: a
    silence of two minutes takes four times the spare time of one of thirty seconds.
    """
    def grow(m: re.Match) -> str:
        try:
            seconds = parse_duration(m.group(1))
        except ValueError:
            return m.group(0)
        if seconds < STRETCH_FROM:
            return m.group(0)
        weight = f"{seconds / 60:.2g}"
        return f"[pause {m.group(1)}..]" if weight == "1" else f"[pause {m.group(1)}.. weight={weight}]"

    return _FIXED.sub(grow, text)


# -- the lines of each kind --------------------------------------------------------------------


def _without_comments(text: str) -> str:
    """Return text with its <!-- comments --> blanked, line breaks kept (in linear time)."""
    out, at = [], 0
    while (start := text.find("<!--", at)) >= 0:
        end = text.find("-->", start + 4)
        end = len(text) if end < 0 else end + 3
        out.append(text[at:start])
        out.append("\n" * text.count("\n", start, end))
        at = end
    out.append(text[at:])
    return "".join(out)


def _text_lines(text: str) -> list[tuple[str, str]]:
    """Return a plain script's lines, its headings marked.

    A heading is a line after `#` marks, a line underlined with === or ---, or the first
    line of the file when it is short, has no closing punctuation and stands alone.
    """
    source = text.split("\n")
    lines: list[tuple[str, str]] = []
    seen_text = False
    for i, line in enumerate(source):
        line = line.removesuffix("\r")
        below = source[i + 1] if i + 1 < len(source) else ""
        marked = re.fullmatch(r"\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*", line)
        if marked:
            lines.append(("heading", marked.group(1)))
        elif line.strip() and re.fullmatch(r"\s*(?:={3,}|-{3,})\s*", below):
            lines.append(("heading", line.strip()))
        elif lines and lines[-1][0] == "heading" and re.fullmatch(r"\s*(?:={3,}|-{3,})\s*", line):
            lines.append(("text", ""))  # the underline
        elif (not seen_text and line.strip() and not below.strip()
              and len(line.strip()) <= 80 and not re.search(r"[.!?…:;,)\]]\s*$", line)):
            lines.append(("heading", line.strip()))  # a title line
        else:
            lines.append(("text", line))
        seen_text = seen_text or bool(line.strip())
    return lines


def _markdown_lines(text: str, shown: str = "", first_line: int = 1) -> list[tuple[str, str]]:
    """Return a Markdown script's lines as plain text: emphasis, list marks and links gone.

    An indented block is text (a script indented by hand, not code); a fenced block and a
    table are not spoken, with a warning naming their line.
    """
    from markdown_it import MarkdownIt

    count = text.count("\n") + 1
    lines: list[tuple[str, str]] = [("text", "")] * count
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    heading = False
    in_item = in_table = 0
    for t in tokens:
        if t.type == "heading_open":
            heading = True
        elif t.type == "heading_close":
            heading = False
        elif t.type == "list_item_open":
            in_item += 1
        elif t.type == "list_item_close":
            in_item -= 1
        elif t.type == "table_open":
            in_table += 1
            if t.map:
                log.warning("%s:%d: a table is not spoken", shown, t.map[0] + first_line)
        elif t.type == "table_close":
            in_table -= 1
        elif t.type == "fence" and t.map:
            log.warning("%s:%d: a fenced block (```) is not spoken", shown, t.map[0] + first_line)
        elif t.type == "code_block" and t.map:
            for i, raw in enumerate(t.content.split("\n")[: t.map[1] - t.map[0]]):
                lines[t.map[0] + i] = ("text", _as_text(raw))
        elif t.type == "hr" and t.map:
            lines[t.map[0]] = ("text", "")  # a rule between parts: a paragraph's pause
        elif t.type == "html_block" and t.map:
            for i, raw in enumerate(t.content.split("\n")):
                if t.map[0] + i < count:
                    lines[t.map[0] + i] = ("text", raw)  # calmcast's tags read as in a template
        elif t.type == "inline" and t.map and not in_table:
            pieces = _inline_lines(t)
            for i, piece in enumerate(pieces):
                at = t.map[0] + i
                if at < len(lines):
                    lines[at] = ("heading" if heading else "text", piece)
            if in_item and pieces and not re.search(r"[.!?…:;,]\s*$", pieces[-1]):
                at = min(t.map[0] + len(pieces), count) - 1
                lines[at] = (lines[at][0], lines[at][1] + ".")  # a list item is a sentence
    return lines


def _inline_lines(token) -> list[str]:
    """Return an inline token's text, a string for each source line it spans."""
    lines = [""]
    autolink = False
    for c in token.children or []:
        if c.type in ("softbreak", "hardbreak"):
            lines.append("")
        elif c.type == "link_open":
            autolink = c.markup == "autolink"  # <https://...>: an address, not words
        elif c.type == "link_close":
            autolink = False
        elif autolink:
            continue
        elif c.type in ("text", "code_inline"):
            lines[-1] += _as_text(c.content)  # "&lt;break/&gt;" is words, never a tag
        elif c.type == "html_inline":
            lines[-1] += c.content  # a tag written as one: read as in a template
        elif c.type == "image":
            continue  # a picture is not spoken
    return lines


def _convert_apg(text: str, shown: str, first_line: int) -> Converted:
    """Read an audio-program-generator script: each line a phrase, `;` and its silence."""
    out = Converted("apg", "")
    body = []
    for number, line in enumerate(text.split("\n"), first_line):
        line = line.removesuffix("\r")
        m = _APG_LINE.fullmatch(line)
        if not m:
            body.append(line)
            continue
        made = f"[pause {format_duration(float(m.group('seconds')))}]"
        out.notes.append(Note(number, f";{m.group('seconds')}", made))
        body.append(f"{m.group('phrase')} {made}")
    out.body = _as_text("\n".join(body)) + "\n"
    return out


def _convert_ssml(text: str, shown: str, first_line: int) -> Converted:
    """Read SSML as untrusted: no DTD, no entities, nothing fetched; a tag never spoken.

    Text goes on the line it stands on, so messages name the file's own lines. `<break>`
    and `<sub alias>` are read as in a template, `<phoneme>` speaks its text (the
    practice's lexicon applies), `<p>` ends a paragraph; any other element's text is
    spoken without its tags, with a warning naming the element and its line.
    """
    import xml.sax

    import defusedxml.sax
    from defusedxml import DefusedXmlException

    from .errors import ScriptError

    count = text.count("\n") + 1  # the parser counts lines by their new lines alone
    out = Converted("ssml", "")
    lines = [""] * count
    handler = _Ssml(lines, out)
    try:
        defusedxml.sax.parseString(text.encode("utf-8"), handler, forbid_dtd=True,
                                   forbid_entities=True, forbid_external=True)  # fmt: skip
    except DefusedXmlException as e:
        what = {"DTDForbidden": "a DTD", "EntitiesForbidden": "an entity declaration",
                "ExternalReferenceForbidden": "an outside reference"}.get(type(e).__name__,
                                                                          "a DTD")  # fmt: skip
        raise ScriptError.at(shown, None, None, f"SSML with {what} is refused: calmcast reads "
                             "no DTD, entity or outside file") from None  # fmt: skip
    except xml.sax.SAXParseException as e:
        line, column = e.getLineNumber() or 1, e.getColumnNumber() or 0
        raise ScriptError.at(shown, line + first_line - 1, column + 1,
                             f"not well-formed SSML: {e.getMessage()}") from None  # fmt: skip
    for note in handler.warned:
        log.warning("%s:%d: %s", shown, note[0] + first_line - 1, note[1])
    out.notes = [Note(n.line + first_line - 1, n.text, n.made) for n in out.notes]
    named = {role for role in handler.named if role}
    if len(named) == 1:
        # One voice named, as a cloud service's SSML does: the session's voice reads it all.
        [role] = named
        lines = [line.replace(f" [voice {role}] ", " ").replace(" [voice] ", " ") for line in lines]
    out.body = "\n".join(lines) + "\n"
    return out


class _Ssml(xml.sax.handler.ContentHandler):
    """A SAX handler placing SSML's speech and breaks on the lines they stand on."""

    def __init__(self, lines: list[str], out: Converted) -> None:
        super().__init__()
        self.lines = lines
        self.out = out
        self.stack: list[str] = []
        self.warned: list[tuple[int, str]] = []
        self.seen: set[str] = set()
        self.paragraph_ended = False
        self.silent = 0  # inside an element whose text is not spoken
        self.roles: list[str | None] = [None]  # the role each open <voice> reads in
        self.named: set[str | None] = set()  # every role a <voice> named

    def _line(self) -> int:
        locator = getattr(self, "_locator", None)  # ContentHandler keeps the parser's
        return locator.getLineNumber() if locator else 1

    def _put(self, text: str) -> None:
        at = min(max(self._line(), 1), len(self.lines)) - 1
        if self.paragraph_ended and text.strip():
            self.paragraph_ended = False
            if at > 0 and self.lines[at - 1].strip() and not self.lines[at].strip():
                self.lines[at] += "[pause 2.5s] "  # no blank line to end the paragraph
            elif self.lines[at].strip():
                self.lines[at] += " [pause 2.5s] "
        self.lines[at] += text

    def startElement(self, name: str, attrs) -> None:
        local = name.rpartition(":")[2].lower()
        self.stack.append(local)
        if self.silent or local in _SSML_UNSPOKEN:
            self.silent += 1
            return
        if local == "speak" and len(self.stack) == 1:
            lang = attrs.get("xml:lang")
            if lang and re.fullmatch(languages.TAG, lang.strip()):
                self.out.language = lang.strip()
            elif lang:
                self._warn(f"xml:lang {_attr(lang)[:20]!r} is not a language tag like en-GB")
        elif local == "voice":
            self._voice(attrs.get("name"))
        elif local == "break":
            values = {k.lower(): v for k, v in attrs.items()}
            pieces = "".join(f' {k}="{_attr(v)}"' for k, v in values.items())
            tag = f"<break{pieces}/>"
            self.out.notes.append(Note(self._line(), tag, tag))
            self._put(f" {tag} ")
        elif local == "sub":
            alias = attrs.get("alias")
            if alias is None:
                self._warn("<sub> without alias: its text is spoken")
            else:
                self._put(_as_text(alias))
                self.silent += 1  # what it stands for is not said
        elif local == "audio":
            self._warn("<audio> is not played: calmcast fetches nothing (its text is spoken)")
        elif local not in _SSML_QUIET:
            self._warn(f"<{local}> is not read: its text is spoken without it")

    def _voice(self, name: str | None) -> None:
        """`<voice name="ROLE">`: its text is read in that role's voice."""
        try:
            role: str | None = check_role(name)
        except ValueError:
            self._warn(f"<voice name={_attr(str(name))[:40]!r}>: not a role name, so its text is "
                       "read by the voice around it (a role is one word, like second)")  # fmt: skip
            role = self.roles[-1]
        if role != self.roles[-1]:
            self._put(f" [voice {role}] ")
        self.roles.append(role)
        self.named.add(role)

    def endElement(self, name: str) -> None:
        local = self.stack.pop() if self.stack else ""
        if self.silent:
            self.silent -= 1
            return
        if local == "voice" and len(self.roles) > 1:
            role = self.roles.pop()
            if role != self.roles[-1]:
                self._put(f" [voice {self.roles[-1]}] " if self.roles[-1] else " [voice] ")
        elif local in ("p", "paragraph"):
            self.paragraph_ended = True
        elif local in ("s", "sentence"):
            at = min(max(self._line(), 1), len(self.lines)) - 1
            if self.lines[at].strip() and not re.search(r"[.!?…]\s*$", self.lines[at]):
                self.lines[at] = self.lines[at].rstrip() + ". "

    def characters(self, content: str) -> None:
        if self.silent:
            return
        self._put(_as_text(content).replace("\n", " "))

    def _warn(self, message: str) -> None:
        if message not in self.seen:  # each kind once
            self.warned.append((self._line(), message))
        self.seen.add(message)


def _attr(value: str) -> str:
    """Return an attribute's value as plain text: no quote, tag or template code in it."""
    return re.sub(r"[\"<>{}%#]", "", value)


def _as_text(text: str) -> str:
    """Return text that reads as words only: no tag can start in it, no template code."""
    return re.sub(r"[<>]", " ", text).replace("{", "{{ '{' }}")


# -- notes -------------------------------------------------------------------------------------

_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
#: Counts that are not one number: the silence they give is elastic between two.
_ROUGHLY = {"a few": (2, 4), "few": (2, 4), "several": (3, 5), "a couple of": (2, 2),
            "couple of": (2, 2)}  # fmt: skip
#: A slow breath, seconds: "(three breaths)" is a silence of three of them.
BREATH = 5.0
_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
          "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600,
          "hour": 3600, "hours": 3600, "breath": BREATH, "breaths": BREATH}  # fmt: skip
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_NUMBER = (rf"(?:\d+(?:\.\d+)?|(?:{_TENS})[- ](?:one|two|three|four|five|six|seven|eight|nine)|"
           + "|".join(sorted([*_ROUGHLY, *_NUMBERS], key=len, reverse=True)) + ")")  # fmt: skip
_UNIT = "(?:" + "|".join(sorted(_UNITS, key=len, reverse=True)) + ")"
_LENGTH = re.compile(
    rf"(?:(?P<half>half an? )|(?P<n>{_NUMBER})(?:\s*(?:-|–|to|or)\s*(?P<m>{_NUMBER}))?\s*)"
    rf"(?:(?:deep|slow|full|long|calm|easy)\s+)?(?P<unit>{_UNIT})\b(?P<and_half> and a half)?"
)
#: Between two lengths: one length of both ("2 minutes 30 seconds"), or a range of them.
_PLUS = re.compile(r"\s*(?:,|and)?\s*")
_TO = re.compile(r"\s*(?:-|–|to|or)\s*")
_PAUSE_WORDS = (r"(?:pauses|pausing|pause|silences|silence|silent|break|rest|stillness|quiet|"
                r"gap|wait)")  # fmt: skip
_SIZE = r"(?:(?P<size>long|longer|extended|short|shorter|brief|small)\s+)?"
#: What may follow a pause word and still be a pause note: a length, or words of time.
_AFTER = re.compile(
    r"(?:(?:here|now|again|briefly|for|of|in|time|a|while|and|to|or|long|short|brief|take|"
    r"deep|slow|full|calm|easy)\b|" + _PAUSE_WORDS + r"s?\b|[\s,.:;!\-–—]|" + _LENGTH.pattern
    + ")*"
)  # fmt: skip
_PAUSE_FIRST = re.compile(rf"{_SIZE}(?P<word>{_PAUSE_WORDS})\b(?P<rest>.*)")
_MOMENT = re.compile(r"(?:for\s+)?(?:a\s+)?(?P<what>moment|while|few moments|little while)")
#: A note with nothing but these words and a bell's name is a bell.
_BELLS = {"bell": None, "bells": None, "gong": "gong", "gongs": "gong", "chime": "chime",
          "chimes": "chime", "bowl": "bowl", "bowls": "bowl"}  # fmt: skip
_BELL_WORDS = {"ring", "rings", "ringing", "rung", "strike", "strikes", "struck", "striking",
               "sound", "sounds", "sounding", "play", "plays", "the", "a", "of", "singing",
               "here", "now", "once", "twice", "times", "x", "softly", "gently", "again",
               "chimes"}  # fmt: skip
_TIMES = {"once": 1, "twice": 2, "thrice": 3}
#: The most strikes a bell note gives.
MAX_STRIKES = 9
#: The longest pause note: a longer parenthesis is text, a longer bracket a note not read.
MAX_NOTE = 80
_NOTE_INLINE = re.compile(r"\(([^()\n]+)\)|\[([^\[\]\n]*)\]")
_WHOLE = re.compile(r"\s*(?:\(([^()]*)\)|\[([^\[\]]*)\]|[—–]+\s*(.*?)\s*[—–]+|-{2,}\s*(.*?)\s*-{2,})\s*")
#: A line that is only "Pause", "*long pause*" or "- pause for 30 seconds -": a note.
_BARE = re.compile(r"[\s*_~\-–—]*(?P<note>(?:(?:long|longer|short|brief|extended)\s+)?"
                   r"paus(?:e|es|ing)\b[^*_~\-–—]*?)[\s*_~\-–—.!]*", re.IGNORECASE)
_ELLIPSIS_LINE = re.compile(r"\s*(?:\.\s*){3,}\s*|\s*…+\s*")
_RULE = re.compile(r"\s*(?:[-_*=~]\s*){3,}")
_ELLIPSIS = re.compile(r"\.{3,}|…")


def _notes(line: str, number: int, out: Converted, *, heading: bool = False) -> str:
    """Return a line with its notes made into markers, recording each in `out.notes`."""
    if not heading:
        if _RULE.fullmatch(line):
            return ""  # a rule between parts: a paragraph's pause
        bare = _BARE.fullmatch(line) if len(line) <= MAX_NOTE else None
        if bare and (made := pause_for(bare.group("note"))):
            out.notes.append(Note(number, line.strip(), made))
            return made
        if len(line) <= MAX_NOTE and _ELLIPSIS_LINE.fullmatch(line):
            out.notes.append(Note(number, line.strip(), "[pause]"))
            return "[pause]"
        # Only a line short enough to be a note is tried as one (the pattern is not linear).
        whole = _WHOLE.fullmatch(line) if len(line) <= MAX_NOTE + 16 else None
        if whole:
            paren, bracket, dash, dashes = whole.groups()
            note = next(g for g in (paren, bracket, dash, dashes) if g is not None)
            if bracket is not None and _is_marker(bracket):
                return line
            made = note_for(note)
            if made is None and (dash is not None or dashes is not None):
                return line  # words between dashes that are not a pause: spoken
            out.notes.append(Note(number, line.strip(), made))
            return made or ""  # a stage direction of its own is not spoken

    def replace(m: re.Match) -> str:
        paren, bracket = m.groups()
        if heading:
            return " "  # a note in a heading is not part of its title
        if bracket is not None and _is_marker(bracket):
            return m.group(0)
        made = note_for(paren if paren is not None else bracket)
        if made is None and paren is not None:
            return m.group(0)  # a parenthesis within a sentence: spoken
        if paren is not None and _within(m) and not _PAUSE_WORD.search(paren) and "bell" not in (made or ""):
            return m.group(0)  # "a retreat (3 hours) begins": a length alone, amid words, is said
        out.notes.append(Note(number, m.group(0), made))
        return f" {made} " if made else " "

    line = _NOTE_INLINE.sub(replace, line)
    if not heading and _ELLIPSIS.search(line):

        def dots(m: re.Match) -> str:
            out.notes.append(Note(number, m.group(0).strip(), f"[pause {ELLIPSIS:g}s]"))
            return f" [pause {ELLIPSIS:g}s] "

        line = _ELLIPSIS.sub(dots, line)
    return line


_PAUSE_WORD = re.compile(rf"\b{_PAUSE_WORDS}\b|\bbreaths?\b|\bmoments?\b|\bwhile\b", re.IGNORECASE)


def _within(m: re.Match) -> bool:
    """Return whether a match stands amid words: some before it and some after on its line."""
    before, after = m.string[: m.start()], m.string[m.end() :]
    return any(c.isalnum() for c in before) and any(c.isalnum() for c in after)


def _is_marker(inner: str) -> bool:
    """Return whether `[inner]` is one of calmcast's own markers (then it is read as such)."""
    from .markers import MARKERS

    word = re.match(r"\s*([^\s:=]*)", inner).group(1).lower()  # type: ignore[union-attr]
    if word not in MARKERS:
        return False
    rest = inner.strip()[len(word) :].lstrip(" :=")
    if word == "bell":
        # [bell], [bell gong], [bell none], [bell mine.ogg]; "[bell rings]" is a note.
        from .sounds import SOUND_SUFFIXES, bells

        name = rest.strip().lower()
        return not name or name in bells() or name == "none" or name.endswith(SOUND_SUFFIXES)
    if word != "pause":
        return True
    # calmcast's own syntax (a range, a weight, a bare length) is read, and checked, as such.
    return not rest or ".." in rest or "weight=" in rest or bool(
        re.fullmatch(r"[\d.]+[hms]?(?:[\d.]+[ms]?)*", rest.strip(), re.IGNORECASE))


def note_for(note: str) -> str | None:
    """Return the markers a note in a script stands for (a pause, a bell), or None."""
    return bell_for(note) or pause_for(note)


def _normal(note: str) -> str:
    """Return a note in one spelling: lower case, one space, lengths written one way."""
    text = " ".join(note.lower().replace("’", "'").split()).strip(" .,:;!")
    text = re.sub(r"^(?:the|please|take|allow|leave)\s+", "", text)
    # "a pause", "a long silence": the article says nothing; "a minute" it does.
    text = re.sub(rf"^an?\s+(?={_SIZE}{_PAUSE_WORDS}\b)", "", text)
    text = re.sub(rf"(\d|\b(?:{'|'.join(_NUMBERS)}))-(?={_UNIT}\b)", r"\1 ", text)  # 30-second
    text = re.sub(r"\b(minutes|seconds|hours|mins|secs|hrs)'", r"\1", text)  # minutes' silence
    text = re.sub(r"\b(\d{1,2}):([0-5]\d)\b", r"\1 minutes \2 seconds", text)  # 1:30
    text = re.sub(r"\b(\d+(?:\.\d+)?)([hms])(?=\d)", r"\1 \2 ", text)  # 2m30s
    return re.sub(
        rf"\b({_NUMBER}) and a half ({_UNIT})\b",
        lambda m: f"{_number(m.group(1))[0] + 0.5:g} {m.group(2)}" if m.group(1) in _NUMBERS
        or m.group(1)[0].isdigit() else m.group(0), text,
    )  # fmt: skip


def pause_for(note: str) -> str | None:
    """Return the marker a pause note stands for, or None if it is not a pause note."""
    if len(note) > MAX_NOTE:
        return None
    text = _normal(note)
    if not text:
        return None
    first = _LENGTH.match(text)
    pause = _PAUSE_FIRST.fullmatch(text)
    moment = _MOMENT.fullmatch(text)
    if pause and not _AFTER.fullmatch(pause.group("rest")):
        pause = None
    if first and not _AFTER.fullmatch(text[first.end() :]):
        first = None
    if not (pause or first or moment):
        return None
    length = _length(text)
    if length is not None:
        lo, hi = length
        if not hi <= MAX_PAUSE or not lo > 0:
            return None  # beyond what a pause may last, or none at all: not read as one
        return f"[pause {format_duration(lo)}]" if lo == hi else f"[pause {format_duration(lo)}..{format_duration(hi)}]"
    size = pause.group("size") if pause else None
    if moment:
        long = moment.group("what") in ("while", "little while")
        return f"[pause {format_duration(LONG[0])}..{format_duration(LONG[1])}]" if long else f"[pause {SHORT:g}s]"
    if size in ("long", "longer", "extended") or (pause and "while" in pause.group("rest")):
        return f"[pause {format_duration(LONG[0])}..{format_duration(LONG[1])}]"
    if size in ("short", "shorter", "brief", "small"):
        return f"[pause {SHORT:g}s]"
    if pause and pause.group("word").startswith("paus") and not pause.group("rest").strip(" .,:;!-"):
        return "[pause]"
    return f"[pause {format_duration(OPEN[0])}..{format_duration(OPEN[1])}]"


def _length(text: str) -> tuple[float, float] | None:
    """Return the shortest and longest seconds the first length in a note gives, if any.

    Lengths side by side add up ("2 minutes 30 seconds"); two joined by "to" are a range
    ("30 seconds to a minute").
    """
    found = list(_LENGTH.finditer(text))
    if not found:
        return None
    lo, hi = _seconds(found[0])
    last = found[0]
    for m in found[1:]:
        between = text[last.end() : m.start()]
        if _PLUS.fullmatch(between) and lo == hi and _UNITS[m.group("unit")] < _UNITS[last.group("unit")]:
            more = _seconds(m)
            lo, hi = lo + more[0], hi + more[1]
        elif _TO.fullmatch(between) and lo == hi:
            hi = max(_seconds(m)[1], lo)
        else:
            break
        last = m
    return lo, hi


def bell_for(note: str) -> str | None:
    """Return the bell a note stands for ("(bell)", "(ring the bell)", "[gong x3]"), or None."""
    if len(note) > MAX_NOTE:
        return None
    words = re.findall(r"[a-z0-9]+", _normal(note))
    kinds = [w for w in words if w in _BELLS]
    if len(kinds) != 1:
        return None
    count, rest = 1, [w for w in words if w not in _BELLS]
    for w in rest:
        if w in _TIMES:
            count = _TIMES[w]
        elif w in _NUMBERS and w not in ("a", "an"):
            count = int(_NUMBERS[w])
        elif re.fullmatch(r"x?\d", w):
            count = int(w.lstrip("x"))
        elif w not in _BELL_WORDS:
            return None
    if not 1 <= count <= MAX_STRIKES:
        return None
    name = _BELLS[kinds[0]]
    one = f"[bell {name}]" if name else "[bell]"
    return f" [pause {STRIKE_SPACING:g}s] ".join([one] * count)


def _number(word: str) -> tuple[float, float]:
    """Return the count a number in a note says, as a range (one number for most)."""
    if re.fullmatch(r"\d+(?:\.\d+)?", word):
        return float(word), float(word)
    if word in _ROUGHLY:
        return tuple(map(float, _ROUGHLY[word]))  # type: ignore[return-value]
    tens, _, ones = word.replace(" ", "-").partition("-")
    n = float(_NUMBERS[tens] + (_NUMBERS[ones] if ones else 0))
    return n, n


def _seconds(m: re.Match) -> tuple[float, float]:
    unit = _UNITS[m.group("unit")]
    if m.group("half"):
        return unit / 2, unit / 2
    lo, hi = _number(m.group("n"))
    if m.group("m"):
        hi = _number(m.group("m"))[1]
    extra = 0.5 if m.group("and_half") else 0.0
    return (lo + extra) * unit, (hi + extra) * unit


