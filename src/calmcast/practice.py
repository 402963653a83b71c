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

from . import languages, lexicon
from .durations import parse_duration
from .errors import ScriptError
from .formats import convert_script, kind_of
from .limits import MAX_PAUSE, MAX_SESSION, MAX_TEMPLATE_BYTES, finite
from .model import Practice, Timing, Variable
from .roles import front_matter_roles

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

#: The built-in practices, a resource of the package.
BUILTIN_DIR = Path(str(resources.files("calmcast") / "practices"))
SUFFIXES = (".j2", ".jinja", ".txt", ".text", ".md", ".markdown", ".ssml")

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
    "voices",
}
RESERVED = {"minutes", "language"}


def builtin_languages() -> list[str]:
    """Return the languages the built-in practices are written in, English first."""
    return [languages.DEFAULT, *sorted(d.name for d in BUILTIN_DIR.iterdir()
                                       if d.is_dir() and languages.folder_language(d.name))]  # fmt: skip


def builtin_dir(language: str | None = None) -> Path | None:
    """Return the folder of the built-in practices in `language` (`es-419` falls back to
    `es`), or None when there are none in it."""
    tag = languages.normal(language)
    if languages.primary(tag) == languages.DEFAULT:
        return BUILTIN_DIR
    for folder in (tag, languages.primary(tag)):
        if languages.folder_language(folder) and (BUILTIN_DIR / folder).is_dir():
            return BUILTIN_DIR / folder
    return None


def builtin_practices(language: str | None = None) -> list[str]:
    """Return the names of the built-in practices: in one language, or in all of them.

    English ones are named bare (`settling`), the others by their folder (`de/settling`).
    """
    names = []
    for tag in [language] if language else builtin_languages():
        folder = builtin_dir(tag)
        if folder is None:
            continue
        prefix = "" if folder == BUILTIN_DIR else f"{folder.name}/"
        names += sorted(prefix + p.stem for p in folder.glob("*.j2") if not p.name.startswith("_"))
    return names


def _builtin(ref: str, language: str | None) -> Path | None:
    """Return the built-in file `ref` names (`settling`, `de/settling`), in `language`."""
    folder_name, _, stem = ref.rpartition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", stem):
        return None
    if folder_name:
        if not languages.folder_language(folder_name) or (
            language and not languages.same(folder_name, language)
        ):
            return None
        language = folder_name
    folder = builtin_dir(language)
    if folder is None:
        return None
    found = folder / f"{stem}.j2"
    return found if found.is_file() else None


def is_builtin_name(ref: str) -> bool:
    """Return whether `ref` names a built-in practice, as `settling` or `de/settling` do."""
    return _builtin(ref, None) is not None


def find_practice(ref: str, language: str | None = None) -> Path:
    """Return the template file for a built-in name (in `language`, if given) or a path."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    builtin = _builtin(ref, language)
    if builtin is not None:
        return builtin
    prefix, _, stem = ref.rpartition("/")
    elsewhere = [n for n in builtin_practices() if n.rpartition("/")[2] == stem]
    if prefix and language and _builtin(ref, None) and not languages.same(prefix, language):
        there = [n for n in elsewhere if languages.same(_language_of_name(n), language)]
        hint = f": its version in {languages.normal(language)} is {there[0]}" if there else ""
        raise ScriptError.at(ref, None, None, f"is written in {prefix}, not "
                             f"{languages.normal(language)}{hint}")  # fmt: skip
    if elsewhere and (language or languages.folder_language(prefix)):
        wanted = languages.normal(language or prefix)
        langs = ", ".join(_language_of_name(n) for n in elsewhere)
        raise ScriptError.at(ref, None, None, f"no built-in practice {stem!r} in {wanted} "
                             f"(it is written in {langs})")  # fmt: skip
    if path.exists():
        what = "a folder" if path.is_dir() else "a FIFO or a device"
        raise ScriptError.at(ref, None, None, f"{what}, not a practice file")
    if path.suffix or "/" in ref:
        raise ScriptError.at(ref, None, None, "no such practice file")
    names = builtin_practices(language if builtin_dir(language) else None)
    close = difflib.get_close_matches(ref, names, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "`calmcast practices` lists them"
    raise ScriptError.at(ref, None, None, f"no built-in practice of that name ({hint})")


def _language_of_name(name: str) -> str:
    return name.rpartition("/")[0] or languages.DEFAULT


def load_practice(ref: str, language: str | None = None, kind: str | None = None) -> Practice:
    """Return the practice `ref` names, its front matter read and checked.

    With `language`, a built-in name finds the practice written in it, and a practice of
    another language is refused. `kind` says how to read the file (`formats.KINDS`);
    without it, its suffix and a look at its text say.
    """
    path = find_practice(ref, language)
    try:
        if not path.is_file():
            raise ScriptError.at(str(path), None, None, "is not a file")
        with open(path, "rb") as f:
            data = f.read(MAX_TEMPLATE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise ScriptError.at(str(path), None, None, f"larger than {MAX_TEMPLATE_BYTES // 1000} "
                                 "kB, the largest practice calmcast reads")  # fmt: skip
        source = data.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark is not text
    except UnicodeDecodeError as e:
        raise ScriptError.at(str(path), None, None, f"not UTF-8 text (byte {e.start + 1})") from e
    except OSError as e:
        raise ScriptError.at(
            str(path), None, None, f"cannot read the practice: {e.strerror or e}"
        ) from e
    name = path.stem if path.suffix in SUFFIXES else path.name
    if path.parent != BUILTIN_DIR and path.parent.parent == BUILTIN_DIR:
        name = f"{path.parent.name}/{name}"  # de/settling
    practice = practice_from_source(source, name, str(path), kind or kind_of(path, source))
    if language and not languages.same(practice.language, language):
        raise ScriptError.at(
            shown_name(practice), None, None,
            f"is written in {practice.language}, not {languages.normal(language)} (a practice "
            "says its language in its front matter's `language` or by its folder, e.g. de/)",
        )  # fmt: skip
    return practice


def practice_from_source(
    source: str, name: str = "practice", path: str = "practice.j2", kind: str = "j2"
) -> Practice:
    """Return a practice from template text, as if read from `path`.

    A script of another kind (`formats.KINDS`: plain text, Markdown) is read into template
    text first, line for line; its front matter, if it has one, is kept as it is.
    """
    shown = name if _is_builtin(path) else path
    meta, fm_lines = _front_matter(source, shown)
    if kind != "j2":
        lines = re.split(r"(?<=\n)", source)
        converted = convert_script("".join(lines[fm_lines:]), kind, shown, fm_lines + 1)
        source = "".join(lines[:fm_lines]) + converted.body
        if converted.title and "title" not in meta:
            meta = {**meta, "title": converted.title}
        if converted.language and "language" not in meta:
            meta = {**meta, "language": converted.language}
    return _practice_from(meta, name=name, path=path, shown=shown, source=source, fm_lines=fm_lines)


def _front_matter(source: str, shown: str) -> tuple[dict, int]:
    lines = re.split(r"(?<=\n)", source)  # by new lines alone, as the template counts
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
    roles = front_matter_roles(meta["voices"], problems) if "voices" in meta else ()
    title = text("title") or name.replace("-", " ").replace("_", " ").capitalize()
    described = {key: text(key) for key in ("description", "guide", "album", "language")}
    language = described["language"].strip()
    if language and not re.fullmatch(languages.TAG, language):
        problems.append(f"language: expected a language like de or es-419, got {language!r}")
    folder = Path(path).parent.name
    language = languages.normal(language or languages.folder_language(folder.lower()))
    if problems:
        raise ScriptError.at(shown, None, None, "front matter: " + "; ".join(problems), problems)
    return Practice(
        name=name,
        path=path,
        source=source,
        title=title,
        pronounce=pronounce,
        roles=roles,
        description=described["description"],
        minutes=minutes,
        min_minutes=lo,
        max_minutes=hi,
        variables=tuple(variables),
        timing=timing,
        front_matter_lines=fm_lines,
        guide=described["guide"],
        album=described["album"],
        language=language,
    )


def shown_name(practice: Practice) -> str:
    """Return how messages name a practice: a built-in by its name, any other by its path."""
    return practice.name if _is_builtin(practice.path) else practice.path


def _is_builtin(path: str | Path) -> bool:
    folder = Path(path).parent
    return folder == BUILTIN_DIR or folder.parent == BUILTIN_DIR
