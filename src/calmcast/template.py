"""Rendering a practice's template: sandboxed Jinja with the listener's values.

Templates are run in a bounded sandbox (`sandbox.py`); every template error is reported
with the file and line it happened on. A listener's value is plain text: it can never
become markup.
"""

from __future__ import annotations

import contextvars
import functools
import re
import types
from pathlib import Path

import jinja2

from . import languages
from .errors import ScriptError
from .limits import MAX_TEMPLATE_BYTES, MAX_TEMPLATE_NUMBER, MAX_VALUE_CHARS, finite
from .model import Practice
from .practice import SUFFIXES, builtin_dir, shown_name
from .sandbox import BoundedEnvironment, BudgetError


def environment(practice: Practice) -> _Environment:
    """Return the one kind of template environment: sandboxed, strict, block-trimmed.

    Includes are found beside the practice, then among the built-in partials of the
    practice's language (`_opening.j2` in German is `practices/de/_opening.j2`). Numbers and
    lengths are said in that language by the filters `number_words`, `minutes_words` and
    `duration_words` (seconds): `{{ minutes | minutes_words }}` -> "zwanzig Minuten".
    One environment serves every practice with the same folders and language, so a
    template is compiled once per process (and again when its file changes).
    """
    folders = [str(Path(practice.path).parent)]
    shared = builtin_dir(practice.language)
    if shared is not None and str(shared) not in folders:
        folders.append(str(shared))
    return _environment(tuple(folders), practice.language)


#: Every template file the render in progress loads, resolved (None: not recorded).
_READ: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("read", default=None)


class _Environment(BoundedEnvironment):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._compiled: dict[str, types.CodeType] = {}

    def _load_template(self, name, globals):  # every include and import, cached or not
        template = super()._load_template(name, globals)
        read = _READ.get()
        if read is not None and template.filename:
            read.append(str(Path(template.filename).resolve()))
        return template

    def from_body(self, body: str) -> jinja2.Template:
        """Return a practice's own text as a template, compiled once while it is unchanged."""
        code = self._compiled.get(body)
        if code is None:
            code = self.compile(body)
            if len(self._compiled) >= 64:
                self._compiled.clear()
            self._compiled[body] = code
        return self.template_class.from_code(self, code, self.make_globals(None), None)


@functools.lru_cache(maxsize=32)
def _environment(folders: tuple[str, ...], language: str) -> _Environment:
    env = _Environment(
        loader=_InsideLoader(list(folders)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["number_words"] = lambda n: languages.say_number(_number(n), language)
    env.filters["minutes_words"] = lambda m: languages.say_duration(_number(m) * 60, language)
    env.filters["duration_words"] = lambda s: languages.say_duration(_number(s), language)
    return env


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


class _InsideLoader(jinja2.FileSystemLoader):
    """Includes come from inside the practice's folder (or the built-ins), links resolved."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        real = Path(filename).resolve()
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
        choices = declared[name].choices
        if choices:
            from .settings import choice

            try:
                out[name] = choice(*choices)(raw)
            except ValueError:
                raise ScriptError(
                    f"--set {name}={str(raw)[:40]}: expected one of {', '.join(choices)}"
                ) from None
        elif isinstance(default, bool):
            low = str(raw).lower()
            if low not in ("true", "false", "yes", "no", "1", "0"):
                raise ScriptError(f"--set {name}={raw}: expected true or false")
            out[name] = low in ("true", "yes", "1")
        elif isinstance(default, (int, float)):
            try:
                number: float
                if isinstance(default, int) and raw.strip().isdigit():
                    number = int(raw)
                    if abs(number) > MAX_TEMPLATE_NUMBER:
                        raise ValueError(f"{raw} is out of range")
                else:
                    number = finite(raw, "value", -MAX_TEMPLATE_NUMBER, MAX_TEMPLATE_NUMBER)
                out[name] = number
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
    markup = next((c for c in "[]<>" if c in value), None)
    if markup:
        raise ScriptError(
            f"{shown}: a value cannot hold {markup} ([, ], < and > would be read as markup)"
        )
    return value


def render_text(practice: Practice, context: dict, read: list[str] | None = None) -> str:
    """Return the template rendered with `context`, errors naming the file and line.

    The files it includes are added to `read`, resolved.
    """
    shown = shown_name(practice)
    body = practice.source
    if practice.front_matter_lines:
        # Keep line numbers: the front matter becomes a comment spanning the same lines.
        lines = body.splitlines(keepends=True)
        n = practice.front_matter_lines
        body = "{#" + "\n" * n + "#}" + "".join(lines[n:])
    env = environment(practice)
    token = _READ.set(read)
    try:
        template = env.from_body(body)
        return env.render(template, context)
    except BudgetError as e:
        raise ScriptError.at(shown, None, None, f"stopped: {e} (see the limits in the README)") from e
    except jinja2.TemplateSyntaxError as e:
        file = shown if e.filename in (None, "<template>") else e.name or e.filename
        raise ScriptError.at(file, e.lineno, None, e.message or "syntax error") from e
    except jinja2.TemplateNotFound as e:
        line = _template_frame(e.__traceback__, shown)[1]
        raise ScriptError.at(shown, line, None, f"included template {e.name!r} not found") from e
    except jinja2.exceptions.SecurityError as e:
        line = _template_frame(e.__traceback__, shown)[1]
        raise ScriptError.at(shown, line, None, f"not allowed in a practice: {e}") from e
    except (jinja2.TemplateError, TypeError, ValueError, ZeroDivisionError) as e:
        file, line = _template_frame(e.__traceback__, shown)
        raise ScriptError.at(file, line, None, str(e)) from e
    finally:
        _READ.reset(token)


def _template_frame(tb, shown: str) -> tuple[str, int | None]:
    """Return the file and line of the innermost template frame in a traceback."""
    found: tuple[str, int | None] = (shown, None)
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == "<template>":
            found = (shown, tb.tb_lineno)
        elif name.endswith(SUFFIXES):
            found = (Path(name).name, tb.tb_lineno)
        tb = tb.tb_next
    return found
