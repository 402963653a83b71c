"""The room a teacher read in, measured in the gaps of their reading.

A recording's silences are never digital black: under every pause of a session made from
clips, calmcast lays a tone made to this room's spectrum and level (`mix.room`), so the
pauses sound like the recording going on. The spectrum is kept in sixth-octave bands, the
level as the gaps' RMS, both before the voice chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: A room louder than this (dBFS RMS) is heard under every pause: the import warns.
NOISY = -50.0
#: Seconds of gaps that make a sure measurement; a later import with less keeps the earlier.
ENOUGH = 10.0
#: The most gap audio measured, seconds (spread over the take).
MOST = 120.0
#: Each gap loses this much either side, seconds: a word's tail and the room's echo of it.
CLEAR = 0.15
#: The spectrum's analysis frame, samples, and its bands from LOWEST Hz, six to an octave.
FRAME, LOWEST, PER_OCTAVE = 4096, 20.0, 6


@dataclass(frozen=True)
class Room:
    """A room's tone: its RMS level (dBFS), spectrum (Hz, dB per band, relative) and how many
    seconds of gaps it was measured over."""

    level: float
    bands: tuple[tuple[float, float], ...]
    seconds: float

    def as_json(self) -> dict:
        return {"level": round(self.level, 2), "seconds": round(self.seconds, 1),
                "bands": [[round(f, 1), round(d, 2)] for f, d in self.bands]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> Room:
        level, seconds = float(data["level"]), float(data["seconds"])
        bands = tuple((float(f), float(d)) for f, d in data["bands"])
        if not (math.isfinite(level) and bands and all(math.isfinite(f + d) for f, d in bands)):
            raise ValueError("the room's tone is not a level and bands")
        return cls(level, bands, seconds)


def measure(parts: list[np.ndarray], rate: int) -> Room | None:
    """Return the room heard in `parts` (stretches of a take with no sound in them), or None
    when there is too little of it (under one analysis frame in all)."""
    parts = [p for p in parts if len(p) >= FRAME]
    if not parts:
        return None
    window = np.hanning(FRAME)
    power = np.zeros(FRAME // 2 + 1)
    frames, energy, count = 0, 0.0, 0
    for part in parts:
        x = part.astype(np.float64) - float(np.mean(part))
        energy += float(np.sum(x * x))
        count += len(x)
        for a in range(0, len(x) - FRAME + 1, FRAME // 2):
            power += np.abs(np.fft.rfft(x[a : a + FRAME] * window)) ** 2
            frames += 1
    level = 10 * math.log10(energy / count + 1e-20)
    freqs = np.fft.rfftfreq(FRAME, 1 / rate)
    density = power / max(frames, 1)
    bands = []
    f = LOWEST
    while f < rate / 2:
        lo, hi = f * 2 ** (-0.5 / PER_OCTAVE), f * 2 ** (0.5 / PER_OCTAVE)
        inside = (freqs >= lo) & (freqs < hi)
        if inside.any():
            bands.append((f, float(np.mean(density[inside]))))
        f *= 2 ** (1 / PER_OCTAVE)
    top = max(d for _, d in bands) or 1.0
    shape = tuple((f, 10 * math.log10(d / top + 1e-12)) for f, d in bands)
    return Room(level, shape, count / rate)


def gaps(take, sounds) -> list[np.ndarray]:
    """Return the stretches of `take` between its `sounds`, clear of them, at most MOST seconds."""
    spans = []
    edges = [0.0] + [t for p in sounds for t in (p.start, p.end)] + [take.seconds]
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        a, b = a + CLEAR, b - CLEAR
        if b - a >= FRAME / take.rate:
            spans.append((a, b))
    total = sum(b - a for a, b in spans)
    share = min(1.0, MOST / total) if total else 1.0
    return [take.samples(a, a + (b - a) * share) for a, b in spans]
