"""Practice scripts: front matter, a sandboxed Jinja template, and the markers in its text.

`load_practice()` reads a template and its TOML front matter; `render_script()` renders it
with the listener's choices and parses the text into speech, pauses, bells and chapters.
"""

from __future__ import annotations

import bisect
import difflib
import logging
import re
import sys
from dataclasses import replace
from pathlib import Path

import jinja2

from .durations import parse_duration
from .errors import ScriptError
from .limits import (
    MAX_PAUSE,
    MAX_SESSION,
    MAX_TEMPLATE_BYTES,
    MAX_TEMPLATE_NUMBER,
    MAX_VALUE_CHARS,
    finite,
)
from .model import Bell, Chapter, Pause, Place, Practice, Script, Segment, Speech, Timing, Variable
from .sandbox import BoundedEnvironment, BudgetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "practices"
SUFFIXES = (".j2", ".jinja", ".txt", ".md")

#: Longest text spoken as one utterance; longer sentences are split at commas.
MAX_UTTERANCE = 400
#: The short breath between the pieces of a split sentence.
COMMA_BREATH = 0.35

_FRONT_KEYS = {
    "title",
    "description",
    "minutes",
    "min_minutes",
    "max_minutes",
    "guide",
    "album",
    "language",
    "variables",
    "timing",
}
_RESERVED = {"minutes", "language"}


def builtin_practices() -> list[str]:
    """Return the names of the built-in practices."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.j2") if not p.name.startswith("_"))


def find_practice(ref: str) -> Path:
    """Return the template file for a built-in name or a path."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    builtin = BUILTIN_DIR / f"{ref}.j2"
    if not ref.startswith("_") and "/" not in ref and builtin.is_file():
        return builtin
    if path.suffix or "/" in ref or path.exists():
        raise ScriptError(f"{ref}: no such practice file")
    names = builtin_practices()
    close = difflib.get_close_matches(ref, names, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "`calmcast practices` lists them"
    raise ScriptError(f"{ref}: no built-in practice of that name ({hint})")


def load_practice(ref: str) -> Practice:
    """Return the practice `ref` names, its front matter read and checked."""
    path = find_practice(ref)
    try:
        if not path.is_file():
            raise ScriptError(f"{path}: is not a file")
        with open(path, "rb") as f:
            data = f.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise ScriptError(
                f"{path}: larger than {MAX_TEMPLATE_BYTES // 1000} kB, the largest practice calmcast reads"
            )
        source = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScriptError(f"{path}: not UTF-8 text (byte {e.start + 1})") from e
    except OSError as e:
        raise ScriptError(f"{path}: cannot read the practice: {e.strerror or e}") from e
    name = path.stem if path.suffix in SUFFIXES else path.name
    return practice_from_source(source, name, str(path))


def practice_from_source(
    source: str, name: str = "practice", path: str = "practice.j2"
) -> Practice:
    """Return a practice from template text, as if read from `path`."""
    shown = name if Path(path).parent == BUILTIN_DIR else path
    meta, fm_lines = _front_matter(source, shown)
    return _practice_from(meta, name=name, path=path, shown=shown, source=source, fm_lines=fm_lines)


def _front_matter(source: str, shown: str) -> tuple[dict, int]:
    lines = source.splitlines(keepends=True)
    if not lines or lines[0].strip() != "+++":
        return {}, 0
    for i in range(1, len(lines)):
        if lines[i].strip() == "+++":
            break
    else:
        raise ScriptError(f"{shown}:1: the front matter opened with +++ is never closed")
    try:
        return tomllib.loads("".join(lines[1:i])), i + 1
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"{shown}:{int(m.group(1)) + 1}:{m.group(2)}" if m else f"{shown}:1"
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        raise ScriptError(f"{where}: front matter: {msg}") from e


def _practice_from(meta: dict, *, name, path, shown, source, fm_lines) -> Practice:
    problems = []
    where = f"{shown}: front matter"
    for key in meta:
        if key not in _FRONT_KEYS:
            problems.append(f"unknown key {key!r}")

    def number(key):
        v = meta.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            problems.append(f"{key}: expected a positive number of minutes, got {v!r}")
            return None
        if not v <= MAX_SESSION / 60:  # infinity and NaN too
            problems.append(f"{key}: {v!r} minutes is more than {MAX_SESSION / 60:g}, the most")
            return None
        return float(v)

    def text(key, default=""):
        v = meta.get(key, default)
        if not isinstance(v, str):
            problems.append(f"{key}: expected text, got {v!r}")
            return default
        return v

    minutes, lo, hi = number("minutes"), number("min_minutes"), number("max_minutes")
    if lo and hi and lo > hi:
        problems.append(f"min_minutes ({lo:g}) is more than max_minutes ({hi:g})")
    variables = []
    declared = meta.get("variables", {})
    if not isinstance(declared, dict):
        problems.append("variables: expected a table of [variables.NAME]")
        declared = {}
    for var, spec in declared.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var) or var in _RESERVED:
            problems.append(f"variables.{var}: not a usable variable name")
            continue
        if not isinstance(spec, dict):
            spec = {"default": spec}
        unknown = set(spec) - {"default", "help"}
        if unknown:
            problems.append(f"variables.{var}: unknown key {sorted(unknown)[0]!r}")
        variables.append(Variable(var, spec.get("default", ""), str(spec.get("help", ""))))
    timing = Timing()
    tspec = meta.get("timing", {})
    if not isinstance(tspec, dict):
        problems.append("timing: expected a table")
        tspec = {}
    for key, value in tspec.items():
        if key not in Timing.__dataclass_fields__:
            problems.append(
                f"timing.{key}: unknown (known: {', '.join(Timing.__dataclass_fields__)})"
            )
            continue
        try:
            if isinstance(value, bool):
                raise ValueError(f"expected a length, got {value!r}")
            if isinstance(value, (int, float)):
                seconds = finite(value, "seconds", 0, MAX_PAUSE)
            else:
                seconds = parse_duration(str(value))
        except ValueError as e:
            problems.append(f"timing.{key}: {e}")
            continue
        timing = replace(timing, **{key: float(seconds)})
    if problems:
        raise ScriptError(f"{where}: " + "; ".join(problems))
    title = text("title") or name.replace("-", " ").replace("_", " ").capitalize()
    return Practice(
        name=name,
        path=path,
        source=source,
        title=title,
        description=text("description"),
        minutes=minutes,
        min_minutes=lo,
        max_minutes=hi,
        variables=tuple(variables),
        timing=timing,
        front_matter_lines=fm_lines,
        extra={k: meta[k] for k in ("guide", "album", "language") if k in meta},
    )


# -- rendering ---------------------------------------------------------------------------------


def environment(practice: Practice) -> BoundedEnvironment:
    """Return the one kind of template environment: sandboxed, strict, block-trimmed."""
    folders = [str(Path(practice.path).parent)]
    if str(BUILTIN_DIR) not in folders:
        folders.append(str(BUILTIN_DIR))
    return BoundedEnvironment(
        loader=_InsideLoader(folders),  # beside the practice, then the built-ins
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


class _InsideLoader(jinja2.FileSystemLoader):
    """Includes come from inside the practice's folder (or the built-ins), links resolved."""

    read: list[str] | None = None  # where the files it loads are recorded

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        real = Path(filename).resolve()
        if self.read is not None:
            self.read.append(str(real))
        if not any(real.is_relative_to(Path(f).resolve()) for f in self.searchpath):
            raise jinja2.exceptions.SecurityError(
                f"include {template!r} leads outside the practice's folder"
            )
        if real.stat().st_size > MAX_TEMPLATE_BYTES:
            raise jinja2.exceptions.SecurityError(f"include {template!r} is too large")
        return source, filename, uptodate


def coerce_values(practice: Practice, values: dict[str, str] | None, shown: str) -> dict:
    """Return the template's variables: declared defaults overridden by `--set` values."""
    declared = {v.name: v for v in practice.variables}
    out = {name: v.default for name, v in declared.items()}
    for name, raw in (values or {}).items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ScriptError(f"--set {name}: {shown} has no variable {name!r} (it has: {known})")
        default = declared[name].default
        if isinstance(default, bool):
            low = str(raw).lower()
            if low not in ("true", "false", "yes", "no", "1", "0"):
                raise ScriptError(f"--set {name}={raw}: expected true or false")
            out[name] = low in ("true", "yes", "1")
        elif isinstance(default, (int, float)):
            try:
                out[name] = int(raw) if isinstance(default, int) and raw.strip().isdigit() else None
                if out[name] is None:
                    out[name] = finite(raw, "value", -MAX_TEMPLATE_NUMBER, MAX_TEMPLATE_NUMBER)
                elif abs(out[name]) > MAX_TEMPLATE_NUMBER:
                    raise ValueError(f"{raw} is out of range")
            except ValueError:
                raise ScriptError(
                    f"--set {name}={raw[:40]}: expected a finite number "
                    f"(at most {MAX_TEMPLATE_NUMBER:.0e})"
                ) from None
        else:
            out[name] = _plain_text(name, str(raw))
    return out


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _plain_text(name: str, value: str) -> str:
    """Return a listener's value if it is plain text that cannot become markup or noise."""
    shown = f"--set {name}={value[:40]!r}" + ("..." if len(value) > 40 else "")
    if len(value) > MAX_VALUE_CHARS:
        raise ScriptError(f"{shown}: a value may be at most {MAX_VALUE_CHARS} characters")
    bad = _CONTROL.search(value)
    if bad:
        raise ScriptError(
            f"{shown}: control character U+{ord(bad.group()):04X} at {bad.start() + 1}; "
            "a value is plain text on one line"
        )
    if "[" in value or "]" in value:
        raise ScriptError(f"{shown}: a value cannot hold [ or ], which would be read as markup")
    return value


def render_text(practice: Practice, context: dict, read: list[str] | None = None) -> str:
    """Return the template rendered with `context`, errors naming the file and line.

    The files it includes are added to `read`, resolved.
    """
    shown = _shown(practice)
    body = practice.source
    if practice.front_matter_lines:
        # Keep line numbers: the front matter becomes a comment spanning the same lines.
        lines = body.splitlines(keepends=True)
        n = practice.front_matter_lines
        body = "{#" + "\n" * n + "#}" + "".join(lines[n:])
    env = environment(practice)
    if read is not None:
        env.loader.read = read
    try:
        template = env.from_string(body)
        return env.render(template, context)
    except BudgetError as e:
        raise ScriptError(f"{shown}: stopped: {e} (see the limits in the README)") from e
    except jinja2.TemplateSyntaxError as e:
        file = shown if e.filename in (None, "<template>") else e.name or e.filename
        raise ScriptError(f"{file}:{e.lineno}: {e.message}") from e
    except jinja2.TemplateNotFound as e:
        line = _template_line(e.__traceback__)
        raise ScriptError(f"{shown}:{line}: included template {e.name!r} not found") from e
    except jinja2.exceptions.SecurityError as e:
        line = _template_line(e.__traceback__)
        raise ScriptError(f"{shown}:{line}: not allowed in a practice: {e}") from e
    except (jinja2.TemplateError, TypeError, ValueError, ZeroDivisionError) as e:
        file, line = _template_frame(e.__traceback__, shown)
        raise ScriptError(f"{file}:{line}: {e}") from e


def _template_frame(tb, shown: str) -> tuple[str, int | str]:
    found = (shown, "?")
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == "<template>":
            found = (shown, tb.tb_lineno)
        elif name.endswith(SUFFIXES):
            found = (Path(name).name, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _template_line(tb) -> int | str:
    return _template_frame(tb, "")[1]


def _shown(practice: Practice) -> str:
    return practice.name if Path(practice.path).parent == BUILTIN_DIR else practice.path


def render_script(
    practice: Practice,
    minutes: float | None = None,
    values: dict[str, str] | None = None,
    language: str = "en",
) -> Script:
    """Return the practice rendered for a length and the listener's values, parsed."""
    shown = _shown(practice)
    context = coerce_values(practice, values, shown)
    context["minutes"] = float(minutes or 0.0)
    context["language"] = language
    read: list[str] = []
    text = render_text(practice, context, read)
    segments = parse_text(text, practice, shown)
    plain = {k: v for k, v in context.items() if k not in _RESERVED}
    sources = tuple(dict.fromkeys([str(Path(practice.path).resolve()), *read]))
    return Script(practice, tuple(segments), plain, text, sources)


# -- parsing -----------------------------------------------------------------------------------

_MARKER = re.compile(r"\[([^\[\]\n]*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")
_PAUSE_SPEC = re.compile(r"^(?P<lo>[^.\s]*(?:\.\d+)?[a-z]*)?(?P<range>\.\.(?P<hi>\S*))?$")


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

    def fail(self, offset: int, snippet: str, message: str) -> ScriptError:
        return ScriptError(f"{self.place(offset, snippet)}: {message}")

    def parse(self) -> list[Segment]:
        out: list[Segment] = []
        pending_gap: Pause | None = None  # the automatic silence before the next speech
        explicit_since_speech = False
        last_was_speech = False
        paragraph_break = False
        for para in re.finditer(r"(?:[^\n]|\n(?![ \t]*\n))+", self.text):
            paragraph_break = last_was_speech or paragraph_break
            for kind, value, offset in self._tokens(para.group(0), para.start()):
                if kind == "text":
                    for sentence, soff in self._sentences(value, offset):
                        for i, piece in enumerate(_split_long(sentence)):
                            if last_was_speech and not explicit_since_speech:
                                if i > 0:
                                    gap = Pause(COMMA_BREATH, COMMA_BREATH, kind="breath")
                                elif paragraph_break:
                                    gap = Pause(
                                        self.timing.paragraph,
                                        self.timing.paragraph,
                                        kind="paragraph",
                                    )
                                else:
                                    gap = Pause(
                                        self.timing.breath, self.timing.breath, kind="breath"
                                    )
                                pending_gap = gap
                            if pending_gap is not None:
                                out.insert(self._gap_index(out), pending_gap)
                                pending_gap = None
                            out.append(Speech(piece, self.place(soff, piece[:40])))
                            last_was_speech = True
                            explicit_since_speech = False
                            paragraph_break = False
                else:
                    seg = self._marker(value, offset)
                    if isinstance(seg, Pause):
                        explicit_since_speech = True
                    out.append(seg)
        return out

    @staticmethod
    def _gap_index(out: list[Segment]) -> int:
        """Place an automatic gap before trailing chapters and bells, after the last speech."""
        i = len(out)
        while i > 0 and isinstance(out[i - 1], (Chapter, Bell)):
            i -= 1
        return i

    def _tokens(self, para: str, base: int):
        pos = 0
        for m in _MARKER.finditer(para):
            yield from self._text_token(para[pos : m.start()], base + pos)
            yield "marker", m.group(0), base + m.start()
            pos = m.end()
        yield from self._text_token(para[pos:], base + pos)

    def _text_token(self, chunk: str, offset: int):
        for bracket in "[]":
            i = chunk.find(bracket)
            if i >= 0:
                snippet = chunk[i : i + 20].split("\n")[0]
                raise self.fail(
                    offset + i, snippet, f"unmatched {bracket!r} in {snippet.strip()!r}"
                )
        if chunk.strip():
            yield "text", chunk, offset

    def _sentences(self, chunk: str, offset: int):
        pos = 0
        for m in _SENTENCE_END.finditer(chunk):
            piece = chunk[pos : m.start()] + chunk[m.start() : m.end()].strip()
            if piece.strip():
                yield " ".join(piece.split()), offset + pos + (len(piece) - len(piece.lstrip()))
            pos = m.end()
        rest = chunk[pos:]
        if rest.strip():
            yield " ".join(rest.split()), offset + pos + (len(rest) - len(rest.lstrip()))

    def _marker(self, marker: str, offset: int) -> Segment:
        inner = marker[1:-1].strip()
        word, _, rest = inner.partition(" ")
        word = word.lower()
        rest = rest.strip()
        place = self.place(offset, marker)
        if word == "pause":
            return self._pause(marker, rest, offset, place)
        if word == "bell":
            if rest and not re.fullmatch(r"[A-Za-z0-9_.-]+", rest):
                raise self.fail(offset, marker, f"{marker}: a bell name is one word, like bowl")
            return Bell(rest.lower() or None, place)
        if word == "chapter":
            if not rest:
                raise self.fail(offset, marker, f"{marker}: a chapter needs a title")
            return Chapter(rest, place)
        close = difflib.get_close_matches(word, ["pause", "bell", "chapter"], n=1)
        hint = f"did you mean [{close[0]}]?" if close else "markers are pause, bell and chapter"
        raise self.fail(offset, marker, f"unknown marker {marker} ({hint})")

    def _pause(self, marker: str, spec: str, offset: int, place: Place) -> Pause:
        if not spec:
            return Pause(self.timing.pause, self.timing.pause, place=place)
        weight = 1.0
        parts = spec.split()
        rng = parts[0]
        for extra in parts[1:]:
            key, eq, value = extra.partition("=")
            if key.lower() != "weight" or not eq:
                raise self.fail(offset, marker, f"{marker}: unexpected {extra!r} (only weight=N)")
            try:
                weight = float(value)
            except ValueError:
                weight = -1.0
            if not weight > 0 or weight == float("inf"):
                raise self.fail(offset, marker, f"{marker}: weight must be a positive number")
        if rng.lower().startswith("weight="):
            raise self.fail(offset, marker, f"{marker}: give the range before weight")
        lo_text, dots, hi_text = rng.partition("..")
        try:
            lo = parse_duration(lo_text) if lo_text else 0.0
            hi = (parse_duration(hi_text) if hi_text else float("inf")) if dots else lo
        except ValueError as e:
            raise self.fail(offset, marker, f"{marker}: {e}") from None
        if dots and not lo_text and not hi_text:
            raise self.fail(offset, marker, f"{marker}: give at least one end of the range")
        if hi < lo:
            raise self.fail(
                offset,
                marker,
                f"{marker}: the shortest ({lo_text}) is longer than the longest ({hi_text})",
            )
        if weight != 1.0 and not dots:
            raise self.fail(
                offset, marker, f"{marker}: weight applies only to a range like 30s..2m"
            )
        return Pause(lo, hi, weight, place=place)


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
    return _Parser(text, practice, shown or _shown(practice)).parse()
