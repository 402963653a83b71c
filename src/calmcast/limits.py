"""Every bound calmcast enforces, in one place, each checked before any work starts.

The README's "Limits" table is made from these names; change both together.
"""

from __future__ import annotations

import math

#: The longest session, seconds: a whole day retreat's sit, and far short of what would
#: take the machine's memory (a session is mixed in blocks; only its timeline is held).
MAX_SESSION = 12 * 3600.0
#: The longest single pause, and the longest length a marker may name, seconds.
MAX_PAUSE = MAX_SESSION
#: The shortest interval between bells through a session, seconds.
MIN_BELL_INTERVAL = 10.0
#: The longest bell: a longer file is decoded no further than this and faded out.
MAX_BELL = 60.0
#: Fade at the end of a bell that had to be cut, seconds.
BELL_CUT_FADE = 2.0
#: The largest template, bytes (the built-in practices are 3 to 12 kB; this parses in 0.3 s).
MAX_TEMPLATE_BYTES = 256_000
#: The most text a template may render, characters (a 12-hour session speaks about 600 kB).
MAX_RENDERED_CHARS = 1_000_000
#: The longest a template may take to render, seconds of CPU, before it is stopped.
MAX_TEMPLATE_SECONDS = 10.0
#: The largest number a template's arithmetic may make (beyond it, a power or a product
#: is a runaway, not a meditation).
MAX_TEMPLATE_NUMBER = 10**12
#: The longest `--set` value, characters.
MAX_VALUE_CHARS = 500
#: The most sentences one session may speak.
MAX_UTTERANCES = 20_000


def finite(value: float | str, what: str, lo: float | None = None, hi: float | None = None) -> float:
    """Return value as a float if it is a finite number within [lo, hi]; else ValueError."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ValueError(f"{what}: {x:g} is out of range ({_range(lo, hi)})")
    return x


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    return f"at least {lo:g}" if lo is not None else f"at most {hi:g}"
