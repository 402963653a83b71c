"""Durations as people write them: 10s, 1m30s, 2.5s, 90, 12m30s, 1h."""

from __future__ import annotations

import math
import re

from .limits import MAX_SESSION

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?:in)?)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$"
)


def parse_duration(text: str) -> float:
    """Return the seconds in `text`; raise ValueError if it is not a duration."""
    shown = repr(text) if len(text) <= 24 else repr(text[:20]) + "..."
    t = text.strip().lower().replace(" ", "")
    m = _DURATION.match(t) if len(t) <= 64 else None
    if not t or not m or not any(m.groupdict().values()):
        raise ValueError(f"{shown} is not a duration (for example 10s, 1m30s, 2.5s or 90)")
    h, mi, s = (float(m.group(k) or 0) for k in "hms")
    seconds = h * 3600 + mi * 60 + s
    if not math.isfinite(seconds) or seconds > MAX_SESSION:
        raise ValueError(
            f"{shown} is longer than {format_duration(MAX_SESSION)}, the longest calmcast makes"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Return seconds as a short human duration: 45s, 2m, 12m30s, 1h5m, 2.5s."""
    if math.isinf(seconds):
        return "no limit"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    out = f"{h}h" if h else ""
    out += f"{m}m" if m else ""
    out += f"{s}s" if s else ""
    return out


def format_clock(seconds: float) -> str:
    """Return seconds as m:ss.mmm (or h:mm:ss.mmm) for timelines."""
    ms = round(seconds * 1000)
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}" if h else f"{m}:{s:02d}.{ms:03d}"
