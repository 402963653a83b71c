"""`calmcast convert`: a script as people write it, made into a practice template.

The template says what the script says, line for line, with calmcast's markers for its
notes; its front matter gives the title (the script's first heading), a default length (the
length the script itself states, as spoken by the voice) and the lengths it can reach: each
silence the script states of `formats.STRETCH_FROM` or more becomes the shortest of an
elastic one, so the practice can be made longer than the script.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import CalmcastError
from .formats import Converted, convert_script, kind_of, stretch
from .limits import MAX_SESSION
from .model import Pause
from .practice import _front_matter, load_practice
from .script import render_script
from .session import Request

#: The longest sensible length of a practice that can grow without end: this many times
#: its length as written.
GROWTH = 3


@dataclass(frozen=True)
class Made:
    """A template made from a script, and what was made of each note, line by line."""

    template: str
    report: list[str]
    minutes: float  # as written
    lo: float  # the shortest it can last, minutes
    hi: float  # the longest, minutes; inf when it can grow without end
    min_minutes: float | None  # what its front matter says (None: no length in reach)
    max_minutes: float | None


def make_template(script: str | Path, kind: str | None = None, voice: str | None = None) -> Made:
    """Return the template made from `script`, its lengths measured with `voice`."""
    import calmcast

    from .pipeline import voice_name

    practice = load_practice(str(script), None, kind or "j2")  # checks it can be read
    source = practice.source
    kind = kind or kind_of(script, source)
    shown = str(script)
    meta, fm_lines = _front_matter(source, shown)
    lines = re.split(r"(?<=\n)", source)
    converted: Converted = convert_script("".join(lines[fm_lines:]), kind, shown, fm_lines + 1)
    body = stretch(converted.body) if kind != "j2" else "".join(lines[fm_lines:])

    with tempfile.TemporaryDirectory(prefix="calmcast-convert-") as tmp:
        stated = Path(tmp) / "stated.j2"
        stated.write_text(_with_front(lines[:fm_lines], meta, {}) + converted.body, "utf-8")
        grown = Path(tmp) / "grown.j2"
        grown.write_text(_with_front(lines[:fm_lines], meta, {}) + body, "utf-8")
        # Every role the script speaks in is measured with the one voice.
        roles = render_script(load_practice(str(stated))).roles
        measure = voice or voice_name(Request(str(stated)), practice)
        voices = dict.fromkeys(roles, measure)
        try:
            as_written = calmcast.plan(stated, voices=voices, ambience=None)
            shortest = calmcast.plan(grown, voices=voices, ambience=None)
        except CalmcastError as e:  # the copies have the script's lines: name the script
            named = lambda text: text.replace(str(stated), shown).replace(str(grown), shown)  # noqa: E731
            raise type(e)(
                named(e.message), file=named(e.file) if e.file else e.file, line=e.line,
                column=e.column, reason=named(e.reason), problems=[named(p) for p in e.problems],
            ) from None  # fmt: skip
        segments = render_script(load_practice(str(grown))).segments
    rate = shortest.timeline.sample_rate
    lo = shortest.timeline.length / rate / 60
    hi = lo + sum(s.maximum - s.minimum for s in segments if isinstance(s, Pause)) / 60
    minutes = as_written.timeline.length / rate / 60
    title = meta.get("title") or converted.title or Path(script).stem.replace("-", " ").capitalize()
    front: dict = {"title": title}
    shortest_half = math.ceil(lo * 2 - 1e-9) / 2
    longest = _round(GROWTH * max(minutes, lo)) if math.isinf(hi) else math.floor(hi * 2) / 2
    longest = min(longest, MAX_SESSION / 60)
    if longest >= shortest_half:  # else no length in half minutes is in reach: none is given
        front["minutes"] = min(max(_round(minutes), shortest_half), longest)
        front["min_minutes"] = shortest_half
        front["max_minutes"] = longest
    template = _with_front(lines[:fm_lines], meta, front) + body
    others = [r for r in roles if r != practice.default_role and not practice.role(r)]
    if others and "voices" not in meta:
        # The roles it switches to, with the voice they were measured with: a practice that
        # renders as it is (`--voice-for ROLE=VOICE` chooses another).
        table = f"[voices]\n{practice.default_role} = {{}}\n" + "".join(
            f"{r} = {_toml(measure)}\n" for r in others)  # fmt: skip
        if not template.startswith("+++\n"):
            template = "+++\n+++\n" + template
        close = template.index("+++\n", 4)
        template = template[:close] + table + template[close:]
    return Made(template, _report(converted), minutes, lo, hi, front.get("min_minutes"),
                front.get("max_minutes"))


def _round(minutes: float) -> float:
    return max(round(minutes * 2) / 2, 0.5)


def _with_front(head: list[str], meta: dict, front: dict) -> str:
    """Return front matter: the script's own, with the keys it lacks from `front` added."""
    added = "".join(f"{k} = {_toml(v)}\n" for k, v in front.items() if k not in meta)
    if head:  # the new keys go first, before any table the script's own front matter has
        return head[0] + added + "".join(head[1:])
    return f"+++\n{added}+++\n" if added else ""


def _toml(value) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    return f"{value:g}"


def _report(converted: Converted) -> list[str]:
    """Return what was made of each note, a line each: `12: "(pause)" -> [pause]`."""
    out = []
    for note in converted.notes:
        shown = json.dumps(note.text, ensure_ascii=False)
        if note.made is None:
            out.append(f"{note.line}: {shown} -> not a pause note: not spoken (left out)")
            continue
        grown = stretch(note.made)
        line = f"{note.line}: {shown} -> {grown}"
        if grown != note.made:
            line += f" (the script's {note.made[7:-1]} is its shortest, so it can grow)"
        out.append(line)
    return out
