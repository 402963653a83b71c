"""A stand-in for a teacher's reading: not a copy of the lines, but a take with a reader's habits.

The lines are spoken by another voice and pace than a render uses (espeak's en-us at 120
words a minute, higher pitched), at 48 kHz, with uneven gaps of 0.6 to 3 s between lines,
pauses of 0.8 to 1.5 s inside some lines (between their sentences), a breath before some
lines, a cough in one gap and pink room noise at -62 dBFS throughout. `Reading.words` records
where the generator put each line's words: from where they first rise 12 dB above the room
(-50 dBFS over 5 ms) to where they last do.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

from calmcast.encode import ffmpeg_exe
from calmcast.voices import open_voice

RATE = 48000
ROOM = -62.0
AUDIBLE = -50.0


@dataclass
class Reading:
    samples: np.ndarray
    words: dict[str, tuple[float, float]] = field(default_factory=dict)  # line id: (start, end)
    inner: dict[str, float] = field(default_factory=dict)  # line id: its inner pause, seconds
    cough: tuple[float, float] = (0.0, 0.0)
    breaths: list[tuple[float, float]] = field(default_factory=list)

    def write(self, path: Path) -> Path:
        """Write the take: WAV, FLAC or (by its suffix) a phone's AAC in M4A."""
        codec = {".m4a": ["-c:a", "aac", "-b:a", "128k"], ".flac": ["-c:a", "flac"]}
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", str(RATE), "-ac", "1",
             "-i", "-", *codec.get(path.suffix, ["-c:a", "pcm_s16le"]), str(path)],
            input=self.samples.astype("<f4").tobytes(), check=True,
        )  # fmt: skip
        return path


def pink(n: int, level_db: float, rng: np.random.Generator) -> np.ndarray:
    """Return `n` samples of pink noise at `level_db` dBFS RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum /= np.sqrt(np.maximum(f, 20.0))
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)).astype(np.float32)


def burst(seconds: float, level_db: float, rng: np.random.Generator, decay: float) -> np.ndarray:
    """Return a noise burst (a breath's hiss, a cough's bark) with a smooth envelope."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    env = np.sin(np.pi * np.minimum(t / seconds * (1 + decay), 1.0)) * np.exp(-decay * t / seconds)
    x = rng.standard_normal(n) * env
    x = np.convolve(x, np.ones(6) / 6, mode="same")  # a little duller than white
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)).astype(np.float32)


def spoken(voice, text: str) -> np.ndarray:
    """Return `text` in `voice` at 48 kHz, cut to where it is audible."""
    x = soxr.resample(voice.synthesize(text), voice.sample_rate, RATE).astype(np.float32)
    hop = RATE // 200
    n = len(x) // hop
    level = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > AUDIBLE)
    return x[loud[0] * hop : (loud[-1] + 1) * hop]


def make(lines, seed: int = 7, voice: str = "espeak:en-us", wpm: int = 120) -> Reading:
    """Return a reading of `lines` (objects with .id and .text), in order."""
    rng = np.random.default_rng(seed)
    v = open_voice(voice, wpm, 70 if voice.startswith("espeak") else None)
    parts: list[np.ndarray] = []
    reading = Reading(np.zeros(0, np.float32))
    at = 1.0
    parts.append(np.zeros(int(at * RATE), np.float32))
    cough_after = len(lines) // 2
    for k, line in enumerate(lines):
        if k:
            gap = rng.uniform(0.6, 3.0)
            breath = k % 3 == 1
            if k == cough_after:
                gap = 3.0
            elif breath:
                gap = max(gap, 1.6)
            room = np.zeros(int(gap * RATE), np.float32)
            if k == cough_after:
                c = burst(0.35, -24.0, rng, 3.0)
                a = (len(room) - len(c)) // 2
                room[a : a + len(c)] += c
                reading.cough = (at + a / RATE, at + (a + len(c)) / RATE)
            elif breath:
                b = burst(0.3, -40.0, rng, 0.5)
                a = len(room) - len(b) - int(0.45 * RATE)
                room[a : a + len(b)] += b
                reading.breaths.append((at + a / RATE, at + (a + len(b)) / RATE))
            parts.append(room)
            at += len(room) / RATE
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", line.text) if s]
        if len(sentences) > 1 and k % 2 == 0:
            pause = rng.uniform(0.8, 1.5)
            half = len(sentences) // 2
            first, second = " ".join(sentences[:half]), " ".join(sentences[half:])
            pieces = [spoken(v, first), np.zeros(int(pause * RATE), np.float32), spoken(v, second)]
            reading.inner[line.id] = pause
        else:
            pieces = [spoken(v, line.text)]
        words = np.concatenate(pieces)
        reading.words[line.id] = (at, at + len(words) / RATE)
        parts.append(words)
        at += len(words) / RATE
    parts.append(np.zeros(int(1.5 * RATE), np.float32))
    x = np.concatenate(parts)
    reading.samples = x + pink(len(x), ROOM, rng)
    return reading
