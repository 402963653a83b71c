"""The sound library: ambience beds and bells, ours (in ambience/) or any audio file."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import encode
from .errors import AudioError

log = logging.getLogger(__name__)

SOUND_SUFFIXES = (".ogg", ".flac", ".wav", ".mp3", ".opus", ".m4a", ".aac", ".aiff")
#: A bed longer than this is only read this far; the loop repeats it.
MAX_BED_SECONDS = 600.0
#: Seams of a looped bed are crossfaded over this long (shorter for very short files).
LOOP_CROSSFADE = 3.0
#: A bell has rung out when it has fallen this far below its strike (-40 dB).
RING_FLOOR = 0.01
#: A bell's loudness is measured over its first seconds.
STRIKE_SECONDS = 1.5


def library_dir() -> Path:
    """Return the ambience/ folder: inside the installed package, or the source checkout's."""
    packaged = Path(__file__).parent / "ambience"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "ambience"


def _names(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SOUND_SUFFIXES}


def ambiences() -> dict[str, Path]:
    """Return the built-in ambience beds by name."""
    return _names(library_dir())


def bells() -> dict[str, Path]:
    """Return the built-in bells by name."""
    return _names(library_dir() / "bells")


DEFAULT_BELL = "bowl"


def find(ref: str, kind: str) -> Path:
    """Return the file for a built-in ambience or bell name, or a path to any audio file."""
    library = ambiences() if kind == "ambience" else bells()
    if ref in library:
        return library[ref]
    path = Path(ref).expanduser()
    if path.suffix or "/" in ref:
        if not path.is_file():
            raise AudioError(f"{ref}: no such {kind} file")
        return path
    known = ", ".join(library) or "none installed"
    raise AudioError(
        f"{ref}: no built-in {kind} of that name (known: {known}; or give a file path)"
    )


@dataclass(frozen=True)
class Sound:
    """Decoded audio (frames x 2, float32) with its measured loudness."""

    name: str
    path: Path
    audio: np.ndarray
    rate: int
    lufs: float
    seamless: bool = False  # made to loop as it is (the built-in beds are)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate

    @property
    def ring(self) -> float:
        """Return how long the sound stays within 40 dB of its peak: how long it is heard."""
        level = np.abs(self.audio).max(axis=1)
        audible = np.flatnonzero(level > level.max() * RING_FLOOR)
        return (audible[-1] + 1) / self.rate if len(audible) else 0.0


def loudness(audio: np.ndarray, rate: int) -> float:
    """Return the integrated loudness (LUFS, BS.1770) of a whole clip, by ffmpeg's meter."""
    if len(audio) < int(0.4 * rate):  # shorter than one gating block: pad with silence
        pad = np.zeros((int(0.4 * rate) - len(audio) + 1, *audio.shape[1:]), np.float32)
        audio = np.concatenate([audio, pad])
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    with encode.Meter(rate, channels) as meter:
        meter.write(audio)
    return meter.loudness


@functools.lru_cache(maxsize=16)
def load(ref: str, kind: str, rate: int) -> Sound:
    """Return a bed or bell decoded at `rate`, checked to be usable."""
    path = find(ref, kind)
    seconds = MAX_BED_SECONDS if kind == "ambience" else None
    audio = encode.decode(path, rate, 2, seconds)
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-4:  # -80 dBFS
        raise AudioError(f"{path}: the {kind} is silent")
    if kind == "ambience" and len(audio) < rate:
        raise AudioError(
            f"{path}: the ambience is {len(audio) / rate:.2f} s long; at least 1 s is needed to loop it"
        )
    if kind == "bell":
        audio = _trim_bell(audio, rate)
    # A bell is as loud as its strike, not its long fading ring.
    lufs = loudness(audio[: int(STRIKE_SECONDS * rate)] if kind == "bell" else audio, rate)
    if not np.isfinite(lufs):
        raise AudioError(f"{path}: the {kind} is too quiet to measure")
    log.debug("%s %s: %.1f s, %.1f LUFS", kind, path.name, len(audio) / rate, lufs)
    seamless = kind == "ambience" and path.parent.resolve() == library_dir().resolve()
    return Sound(path.stem, path, audio, rate, lufs, seamless)


def _trim_bell(audio: np.ndarray, rate: int) -> np.ndarray:
    """Drop silence before the strike and after the ring dies away (below -70 dBFS)."""
    level = np.max(np.abs(audio), axis=1)
    loud = np.flatnonzero(level > 10 ** (-70 / 20))
    return audio[loud[0] : loud[-1] + 1]


def make_loop(audio: np.ndarray, rate: int) -> np.ndarray:
    """Return a bed that tiles without a seam: its tail crossfaded (equal power) into its head."""
    x = min(int(LOOP_CROSSFADE * rate), len(audio) // 4)
    if x < 2:
        return audio
    t = np.linspace(0.0, np.pi / 2, x, dtype=np.float64)[:, None]
    head = audio[:x] * np.sin(t) + audio[len(audio) - x :] * np.cos(t)
    loop = np.concatenate([head.astype(np.float32), audio[x : len(audio) - x]])
    return loop
