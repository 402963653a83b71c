"""The ambience bed: looped, faded at both ends, and dipped under speech without pumping."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

#: The ducking and fade curves are computed at this rate, then interpolated per sample.
CONTROL_HZ = 100


def speech_regions(spans: Iterable[tuple[int, int]], hold: int) -> Iterator[tuple[int, int]]:
    """Return speech spans (samples) joined across gaps shorter than `hold`."""
    region = None
    for start, end in spans:
        if region and start - region[1] <= hold:
            region = (region[0], max(region[1], end))
            continue
        if region:
            yield region
        region = (start, end)
    if region:
        yield region


def curve(
    length: int,
    rate: int,
    regions: Iterable[tuple[int, int]],
    duck: float,
    attack: float,
    release: float,
    fade_in: float,
    fade_out: float,
) -> np.ndarray:
    """Return the bed's gain at CONTROL_HZ: dips of `duck` dB under each region, and fades.

    Each dip ramps down over `attack` before the region and back over `release` after it,
    with raised-cosine ramps (no corner, so no audible step).
    """
    n = math.ceil(length / rate * CONTROL_HZ) + 2
    depth = np.zeros(n)
    for start, end in regions:
        a, b = start / rate, end / rate
        lo = max(math.floor((a - attack) * CONTROL_HZ), 0)
        hi = min(math.ceil((b + release) * CONTROL_HZ) + 1, n)
        t = np.arange(lo, hi) / CONTROL_HZ
        d = np.zeros(len(t))
        d[(t >= a) & (t <= b)] = 1.0
        rise = (t > a - attack) & (t < a)
        d[rise] = np.maximum(d[rise], ease((t[rise] - (a - attack)) / attack))
        fall = (t > b) & (t < b + release)
        d[fall] = np.maximum(d[fall], ease(1 - (t[fall] - b) / release))
        np.maximum(depth[lo:hi], d, out=depth[lo:hi])
    gain = 10 ** (-duck * depth / 20)
    t = np.arange(n) / CONTROL_HZ
    total = length / rate
    if fade_in > 0:
        gain *= np.sin(np.clip(t / fade_in, 0, 1) * np.pi / 2)
    if fade_out > 0:
        gain *= np.sin(np.clip((total - t) / fade_out, 0, 1) * np.pi / 2)
    return gain


def tile(loop: np.ndarray, start: int, out: np.ndarray) -> None:
    """Fill `out` with the looped `loop` from position `start`, by contiguous copies."""
    n, filled = len(loop), 0
    at = start % n
    while filled < len(out):
        take = min(n - at, len(out) - filled)
        out[filled : filled + take] = loop[at : at + take]
        filled += take
        at = 0


def ease(x: np.ndarray) -> np.ndarray:
    """Return a raised-cosine ramp from 0 to 1 over x in [0, 1]."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0, 1))
