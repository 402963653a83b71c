"""A practice rendered for one session: its template run with the listener's values, read.

`render_script()` joins the two steps: the template (`template.py`) gives text, the
markers (`markers.py`) read that text into segments.
"""

from __future__ import annotations

from pathlib import Path

from .durations import format_duration
from .errors import ScriptError
from .limits import MAX_SESSION
from .markers import parse_roles
from .model import Pause, Practice, Script, Segment
from .practice import RESERVED, shown_name
from .template import coerce_values, render_text


def render_script(
    practice: Practice,
    minutes: float | None = None,
    values: dict[str, str] | None = None,
    *,
    memo: dict | None = None,
) -> Script:
    """Return the practice rendered for a length and the listener's values, parsed.

    The template sees `minutes` and `language` (the practice's own) besides its variables.
    `memo` keeps what texts parsed to, for a caller rendering one practice many times.
    """
    shown = shown_name(practice)
    context = coerce_values(practice, values, shown)
    context["minutes"] = float(minutes or 0.0)
    context["language"] = practice.language
    read: list[str] = []
    text = render_text(practice, context, read)
    if memo is not None and text in memo:
        segments, roles = memo[text]
    else:
        segments, roles = parse_roles(text, practice, shown)
        _check_silences(segments, shown)
        if memo is not None:
            memo[text] = (segments, roles)
    plain = {k: v for k, v in context.items() if k not in RESERVED}
    sources = tuple(dict.fromkeys([str(Path(practice.path).resolve()), *read]))
    return Script(practice, tuple(segments), plain, text, sources, roles)


def _check_silences(segments: list[Segment], shown: str) -> None:
    """Raise ScriptError, before anything is spoken, if the silences alone outlast a session."""
    total = 0.0
    for seg in segments:
        if isinstance(seg, Pause):
            total += seg.minimum
            if total > MAX_SESSION:
                place = seg.place
                raise ScriptError.at(
                    place.file if place else shown, place.line if place else None,
                    place.column if place else None,
                    f"the silences up to here already last {format_duration(total)}, more "
                    f"than a session may ({format_duration(MAX_SESSION)})",
                )  # fmt: skip
