"""Synthesised speech cached on disk by content, so a re-render speaks nothing twice."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the stored layout changes


def default_cache_dir() -> Path:
    """Return $CALMCAST_CACHE, or the user's cache folder for calmcast."""
    env = os.environ.get("CALMCAST_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("calmcast"))


class SpeechCache:
    """A folder of mono 16-bit WAV files named by the hash of (voice settings, text)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def key(self, voice_key: str, text: str) -> str:
        blob = json.dumps([FORMAT, voice_key, text], ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / "speech" / key[:2] / f"{key}.wav"

    def get(self, key: str) -> tuple[np.ndarray, int] | None:
        """Return (samples, rate) for `key`, or None if absent or unreadable."""
        path = self.path(key)
        try:
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
                data = w.readframes(w.getnframes())
        except (FileNotFoundError, EOFError, wave.Error) as e:
            if not isinstance(e, FileNotFoundError):
                log.warning("%s: damaged cache entry, speaking it again", path)
            return None
        self.hits += 1
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, rate

    def put(self, key: str, samples: np.ndarray, rate: int) -> None:
        """Store samples atomically: readers see the whole file or none."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2")
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f, wave.open(f, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(pcm.tobytes())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.misses += 1
