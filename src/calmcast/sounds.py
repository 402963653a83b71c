"""The sound library: ambience beds and bells, ours (in ambience/) or any audio file."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import encode
from . import loudness as meter
from .errors import AudioError
from .limits import BELL_CUT_FADE, MAX_BELL

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


@functools.cache
def library_dir() -> Path:
    """Return the ambience/ folder: the installed package's resource, or the checkout's.

    A wheel carries it as calmcast/ambience; an editable install reads the checkout's.
    """
    packaged = resources.files("calmcast") / "ambience"
    if packaged.is_dir():
        return Path(str(packaged))
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
#: `--bell none`: no bell at all, the script's own bells silenced too.
NO_BELL = "none"


def silenced(ref: str | None) -> bool:
    """Return whether a session's bell setting asks for no bells at all."""
    return ref is not None and ref.strip().lower() == NO_BELL


def bell_file(ref: str | None) -> Path | None:
    """Return the file of the session's bell setting, None for the default or for none."""
    return None if ref is None or silenced(ref) else find(ref, "bell")


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
    """Decoded audio (frames x channels) with its measured loudness.

    Beds are kept as 16-bit integers (a 160 s stereo bed is 28 MB, not 56): `audio * scale`
    is the signal, full scale at 1.
    """

    name: str
    path: Path
    audio: np.ndarray
    rate: int
    lufs: float
    seamless: bool = False  # made to loop as it is (the built-in beds are)
    scale: float = 1.0

    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Return frames [start, stop) as float32, full scale at 1."""
        piece = self.audio[start:stop]
        return piece.astype(np.float32) * np.float32(self.scale) if self.scale != 1 else piece

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate

    @functools.cached_property
    def ring(self) -> float:
        """Return how long the sound stays within 40 dB of its peak: how long it is heard."""
        level = np.abs(self.audio).max(axis=1)
        audible = np.flatnonzero(level > level.max() * RING_FLOOR)
        return (audible[-1] + 1) / self.rate if len(audible) else 0.0


@functools.lru_cache(maxsize=4)
def load(ref: str, kind: str, rate: int, channels: int = 2) -> Sound:
    """Return a bed or bell decoded at `rate` in `channels`, checked to be usable.

    Decoded sounds are kept in the cache folder, keyed by the file's path, size and time,
    so a warm render reads them back instead of decoding and measuring them again.
    """
    path = find(ref, kind)
    stored = _stored_path(path, kind, rate, channels)
    sound = _read_stored(stored, path, rate)
    if sound is None:
        sound = _decode(path, kind, rate, channels)
        _store(stored, sound)
    return sound


#: Bump when what is stored for a decoded sound changes.
STORED_FORMAT = 1


def _stored_path(path: Path, kind: str, rate: int, channels: int) -> Path | None:
    from .voices.cache import default_cache_dir

    try:
        st = path.stat()
    except OSError:
        return None
    ident = [STORED_FORMAT, str(path.resolve()), st.st_size, st.st_mtime_ns, kind, rate,
             channels, MAX_BED_SECONDS]  # fmt: skip
    key = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:24]
    return default_cache_dir() / "sounds" / f"{key}.npz"


def _read_stored(stored: Path | None, path: Path, rate: int) -> Sound | None:
    if stored is None or not stored.is_file():
        return None
    try:
        with np.load(stored) as z:
            audio, lufs, flags = z["audio"], float(z["lufs"]), z["flags"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    scale = 1 / 32768 if audio.dtype == np.int16 else 1.0
    return Sound(path.stem, path, audio, rate, lufs, bool(flags[0]), scale)


def _store(stored: Path | None, sound: Sound) -> None:
    if stored is None:
        return
    try:
        stored.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=stored.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, audio=sound.audio, lufs=sound.lufs, flags=np.array([sound.seamless]))
        os.replace(tmp, stored)
    except OSError as e:  # a cache that cannot be written only costs time
        log.debug("cannot keep decoded %s: %s", sound.path, e)
        with contextlib.suppress(OSError, UnboundLocalError):
            Path(tmp).unlink(missing_ok=True)


def _decode(path: Path, kind: str, rate: int, channels: int) -> Sound:
    # A bell is decoded no further than MAX_BELL (and faded there); a bed no further than
    # MAX_BED_SECONDS, after which it loops.
    seconds = MAX_BED_SECONDS if kind == "ambience" else MAX_BELL
    bed = kind == "ambience"
    audio = encode.decode(path, rate, channels, seconds, pcm16=bed)
    scale = 1 / 32768 if bed else 1.0
    peak = float(np.max(np.abs(audio))) * scale
    if peak < 1e-4:  # -80 dBFS
        raise AudioError(f"{path}: the {kind} is silent")
    if kind == "ambience" and len(audio) < rate:
        raise AudioError(
            f"{path}: the ambience is {len(audio) / rate:.2f} s long; at least 1 s is needed to loop it"
        )
    if kind == "bell":
        audio = _trim_bell(audio, rate)
        if len(audio) >= int(MAX_BELL * rate) - 1:  # cut at the limit: fade its ring out
            log.warning(
                "%s: the bell is longer than %gs; its ring is faded out there", path, MAX_BELL
            )
            fade = int(BELL_CUT_FADE * rate)
            audio = audio.copy()
            audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    # A bell is as loud as its strike, not its long fading ring.
    lufs = meter.integrated(audio[: int(STRIKE_SECONDS * rate)] if kind == "bell" else audio, rate,
                            scale)  # fmt: skip
    if not np.isfinite(lufs):
        raise AudioError(f"{path}: the {kind} is too quiet to measure")
    log.debug("%s %s: %.1f s, %.1f LUFS", kind, path.name, len(audio) / rate, lufs)
    seamless = kind == "ambience" and path.parent.resolve() == library_dir().resolve()
    return Sound(path.stem, path, audio, rate, lufs, seamless, scale)


def _trim_bell(audio: np.ndarray, rate: int) -> np.ndarray:
    """Drop silence before the strike and after the ring dies away (below -70 dBFS)."""
    level = np.max(np.abs(audio), axis=1)
    loud = np.flatnonzero(level > 10 ** (-70 / 20))
    return audio[loud[0] : loud[-1] + 1]


def make_loop(audio: np.ndarray, rate: int) -> np.ndarray:
    """Return a bed that tiles without a seam: its tail crossfaded (equal power) into its head.

    The loop keeps the bed's sample type (16-bit beds stay 16-bit).
    """
    x = min(int(LOOP_CROSSFADE * rate), len(audio) // 4)
    if x < 2:
        return audio
    t = np.linspace(0.0, np.pi / 2, x, dtype=np.float64)[:, None]
    head = audio[:x] * np.sin(t) + audio[len(audio) - x :] * np.cos(t)
    if np.issubdtype(audio.dtype, np.integer):
        limits = np.iinfo(audio.dtype)
        head = np.clip(np.round(head), limits.min, limits.max)
    return np.concatenate([head.astype(audio.dtype), audio[x : len(audio) - x]])
