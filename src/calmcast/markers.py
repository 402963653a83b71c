"""The text of a rendered practice, read into speech, pauses, bells and chapters.

Sentences become utterances with short breaths between them and longer pauses between
paragraphs. Anything in square brackets is a marker, looked up by its first word in
`MARKERS`: one small function each, taking what follows the word and returning the
segments it stands for. Adding a marker is adding one function here.

Other tools' markup is read too, so a script need not be rewritten: `[pause:2.5s]`,
`[PAUSE=10]` (the name may be followed by `:` or `=`), SSML's `<break time="2s"/>` and
`<break strength="strong"/>` (`BREAK_STRENGTHS`), and `<sub alias="...">...</sub>`, which
speaks its alias. Any other tag is an error: a tag is never read aloud.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .durations import parse_duration
from .errors import ScriptError
from .model import Bell, Chapter, Pause, PauseKind, Place, Practice, Segment, Speech, Timing
from .practice import shown_name
from .roles import check_role

#: Longest text spoken as one utterance; longer sentences are split at commas.
MAX_UTTERANCE = 400
#: The short breath between the pieces of a split sentence.
COMMA_BREATH = 0.35
#: The silence of each SSML break strength, seconds (`<break/>` alone is medium, as in SSML).
BREAK_STRENGTHS = {"none": 0.0, "x-weak": 0.25, "weak": 0.5, "medium": 1.0, "strong": 2.0,
                   "x-strong": 5.0}  # fmt: skip


@dataclass(frozen=True)
class Found:
    """A marker met in the text: as written, what follows its name, and where it stands."""

    text: str  # "[pause 30s..2m]"
    rest: str  # "30s..2m"
    place: Place
    timing: Timing  # the practice's default silences

    def fail(self, reason: str) -> ScriptError:
        return ScriptError.at(
            self.place.file, self.place.line, self.place.column, f"{self.text}: {reason}"
        )


@dataclass(frozen=True)
class Switch:
    """`[voice ROLE]`: what follows is read by another voice (not a segment: it marks speech)."""

    role: str | None  # None: back to the practice's first role
    place: Place


@dataclass(frozen=True)
class Marker:
    """A kind of marker: its name, how it is written, and what it makes."""

    name: str
    usage: str
    read: Callable[[Found], Segment | Switch]


MARKERS: dict[str, Marker] = {}


def marker(name: str, usage: str):
    """Register the decorated function as the marker `[name ...]`."""

    def register(read: Callable[[Found], Segment | Switch]) -> Callable[[Found], Segment | Switch]:
        MARKERS[name] = Marker(name, usage, read)
        return read

    return register


@marker("pause", "[pause], [pause 5s], [pause 30s..2m], [pause 1m.. weight=2]")
def _pause(m: Found) -> Pause:
    if not m.rest:
        return Pause(m.timing.pause, m.timing.pause, place=m.place)
    weight = 1.0
    rng, *extras = m.rest.split()
    for extra in extras:
        key, eq, value = extra.partition("=")
        if key.lower() != "weight" or not eq:
            raise m.fail(f"unexpected {extra!r} (only weight=N)")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not weight > 0 or weight == float("inf"):
            raise m.fail("weight must be a positive number")
    if rng.lower().startswith("weight="):
        raise m.fail("give the range before weight")
    lo_text, dots, hi_text = rng.partition("..")
    try:
        lo = parse_duration(lo_text) if lo_text else 0.0
        hi = (parse_duration(hi_text) if hi_text else float("inf")) if dots else lo
    except ValueError as e:
        raise m.fail(str(e)) from None
    if dots and not lo_text and not hi_text:
        raise m.fail("give at least one end of the range")
    if hi < lo:
        raise m.fail(f"the shortest ({lo_text}) is longer than the longest ({hi_text})")
    if weight != 1.0 and not dots:
        raise m.fail("weight applies only to a range like 30s..2m")
    return Pause(lo, hi, weight, place=m.place)


@marker("bell", "[bell], [bell gong]")
def _bell(m: Found) -> Bell:
    if m.rest and not re.fullmatch(r"[A-Za-z0-9_.-]+", m.rest):
        raise m.fail("a bell name is one word, like bowl")
    return Bell(m.rest.lower() or None, m.place)


@marker("chapter", "[chapter Title of the part]")
def _chapter(m: Found) -> Chapter:
    if not m.rest:
        raise m.fail("a chapter needs a title")
    return Chapter(m.rest, m.place)


@marker("voice", "[voice ROLE], [voice] (back to the first voice)")
def _voice(m: Found) -> Switch:
    if not m.rest:
        return Switch(None, m.place)
    try:
        return Switch(check_role(m.rest), m.place)
    except ValueError as e:
        raise m.fail(str(e)) from None


_ATTRIBUTE = re.compile(r"""([A-Za-z][\w:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_BREAK_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*ms", re.IGNORECASE)


def _attributes(m: Found) -> dict[str, str]:
    """Return a tag's attributes, by lower-case name; anything else in the tag is an error."""
    found, rest = {}, m.rest
    for a in _ATTRIBUTE.finditer(m.rest):
        found[a.group(1).lower()] = a.group(2) if a.group(2) is not None else a.group(3)
        rest = rest.replace(a.group(0), " ", 1)
    if rest.strip(" \t/"):
        raise m.fail(f"cannot read {rest.strip(' /')[:30]!r} (attributes look like time=\"2s\")")
    return found


def _break(m: Found) -> Pause:
    """SSML's `<break time="..."/>` or `<break strength="..."/>`: a fixed silence."""
    attrs = _attributes(m)
    unknown = sorted(set(attrs) - {"time", "strength"})
    if unknown:
        raise m.fail(f"a break takes time or strength, not {unknown[0]}")
    if "time" in attrs:
        time = attrs["time"].strip()
        ms = _BREAK_TIME.fullmatch(time)
        try:
            seconds = float(ms.group(1)) / 1000 if ms else parse_duration(time)
        except ValueError as e:
            raise m.fail(f"time: {e}") from None
        return Pause(seconds, seconds, place=m.place)
    strength = attrs.get("strength", "medium").strip().lower()
    if strength not in BREAK_STRENGTHS:
        raise m.fail(f"strength is one of {', '.join(BREAK_STRENGTHS)}")
    seconds = BREAK_STRENGTHS[strength]
    return Pause(seconds, seconds, place=m.place)


# -- reading the text --------------------------------------------------------------------------

_MARKER = re.compile(r"\[([^\[\]\n]*)\]|<\s*/?\s*[A-Za-z][^<>\n]*>")
#: A marker's name and what follows it: `pause 30s`, `pause:2.5s`, `PAUSE=10`.
_MARKER_NAME = re.compile(r"\s*([^\s:=]*)\s*[:=]?\s*(.*)", re.DOTALL)
#: The tags calmcast reads; any other is an error.
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][\w.:-]*)(.*?)>", re.DOTALL)
#: `<sub alias="...">shown</sub>` speaks the alias.
_SUB = re.compile(
    r"""<\s*sub\s+alias\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)')\s*>[^<>]*<\s*/\s*sub\s*>""",
    re.IGNORECASE,
)
#: What would start a tag: never spoken, so one left open is an error.
_TAG_START = re.compile(r"<\s*/?\s*[A-Za-z]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")
#: A full stop after these is an abbreviation's, not a sentence's end ("Dr. Neff").
_ABBREVIATION = re.compile(r"(?:^|[\s(\"'“‘])(?:Dr|Mr|Mrs|Ms|Mx|St|Prof|Fr|Sr|e\.g|i\.e|cf|vs)\.$")

#: Sources up to this size map each segment to its own line by its text; longer ones by the
#: line it renders on (a search per segment would make parsing quadratic).
_FIND_IN_SOURCE = 64_000


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


class _Parser:
    def __init__(self, text: str, practice: Practice, shown: str) -> None:
        self.text = text
        self.practice = practice
        self.shown = shown
        self.timing = practice.timing
        self.body = practice.source
        # Line starts, so that finding a line is a binary search: parsing stays linear.
        self._text_lines = _line_starts(text)
        self._body_lines = _line_starts(self.body)
        self._found: dict[str, int | None] = {}
        self.roles: dict[str, Place | None] = {}  # each role that speaks, at its first [voice]

    def place(self, offset: int, snippet: str | None = None) -> Place:
        """Return where `offset` in the rendered text came from, in the source if findable."""
        if snippet is not None:
            at = self._find(snippet)
            if at is not None:
                line = bisect.bisect_right(self._body_lines, at)
                return Place(self.shown, line, at - self._body_lines[line - 1] + 1)
        line = bisect.bisect_right(self._text_lines, offset)
        column = offset - self._text_lines[line - 1] + 1
        return Place(self.shown, line + self.practice.front_matter_lines, column)

    def _find(self, snippet: str) -> int | None:
        """Return where snippet stands in the source if it stands there exactly once."""
        if snippet not in self._found:
            at = self.body.find(snippet) if len(self.body) <= _FIND_IN_SOURCE else -1
            unique = at >= 0 and self.body.find(snippet, at + 1) < 0
            self._found[snippet] = at if unique else None
        return self._found[snippet]

    def fail(self, offset: int, snippet: str, reason: str) -> ScriptError:
        place = self.place(offset, snippet)
        return ScriptError.at(place.file, place.line, place.column, reason)

    def parse(self) -> list[Segment]:
        out: list[Segment] = []
        role = self.practice.default_role
        switched: dict[str, Place] = {}  # where each role was first switched to
        explicit_since_speech = False  # a written pause stands in for the automatic one
        last_was_speech = False
        paragraph_break = False
        for para in re.finditer(r"(?:[^\n]|\n(?![ \t]*\n))+", self.text):
            paragraph_break = last_was_speech or paragraph_break
            for kind, value, offset in self._tokens(para.group(0), para.start()):
                if kind == "marker":
                    seg = self._marker(value, offset)
                    if seg is None:  # a closing </break>
                        continue
                    if isinstance(seg, Switch):
                        role = seg.role or self.practice.default_role
                        switched.setdefault(role, seg.place)
                        continue
                    explicit_since_speech |= isinstance(seg, Pause)
                    out.append(seg)
                    continue
                for sentence, soff in self._sentences(value, offset):
                    if not any(c.isalnum() for c in sentence):
                        continue  # punctuation left beside a marker: nothing to say
                    for i, piece in enumerate(_split_long(sentence)):
                        if last_was_speech and not explicit_since_speech:
                            out.insert(_gap_index(out), self._gap(i > 0, paragraph_break))
                        out.append(Speech(piece, self.place(soff, piece[:40]), role))
                        self.roles.setdefault(role, switched.get(role))
                        last_was_speech = True
                        explicit_since_speech = False
                        paragraph_break = False
        return out

    def _gap(self, within_sentence: bool, paragraph_break: bool) -> Pause:
        """Return the automatic silence before an utterance that follows another."""
        if within_sentence:
            return Pause(COMMA_BREATH, COMMA_BREATH, kind=PauseKind.BREATH)
        if paragraph_break:
            t = self.timing.paragraph
            return Pause(t, t, kind=PauseKind.PARAGRAPH)
        return Pause(self.timing.breath, self.timing.breath, kind=PauseKind.BREATH)

    def _tokens(self, para: str, base: int) -> Iterator[tuple[str, str, int]]:
        # The alias takes the place of what it stands for (the columns after it in this
        # paragraph may then be a little off; places are found by their text first).
        para = _SUB.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), para)
        pos = 0
        for m in _MARKER.finditer(para):
            yield from self._text_token(para[pos : m.start()], base + pos)
            yield "marker", m.group(0), base + m.start()
            pos = m.end()
        yield from self._text_token(para[pos:], base + pos)

    def _text_token(self, chunk: str, offset: int) -> Iterator[tuple[str, str, int]]:
        for bracket in "[]":
            i = chunk.find(bracket)
            if i >= 0:
                snippet = chunk[i : i + 20].split("\n")[0]
                raise self.fail(
                    offset + i, snippet, f"unmatched {bracket!r} in {snippet.strip()!r}"
                )
        tag = _TAG_START.search(chunk)
        if tag:
            snippet = chunk[tag.start() : tag.start() + 20].split("\n")[0]
            raise self.fail(offset + tag.start(), snippet,
                            f"unclosed tag in {snippet.strip()!r} (a tag ends with >)")  # fmt: skip
        if chunk.strip():
            yield "text", chunk, offset

    @staticmethod
    def _sentences(chunk: str, offset: int) -> Iterator[tuple[str, int]]:
        pos = 0
        for m in _SENTENCE_END.finditer(chunk):
            if _ABBREVIATION.search(chunk, max(pos, m.start() - 6), m.start()):
                continue
            piece = chunk[pos : m.start()] + chunk[m.start() : m.end()].strip()
            if piece.strip():
                yield " ".join(piece.split()), offset + pos + (len(piece) - len(piece.lstrip()))
            pos = m.end()
        rest = chunk[pos:]
        if rest.strip():
            yield " ".join(rest.split()), offset + pos + (len(rest) - len(rest.lstrip()))

    def _marker(self, text: str, offset: int) -> Segment | Switch | None:
        if text.startswith("<"):
            return self._tag(text, offset)
        word, rest = _MARKER_NAME.fullmatch(text[1:-1]).groups()  # type: ignore[union-attr]
        kind = MARKERS.get(word.lower())
        if kind is None:
            close = difflib.get_close_matches(word.lower(), list(MARKERS), n=1)
            hint = f"did you mean [{close[0]}]?" if close else f"markers are {_known()}"
            raise self.fail(offset, text, f"unknown marker {text} ({hint})")
        return kind.read(Found(text, rest.strip(), self.place(offset, text), self.timing))

    def _tag(self, text: str, offset: int) -> Segment | None:
        closing, name, rest = _TAG.fullmatch(text).groups()  # type: ignore[union-attr]
        found = Found(text, rest.strip(), self.place(offset, text), self.timing)
        if name.lower() == "break":
            return None if closing else _break(found)
        if name.lower() == "sub":
            raise found.fail('a sub is written <sub alias="what to say">shown</sub>')
        raise found.fail(
            f"unknown tag <{closing}{name}> (calmcast reads <break time=\"2s\"/>, "
            '<break strength="strong"/> and <sub alias="...">...</sub>; a tag is never spoken)'
        )


def _known() -> str:
    names = list(MARKERS)
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _gap_index(out: list[Segment]) -> int:
    """Place an automatic gap before trailing chapters and bells, after the last speech."""
    i = len(out)
    while i > 0 and isinstance(out[i - 1], (Chapter, Bell)):
        i -= 1
    return i


def _split_long(sentence: str) -> list[str]:
    """Split a sentence too long for one utterance at commas, else at spaces."""
    if len(sentence) <= MAX_UTTERANCE:
        return [sentence]
    pieces, rest = [], sentence
    while len(rest) > MAX_UTTERANCE:
        window = rest[:MAX_UTTERANCE]
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
        cut = cut + 1 if cut > MAX_UTTERANCE // 3 else window.rfind(" ")
        if cut <= 0:
            cut = MAX_UTTERANCE
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def parse_text(text: str, practice: Practice, shown: str | None = None) -> list[Segment]:
    """Return the segments of rendered practice text."""
    return _Parser(text, practice, shown or shown_name(practice)).parse()


def parse_roles(
    text: str, practice: Practice, shown: str | None = None
) -> tuple[list[Segment], dict[str, Place | None]]:
    """Return the segments of rendered practice text, and each role it speaks in (in order
    of first use) with the place of its first `[voice ROLE]` (None: never switched to)."""
    parser = _Parser(text, practice, shown or shown_name(practice))
    return parser.parse(), parser.roles
