"""Practices: finding a template by name or path, and reading its TOML front matter.

A practice is a Jinja template whose front matter (between two `+++` lines) gives its title,
its lengths and the variables a listener may set. `load_practice()` returns it as a
`Practice`, checked, before anything is rendered.
"""

from __future__ import annotations

import difflib
import logging
import re
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path

from . import lexicon
from .durations import parse_duration
from .errors import ScriptError
from .limits import MAX_PAUSE, MAX_SESSION, MAX_TEMPLATE_BYTES, finite
from .model import Practice, Timing, Variable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

#: The built-in practices, a resource of the package.
BUILTIN_DIR = Path(str(resources.files("calmcast") / "practices"))
SUFFIXES = (".j2", ".jinja", ".txt", ".md")

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
    "pronounce",
}
RESERVED = {"minutes", "language"}


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
        raise ScriptError.at(ref, None, None, "no such practice file")
    names = builtin_practices()
    close = difflib.get_close_matches(ref, names, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "`calmcast practices` lists them"
    raise ScriptError.at(ref, None, None, f"no built-in practice of that name ({hint})")


def load_practice(ref: str) -> Practice:
    """Return the practice `ref` names, its front matter read and checked."""
    path = find_practice(ref)
    try:
        if not path.is_file():
            raise ScriptError.at(str(path), None, None, "is not a file")
        with open(path, "rb") as f:
            data = f.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise ScriptError.at(str(path), None, None, f"larger than {MAX_TEMPLATE_BYTES // 1000} "
                                 "kB, the largest practice calmcast reads")  # fmt: skip
        source = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScriptError.at(str(path), None, None, f"not UTF-8 text (byte {e.start + 1})") from e
    except OSError as e:
        raise ScriptError.at(
            str(path), None, None, f"cannot read the practice: {e.strerror or e}"
        ) from e
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
        raise ScriptError.at(shown, 1, None, "the front matter opened with +++ is never closed")
    try:
        return tomllib.loads("".join(lines[1:i])), i + 1
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, column = (int(m.group(1)) + 1, int(m.group(2))) if m else (1, None)
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        raise ScriptError.at(shown, line, column, f"front matter: {msg}") from e


def _practice_from(meta: dict, *, name, path, shown, source, fm_lines) -> Practice:
    problems = []
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
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var) or var in RESERVED:
            problems.append(f"variables.{var}: not a usable variable name")
            continue
        if not isinstance(spec, dict):
            spec = {"default": spec}
        unknown = set(spec) - {"default", "help", "choices"}
        if unknown:
            problems.append(f"variables.{var}: unknown key {sorted(unknown)[0]!r}")
        choices = spec.get("choices", [])
        default = spec.get("default", "")
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            problems.append(f"variables.{var}: choices: expected a list of words")
            choices = []
        elif choices and default not in choices:
            problems.append(f"variables.{var}: the default {default!r} is not one of its choices")
        variables.append(Variable(var, default, str(spec.get("help", "")), tuple(choices)))
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
    pronounce: dict[str, str] = {}
    try:
        pronounce = lexicon.check(meta.get("pronounce", {}))
    except ValueError as e:
        problems.append(f"pronounce: {e}")
    title = text("title") or name.replace("-", " ").replace("_", " ").capitalize()
    described = {key: text(key) for key in ("description", "guide", "album", "language")}
    if problems:
        raise ScriptError.at(shown, None, None, "front matter: " + "; ".join(problems), problems)
    return Practice(
        name=name,
        path=path,
        source=source,
        title=title,
        pronounce=pronounce,
        description=described["description"],
        minutes=minutes,
        min_minutes=lo,
        max_minutes=hi,
        variables=tuple(variables),
        timing=timing,
        front_matter_lines=fm_lines,
        guide=described["guide"],
        album=described["album"],
        language=described["language"],
    )


def shown_name(practice: Practice) -> str:
    """Return how messages name a practice: a built-in by its name, any other by its path."""
    return practice.name if Path(practice.path).parent == BUILTIN_DIR else practice.path
