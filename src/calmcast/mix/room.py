"""The teacher's room under the pauses: a tone made to the room measured in their reading.

A session spoken from clips would drop to digital black between them; a listener hears
that as the recording stopping. Under every pause, and under any line a fallback voice
says, this lays a noise shaped to the room's spectrum (`voices.room.Room`), high-passed as
the voice chain high-passes the clips, at the gain the clips either side of it get (so voice
and room keep their ratio, and the room glides from one clip's level to the next). It is
crossfaded with each clip over the clip's own fade, at equal power: the clip's room gives way
to the made room with no step. The noise is drawn afresh for every stretch of the session
(a seeded generator per block of samples, the same for the same session), so it never
repeats, however long the silence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..voices.room import Room

#: Samples of white noise drawn from one seed; the shaping filter's length.
CHUNK, TAPS = 1 << 15, 2047
#: The room is laid in pieces of this many samples.
PIECE = 1 << 16


class RoomTone:
    """The room's tone at unit gain, as any range of samples of the session."""

    def __init__(self, room: Room, rate: int, highpass: float, seed: int = 0) -> None:
        self.rate, self.seed = rate, seed
        n = 4096
        f = np.fft.rfftfreq(n, 1 / rate)
        bands = np.array(room.bands)
        shape_db = np.interp(np.log(np.maximum(f, 1.0)), np.log(bands[:, 0]), bands[:, 1])
        magnitude = 10 ** (shape_db / 20)
        if highpass > 0:
            magnitude *= f**2 / np.sqrt(f**4 + highpass**4)
        # A linear-phase filter of TAPS taps with that response, windowed.
        kernel = np.roll(np.fft.irfft(magnitude, n), TAPS // 2)[:TAPS] * np.hanning(TAPS)
        # White noise of unit power through it comes out at the room's level.
        kernel *= 10 ** (room.level / 20) / math.sqrt(float(np.sum(kernel**2)))
        self.kernel = kernel
        self._spectra: dict[int, np.ndarray] = {}

    def render(self, lo: int, hi: int) -> np.ndarray:
        """Return samples [lo, hi) of the tone, mono float32."""
        if hi <= lo:
            return np.zeros(0, np.float32)
        start = lo - (TAPS - 1)
        first, last = start // CHUNK, (hi - 1) // CHUNK
        white = np.concatenate([self._white(k) for k in range(first, last + 1)])
        x = white[start - first * CHUNK : hi - first * CHUNK]
        size = 1 << math.ceil(math.log2(len(x) + TAPS))
        y = np.fft.irfft(np.fft.rfft(x, size) * self._spectrum(size), size)
        return y[TAPS - 1 : TAPS - 1 + (hi - lo)].astype(np.float32)

    def _white(self, k: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, k & 0xFFFFFFFF, k >> 32 & 0xFFFFFFFF])
        return rng.standard_normal(CHUNK)

    def _spectrum(self, size: int) -> np.ndarray:
        if size not in self._spectra:
            self._spectra[size] = np.fft.rfft(self.kernel, size)
        return self._spectra[size]


class RoomLayer:
    """The room under a session: its tone, and where the recorded clips lie, at what gain."""

    def __init__(self, tone: RoomTone, length: int, clips: Sequence[tuple[int, int, float]],
                 fade: int, fade_in: float, fade_out: float) -> None:  # fmt: skip
        """`clips` are (start, end, gain) of every recorded clip on the timeline, in order:
        the room takes each clip's gain at its edges and glides between them; before the
        first and after the last it holds."""
        self.tone, self.length, self.clips = tone, length, list(clips)
        self.fade, self.fade_in, self.fade_out = fade, fade_in, fade_out
        self.at = np.array([x for s, e, _ in self.clips for x in (s, e)], dtype=np.float64)
        self.level = np.array([g for _, _, g in self.clips for _ in (0, 1)], dtype=np.float64)

    def add(self, out: np.ndarray, start: int, stop: int) -> None:
        """Add the room to `out`, samples [start, stop) of the session (frames x channels)."""
        lo, hi = max(start, 0), min(stop, self.length)
        if hi <= lo or not self.clips:
            return
        # In pieces, so the tone's filtering and gains stay small beside a 10 s block.
        for a in range(lo, hi, PIECE):
            b = min(a + PIECE, hi)
            out[a - start : b - start] += (self.tone.render(a, b) * self.gain(a, b))[:, None]

    def gain(self, lo: int, hi: int) -> np.ndarray:
        """Return the room's gain over [lo, hi): between the clips' gains, out of the way of
        every clip but its fades (at equal power with them), faded with the session."""
        t = np.arange(lo, hi, dtype=np.float64)
        gain = np.interp(t, self.at, self.level)
        f = self.fade
        for s, e, _ in self.clips:
            if e <= lo or s >= hi:
                continue
            a, b = max(s, lo), min(e, hi)
            inside = t[a - lo : b - lo]
            r = np.minimum((inside - s) / f, (e - 1 - inside) / f) if f else np.ones(len(inside))
            gain[a - lo : b - lo] *= np.sqrt(1 - np.clip(r, 0, 1) ** 2)
        seconds, total = t / self.tone.rate, self.length / self.tone.rate
        if self.fade_in > 0:
            gain *= np.sin(np.clip(seconds / self.fade_in, 0, 1) * np.pi / 2)
        if self.fade_out > 0:
            gain *= np.sin(np.clip((total - seconds) / self.fade_out, 0, 1) * np.pi / 2)
        return gain.astype(np.float32)
