"""A practice's recording script: every line it can speak, at any length and any choice.

A line is what one voice says between two silences that are not breaths: the sentences of a
line follow each other with the voice's own breath, so a reader records them in one go.
`script_lines()` renders the practice at every whole minute of its range and at each
threshold its template compares `minutes` with, for every choice of every variable that
declares its choices (and both sides of a true-or-false one), and gathers the lines in
reading order. A variable a listener fills in freely (a name, a colour) cannot be recorded
once for everyone: its lines are found by rendering with a stand-in value, and shown with
the default.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from dataclasses import dataclass

from .errors import ScriptError
from .limits import MAX_SESSION
from .model import Pause, PauseKind, Practice, Segment, Speech
from .practice import load_practice, shown_name
from .script import render_script

#: The most renders one listing makes (lengths times choices); more is refused before any.
MAX_RENDERS = 5000
#: Stand-ins for the values a listener fills in: letters a template will not test for.
_STAND_IN = "Qzxv{}"
_COMPARED = re.compile(
    r"\bminutes\s*(?:<=|>=|==|!=|<|>)\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:<=|>=|==|!=|<|>)\s*minutes\b"
)


@dataclass(frozen=True)
class Line:
    """One line to record: its id (from its text), its text, who reads it, what it holds."""

    id: str
    text: str
    role: str
    holds: tuple[str, ...] = ()  # the listener's values it says (shown with the defaults)

    def as_dict(self, number: int) -> dict:
        return {"number": number, "id": self.id, "text": self.text, "role": self.role,
                "holds": list(self.holds)}  # fmt: skip


def line_id(text: str) -> str:
    """Return a short id that stays the line's as long as its words do."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:6]


def lengths(practice: Practice, sources: tuple[str, ...] = ()) -> list[float]:
    """Return the lengths to render, minutes: every whole minute of the practice's range and
    both sides of every threshold its templates compare `minutes` with."""
    lo = practice.min_minutes or practice.minutes or 1.0
    hi = practice.max_minutes or max(practice.minutes or 0, lo) or lo
    found = {float(m) for m in range(math.ceil(lo), math.floor(hi) + 1)} | {lo, hi}
    texts = [practice.source]
    for path in sources:
        try:
            with open(path, encoding="utf-8") as f:
                texts.append(f.read())
        except OSError:
            continue
    for text in texts:
        for m in _COMPARED.finditer(text):
            t = float(m.group(1) or m.group(2))
            found |= {x for x in (t - 0.01, t, t + 0.01) if lo <= x <= hi}
    return sorted(x for x in found if 0 < x <= MAX_SESSION / 60)


def count_choices(practice: Practice, fixed: dict[str, str]) -> int:
    """Return how many combinations `choices` would give, without making them."""
    n = 1
    for v in practice.variables:
        if v.name not in fixed:
            n *= len(v.choices) if v.choices else 2 if isinstance(v.default, bool) else 1
    return n


def choices(practice: Practice, fixed: dict[str, str]) -> list[dict[str, object]]:
    """Return every combination of the variables' choices, those in `fixed` held."""
    axes = []
    for v in practice.variables:
        if v.name in fixed:
            axes.append([(v.name, fixed[v.name])])
        elif v.choices:
            axes.append([(v.name, c) for c in v.choices])
        elif isinstance(v.default, bool):
            axes.append([(v.name, "true"), (v.name, "false")])
    return [dict(combo) for combo in itertools.product(*axes)]


def free_variables(practice: Practice, fixed: dict[str, str]) -> list[str]:
    """Return the variables a listener fills in with text of their own."""
    return [v.name for v in practice.variables if v.name not in fixed and not v.choices
            and isinstance(v.default, str)]  # fmt: skip


def script_lines(
    ref: str, values: dict[str, str] | None = None, language: str | None = None,
    kind: str | None = None,
) -> list[Line]:  # fmt: skip
    """Return every line the practice `ref` can speak, in reading order, `values` held."""
    practice = load_practice(ref, language, kind)
    fixed = dict(values or {})
    free = free_variables(practice, fixed)
    stand_in = {name: _STAND_IN.format(chr(ord("a") + i % 26) * (1 + i // 26))
                for i, name in enumerate(free)}  # fmt: skip
    first = render_script(practice, practice.minutes, fixed)
    minutes = lengths(practice, first.sources)
    renders = len(minutes) * count_choices(practice, fixed) * (2 if free else 1)
    if renders > MAX_RENDERS:
        raise ScriptError.at(shown_name(practice), None, None,
                             f"its lengths and choices make {renders} versions, more than the "
                             f"{MAX_RENDERS} a listing reads: hold some with --set")  # fmt: skip
    combos = choices(practice, fixed)
    # A line holding a value is shown with the default, or with {name} when it has none.
    defaults = {v.name: v.default or f"{{{v.name}}}" for v in practice.variables}
    order: list[str] = []
    found: dict[str, Line] = {}
    after: dict[str, str | None] = {}  # the line each line was first found after
    memo: dict = {}
    for combo in combos:
        for with_stand_ins in ([False, True] if free else [False]):
            given = {**fixed, **{k: str(v) for k, v in combo.items()}}
            if with_stand_ins:
                given.update(stand_in)
            for m in minutes:
                script = render_script(practice, m, given, memo=memo)
                _gather(script.segments, stand_in, defaults, order, found, after)
    return [found[key] for key in order]


def _gather(segments, stand_in: dict[str, str], defaults: dict, order: list[str],
            found: dict[str, Line], after: dict[str, str | None]) -> None:  # fmt: skip
    """Add a render's lines to `order`, each new one where this render says it goes."""
    keys = []
    for role, text in _lines(segments):
        holds = tuple(name for name, word in stand_in.items() if word.lower() in text.lower())
        for name in holds:
            text = re.sub(re.escape(stand_in[name]), str(defaults.get(name, "")), text,
                          flags=re.IGNORECASE)  # fmt: skip
        text = " ".join(text.split())
        key = f"{role}\n{text}"
        if key not in found or (holds and not found[key].holds):
            found[key] = Line(line_id(text), text, role, holds)
        keys.append(key)
    placed = set(order)
    previous: str | None = None
    for j, key in enumerate(keys):
        if key not in placed:
            # After the line before it and the other lines first found after that one
            # (alternatives keep the order they were met in), but before the next line of
            # this render already placed.
            at = order.index(previous) + 1 if previous is not None else 0
            later = next((order.index(k) for k in keys[j + 1 :] if k in placed), None)
            end = later if later is not None and later >= at else len(order)
            while at < end and after[order[at]] == previous:
                at += 1
            order.insert(at, key)
            placed.add(key)
            after[key] = previous
        previous = key


def _lines(segments) -> list[tuple[str, str]]:
    """Return (role, text) for each line: speech joined across breaths, one voice."""
    every = {seg.role for seg in segments if isinstance(seg, Speech)}
    return [(seg.role, seg.text) for seg in joined(segments, every) if isinstance(seg, Speech)]


def joined(segments: tuple[Segment, ...], roles: set[str]) -> tuple[Segment, ...]:
    """Return segments with each line of `roles` one utterance: a recording is of lines,
    its breaths between sentences its reader's own."""
    out: list[Segment] = []
    held: list[Segment] = []  # breaths after a speech that may yet join the next
    for seg in segments:
        if isinstance(seg, Pause) and seg.kind == PauseKind.BREATH and out and isinstance(
            out[-1], Speech) and out[-1].role in roles:  # fmt: skip
            held.append(seg)
            continue
        if isinstance(seg, Speech) and held and isinstance(out[-1], Speech) and out[-1].role == seg.role:
            last = out[-1]
            out[-1] = Speech(f"{last.text} {seg.text}", last.place, last.role)
            held = []
            continue
        out += held
        held = []
        out.append(seg)
    return tuple(out + held)


def page(practice: Practice, lines: list[Line]) -> str:
    """Return the listing as a page to read from: numbered lines, with notes."""
    roles = {line.role for line in lines}
    defaults = {v.name: v.default for v in practice.variables}
    out = [f"{practice.title}: {len(lines)} lines to record"
           + (f", in {len(roles)} voices" if len(roles) > 1 else ""), ""]  # fmt: skip
    width = len(str(len(lines)))
    for n, line in enumerate(lines, 1):
        who = f"[{line.role}] " if len(roles) > 1 else ""
        out.append(f"{n:>{width}}  {line.id}  {who}{line.text}")
        if line.holds:
            names = ", ".join(line.holds)
            blank = [n for n in line.holds if not defaults.get(n)]
            how = ("leave it out: the fallback voice says it with the listener's words" if blank
                   else "read it with the default shown, or leave it out")  # fmt: skip
            out.append(f"{'':>{width}}          holds the listener's {names}: {how}")
    return "\n".join(out) + "\n"
