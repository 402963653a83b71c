"""Speech cached on disk by content, so a re-render speaks nothing twice.

Two layers, both keyed by a hash of what made them:
- `speech/`: what a voice said, as synthesised (mono 16-bit WAV at the voice's rate);
- `prepared/`: that utterance after the voice chain, as the mix uses it, with its energy
  profile, the chain's statistics and CRC-32 checksums of its audio and profile (`.npz`).
  A render with a warm cache reads only these. Every entry is fsynced before it is named,
  checked when it is read, and made again (logged at -v) when it fails the check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
import wave
import zipfile
import zlib
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
    """A folder of synthesised and prepared utterances named by the hash of their inputs."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()
        self.hits = 0  # utterances found spoken already
        self.misses = 0  # utterances the voice had to speak
        self._checked = False

    def check(self) -> None:
        """Make sure the folder can be used: a file there is an error; a folder calmcast
        cannot write is passed over for a temporary one, with a warning."""
        if self._checked:
            return
        self._checked = True
        from ..errors import ConfigError

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise ConfigError(
                f"{self.folder}: the speech cache must be a folder, and a file stands there "
                "(set CALMCAST_CACHE to another place)"
            ) from e
        except OSError as e:
            log.warning(
                "%s: cannot make the speech cache (%s); using a temporary one",
                self.folder,
                e.strerror,
            )
            self.folder = Path(tempfile.mkdtemp(prefix="calmcast-cache-"))
            return
        if not os.access(self.folder, os.W_OK | os.X_OK):
            log.warning("%s: the speech cache is not writable; using a temporary one", self.folder)
            self.folder = Path(tempfile.mkdtemp(prefix="calmcast-cache-"))

    def key(self, voice_key: str, text: str) -> str:
        """Return the key of `text` spoken by the voice whose settings are `voice_key`."""
        blob = json.dumps([FORMAT, voice_key, text], ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()

    def prepared_key(self, key: str, chain_key: str) -> str:
        """Return the key of utterance `key` after the voice chain named `chain_key`."""
        return hashlib.sha256(f"{key}|{chain_key}".encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / "speech" / key[:2] / f"{key}.wav"

    def prepared_path(self, key: str) -> Path:
        return self.folder / "prepared" / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[np.ndarray, int] | None:
        """Return (samples, rate) for `key`, or None if absent or unreadable."""
        path = self.path(key)
        try:
            with wave.open(str(path), "rb") as w:
                rate, frames, width = w.getframerate(), w.getnframes(), w.getsampwidth()
                data = w.readframes(frames)
            if width != 2 or w.getnchannels() != 1 or len(data) != 2 * frames:
                raise wave.Error("truncated or not as written")  # cut short by something else
        except (FileNotFoundError, EOFError, wave.Error) as e:
            if not isinstance(e, FileNotFoundError):
                log.warning("%s: damaged cache entry, speaking it again", path)
            return None
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, rate

    def put(self, key: str, samples: np.ndarray, rate: int) -> np.ndarray:
        """Store samples atomically (readers see the whole file or none); return them as stored.

        They are kept as 16-bit, so what `get` will read back is returned, and a line spoken
        now is prepared from the very samples a later hit reads.
        """
        pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2")

        def write(f) -> None:
            with wave.open(f, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(pcm.tobytes())

        _atomic(self.path(key), write)
        return pcm.astype(np.float32) / 32768.0

    def get_prepared(self, key: str) -> Entry | None:
        """Return the prepared utterance stored under `key`, or None if absent or damaged.

        An entry this process has checked and whose file is unchanged since (the same inode,
        size and time) is not read again: its audio is read, and checked, when it is mixed.
        """
        path = self.prepared_path(key)
        try:
            st = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        stamp = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        known = _CHECKED.get(stamp)
        if known is not None:
            return known
        try:
            with np.load(path) as z:
                header = z["header"]
                if len(header) < 4:  # from before entries carried checksums
                    log.info("%s: an older cache entry, preparing it again", path)
                    return None
                rate, frames, crc = int(header[0]), int(header[1]), int(header[2])
                pcm = z["audio"]
                if rate <= 0 or len(pcm) != frames or _crc(pcm) != crc:
                    raise ValueError("length or checksum")
                if _crc(z["bins"]) != int(header[3]):
                    raise ValueError("checksum of its energy profile")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, IndexError) as e:
            log.warning("%s: damaged cache entry (%s), preparing it again", path, e)
            return None
        entry = Entry(path, rate, frames, crc)
        if len(_CHECKED) >= MAX_CHECKED:
            _CHECKED.clear()
        _CHECKED[stamp] = entry
        return entry

    def put_prepared(
        self, key: str, audio: np.ndarray, rate: int, bins: np.ndarray, stats: dict
    ) -> Entry:
        """Store a prepared utterance atomically and return its entry."""
        path = self.prepared_path(key)
        pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2")
        bins = np.asarray(bins, np.float64)
        crc = _crc(pcm)
        arrays = {
            "header": np.array([rate, len(pcm), crc, _crc(bins)], np.int64),
            "audio": pcm,
            "bins": bins,
            "stats": np.array(json.dumps(stats)),
        }
        _atomic(path, lambda f: np.savez(f, **arrays))
        return Entry(path, rate, len(pcm), crc)


#: Prepared entries checked by this process, by file identity: a plan that meets the same
#: lines again (every length of a practice, a service's repeated requests) does not read
#: them again. Bounded; an Entry is a few numbers.
_CHECKED: dict[tuple, Entry] = {}
MAX_CHECKED = 20_000


class Entry:
    """A prepared utterance on disk: its rate and length are known, its audio read on demand."""

    __slots__ = ("crc", "frames", "path", "rate")

    def __init__(self, path: Path, rate: int, frames: int, crc: int | None = None) -> None:
        self.path = path
        self.rate = rate
        self.frames = frames
        self.crc = crc

    def audio(self) -> np.ndarray:
        """Return the samples as mono float32 at `rate`."""
        from ..errors import VoiceError

        try:
            with np.load(self.path) as z:
                pcm = z["audio"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise VoiceError(f"{self.path}: the speech cache entry was damaged: {e}") from e
        if len(pcm) != self.frames or (self.crc is not None and _crc(pcm) != self.crc):
            raise VoiceError(f"{self.path}: the speech cache entry was changed while in use")
        return pcm.astype(np.float32) / np.float32(32768.0)

    def bins(self) -> np.ndarray:
        """Return the K-weighted energy profile (sums of squares per 10 ms, at `rate`)."""
        with np.load(self.path) as z:
            return z["bins"]

    def stats(self) -> dict:
        """Return what the voice chain did to this utterance."""
        with np.load(self.path) as z:
            return json.loads(str(z["stats"]))


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).data)


def _atomic(path: Path, write) -> None:
    """Write a file through `write(file)` so that readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # whole on disk before its name says it is there
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
