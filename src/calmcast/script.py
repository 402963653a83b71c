"""A practice rendered for one session: its template run with the listener's values, read.

`render_script()` joins the two steps: the template (`template.py`) gives text, the
markers (`markers.py`) read that text into segments.
"""

from __future__ import annotations

from pathlib import Path

from .markers import parse_roles
from .model import Practice, Script
from .practice import RESERVED, shown_name
from .template import coerce_values, render_text


def render_script(
    practice: Practice,
    minutes: float | None = None,
    values: dict[str, str] | None = None,
) -> Script:
    """Return the practice rendered for a length and the listener's values, parsed.

    The template sees `minutes` and `language` (the practice's own) besides its variables.
    """
    shown = shown_name(practice)
    context = coerce_values(practice, values, shown)
    context["minutes"] = float(minutes or 0.0)
    context["language"] = practice.language
    read: list[str] = []
    text = render_text(practice, context, read)
    segments, roles = parse_roles(text, practice, shown)
    plain = {k: v for k, v in context.items() if k not in RESERVED}
    sources = tuple(dict.fromkeys([str(Path(practice.path).resolve()), *read]))
    return Script(practice, tuple(segments), plain, text, sources, roles)
