"""Rendering a practice's template: sandboxed Jinja with the listener's values.

Templates are run in a bounded sandbox (`sandbox.py`); every template error is reported
with the file and line it happened on. A listener's value is plain text: it can never
become markup.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from .errors import ScriptError
from .limits import MAX_TEMPLATE_BYTES, MAX_TEMPLATE_NUMBER, MAX_VALUE_CHARS, finite
from .model import Practice
from .practice import BUILTIN_DIR, SUFFIXES, shown_name
from .sandbox import BoundedEnvironment, BudgetError


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
    if "[" in value or "]" in value:
        raise ScriptError(f"{shown}: a value cannot hold [ or ], which would be read as markup")
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
    if read is not None and isinstance(env.loader, _InsideLoader):
        env.loader.read = read
    try:
        template = env.from_string(body)
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
