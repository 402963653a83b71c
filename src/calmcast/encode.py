"""Everything that runs ffmpeg: finding it, decoding sound files, streaming PCM into MP3.

Only options that every ffmpeg from 4.4 to 9 accepts are used (Debian 12 ships 5.1, the
imageio-ffmpeg wheel 9.0); loudness is measured in Python, not by ffmpeg's meters.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .errors import AudioError, CalmcastError, OutputError
from .output import Destination, describe, held_signals

log = logging.getLogger(__name__)


@functools.cache
def ffmpeg_exe() -> str:
    """Return the ffmpeg to run: $CALMCAST_FFMPEG, the system's, or the imageio-ffmpeg wheel's."""
    exe = os.environ.get("CALMCAST_FFMPEG") or shutil.which("ffmpeg")
    if not exe:
        try:
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError) as e:
            raise CalmcastError(
                "ffmpeg not found: install ffmpeg or the imageio-ffmpeg package"
            ) from e
    log.debug("ffmpeg: %s", exe)
    return exe


@functools.cache
def ffmpeg_version() -> str:
    """Return the version ffmpeg reports, such as 5.1.9-0+deb12u1."""
    try:
        out = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-version"],
            capture_output=True, stdin=subprocess.DEVNULL, timeout=30,
        ).stdout.decode("utf-8", "replace")  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    words = out.split()
    return words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else "unknown"


def _run(cmd: list[str], what: str, error: type[CalmcastError] = CalmcastError, **kw) -> bytes:
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode != 0:
        log.debug("%s: ffmpeg said: %s", what, proc.stderr.decode("utf-8", "replace"))
        raise error(f"{what}: ffmpeg failed: {_last_line(proc.stderr)}")
    return proc.stdout


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def decode(
    path: str | Path,
    rate: int,
    channels: int = 2,
    seconds: float | None = None,
    pcm16: bool = False,
    exe: str | None = None,
) -> np.ndarray:
    """Return the audio of `path` as frames x channels at `rate`, resampled with soxr.

    Samples are float32, or 16-bit integers with `pcm16` (half the memory, for beds).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such sound file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty")
    cmd = [exe or ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)]
    if seconds is not None:
        cmd += ["-t", f"{seconds:.3f}"]
    cmd += ["-vn", "-ac", str(channels), "-ar", str(rate)]
    out = ["-f", "s16le" if pcm16 else "f32le", "-"]
    try:
        raw = _run(
            [*cmd, "-af", "aresample=resampler=soxr:precision=28", *out], str(path), AudioError
        )
    except AudioError as e:
        if "resampling engine" not in getattr(e, "stderr", ""):
            raise
        # An ffmpeg built without libsoxr (Debian's and the wheel's have it): its own resampler.
        raw = _run([*cmd, *out], str(path), AudioError)
    audio = np.frombuffer(raw, dtype="<i2" if pcm16 else "<f4").reshape(-1, channels)
    if len(audio) == 0:
        raise AudioError(f"{path}: no audio could be decoded")
    if not pcm16 and not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: the decoded audio holds invalid samples")
    return audio


def write_audio(
    path: str | Path, audio: np.ndarray, rate: int, codec_args: list[str], exe: str | None = None
) -> None:
    """Encode float frames x channels to `path` deterministically (no timestamps, no ids)."""
    path = Path(path)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    cmd = [
        exe or ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "f32le",
        "-ar",
        str(rate),
        "-ac",
        str(channels),
        "-i",
        "-",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-map_metadata",
        "-1",
        *codec_args,
        str(path),
    ]
    _run(cmd, str(path), OutputError, input=np.ascontiguousarray(audio, dtype="<f4").tobytes())


def mp3_args(bitrate: str = "128k") -> list[str]:
    """Return ffmpeg arguments for a constant-bitrate MP3 with a gapless (LAME) header."""
    return ["-c:a", "libmp3lame", "-b:a", bitrate, "-write_xing", "1", "-id3v2_version", "0"]


#: Bump when the calibration method changes.
CALIBRATION = 4


@dataclass(frozen=True)
class Calibration:
    """How this encoder changes material like the session's, in dB."""

    loss: float = 0.0  # how much quieter the MP3 reads than its PCM
    overshoot: float = 0.0  # how far its true peaks rise above the PCM's, the loss made up


def level_loss(
    reference: np.ndarray, bitrate: str, rate: int, cache_dir: Path | None = None
) -> Calibration:
    """Return what this ffmpeg's MP3 does to `reference`: its level loss and peak overshoot.

    LAME's quantiser rounds towards zero a little: at 128 kbit/s and below speech comes back
    about 0.45 dB quieter, 0.26 dB at 192k, nothing at 320k; how much depends a little on the
    material and on the build (a fixed noise read 0.44 dB with Debian's ffmpeg and 0.18 with
    the wheel's, where the same speech read 0.50 with both). Its quantisation noise also
    lifts true peaks, the more the lower the bitrate (0.2 dB at 128k, 0.9 dB at 64k stereo,
    on speech). So the session's own material (frames x channels, a few seconds) is encoded
    and decoded once, and the result kept in `cache_dir` under a hash of it and the encoder.
    """
    from . import loudness

    channels = reference.shape[1]
    reference = np.ascontiguousarray(reference, dtype="<f4")
    ident = [CALIBRATION, ffmpeg_exe(), ffmpeg_version(), bitrate, rate, channels,
             hashlib.sha256(reference.tobytes()).hexdigest()]  # fmt: skip
    key = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:20]
    if key in _calibrations:
        return _calibrations[key]
    stored = cache_dir / "codec" / f"{key}.json" if cache_dir else None
    try:
        got = json.loads(stored.read_text()) if stored else None
        found = Calibration(float(got["loss"]), float(got["overshoot"])) if got else None
    except (OSError, ValueError, KeyError, TypeError):
        found = None
    if found is None or not all(map(math.isfinite, (found.loss, found.overshoot))):
        head = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
        mp3 = _run([*head, "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "-",
                    *mp3_args(bitrate), "-f", "mp3", "-"],
                   "calibrating the encoder", input=reference.tobytes())  # fmt: skip
        back = _run([*head, "-f", "mp3", "-i", "-", "-f", "f32le", "-ac", str(channels), "-"],
                    "calibrating the encoder", input=mp3)  # fmt: skip
        decoded = np.frombuffer(back, dtype="<f4").reshape(-1, channels)
        loss = loudness.integrated(reference, rate) - loudness.integrated(decoded, rate)
        loss = loss if math.isfinite(loss) else 0.0
        before, after = loudness.true_peak(reference), loudness.true_peak(decoded)
        rise = 20 * math.log10(after / before) + loss if before > 0 and after > 0 else 0.0
        found = Calibration(loss, max(rise, 0.0))
        if stored:
            with contextlib.suppress(OSError):
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_text(json.dumps({"loss": found.loss, "overshoot": found.overshoot,
                                              "encoder": ident[:-1]}))  # fmt: skip
        log.debug("encoder %s at %s: %s", ffmpeg_exe(), bitrate, found)
    _calibrations[key] = found
    return found


_calibrations: dict[str, Calibration] = {}


class Encoder:
    """Stream float32 blocks into an MP3 that appears at `path` only when all went well.

    ffmpeg encodes in its own process, fed by a writer thread, so it works on one core while
    Python mixes the next block on the other. Use as a context manager and call `commit()`
    inside it: leaving the block any other way (an exception, Ctrl-C, SIGTERM at any point,
    tagging included) deletes the half-written file and leaves whatever was at `path` as it
    was.
    """

    #: Blocks waiting for ffmpeg: enough to keep it busy, few enough to keep memory flat.
    QUEUE = 2

    def __init__(
        self, dest: Destination, rate: int = 44100, channels: int = 2, bitrate: str = "128k"
    ) -> None:
        self.dest = dest
        self.path = dest.path
        self.rate = rate
        self.channels = channels
        self.bitrate = bitrate
        self.frames = 0
        self._proc: subprocess.Popen | None = None
        self._err: IO[bytes] | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUE)
        self._writer: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._finished = False
        self._committed = False
        self._stopping = False

    def __enter__(self) -> Encoder:
        try:
            # An interrupt waits until the part file and ffmpeg both exist and are known, so
            # that closing removes the one and stops the other (ffmpeg half started would
            # write the file again after it was removed).
            with held_signals():
                self.dest.create()
                self._start()
        except BaseException:
            self._close()
            raise
        return self

    def _start(self) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y",
            "-f", "f32le", "-ar", str(self.rate), "-ac", str(self.channels), "-i", "-",
            *mp3_args(self.bitrate), "-f", "mp3", str(self.dest.tmp),
        ]  # fmt: skip
        log.debug("%s: %s", self.path, " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._err)
        self._writer = threading.Thread(target=self._feed, name="calmcast-encoder", daemon=True)
        self._writer.start()

    def _feed(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        try:
            while (data := self._queue.get()) is not None:
                stdin.write(data)
        except (BrokenPipeError, OSError) as e:
            self._failed = e
            # Take what the producer still sends until it notices, or until it is stopping
            # (it may not manage to send the end: the queue can be full when it is stopped).
            while not self._stopping:
                with contextlib.suppress(queue.Empty):
                    if self._queue.get(timeout=0.1) is None:
                        break

    def write(self, block: np.ndarray) -> None:
        """Queue one block of float frames x channels for the encoder."""
        if self._failed is not None:
            assert self._proc is not None
            self._proc.wait()
            raise OutputError(f"{self.path}: ffmpeg stopped: {self._complaint()}")
        self._queue.put(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.frames += len(block)

    def _stderr(self) -> list[str]:
        assert self._err is not None
        self._err.seek(0)
        text = self._err.read().decode("utf-8", "replace")
        return [ln.strip() for ln in text.splitlines() if ln.strip()] or ["no message"]

    def _complaint(self) -> str:
        """Return what ffmpeg said, in one line: the disk being full first, else its last words."""
        lines = self._stderr()
        if any("No space left" in ln for ln in lines) or _disk_full(self._failed):
            return "the disk is full"
        return " / ".join(dict.fromkeys(lines[-3:]))

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._committed:
            self._close()

    def finish(self) -> None:
        """Wait for ffmpeg to write the last frame; raise OutputError if it failed."""
        if self._finished:
            return
        self._finished = True
        proc, writer, err = self._proc, self._writer, self._err
        assert proc is not None and proc.stdin is not None and writer and err, "not started"
        try:
            self._queue.put(None)
            writer.join()
            with contextlib.suppress(OSError):
                proc.stdin.close()
            code = proc.wait()
            if self._failed is not None or code != 0:
                raise OutputError(f"{self.path}: ffmpeg failed: {self._complaint()}")
        finally:
            err.close()

    def _close(self) -> None:
        """Stop ffmpeg if it still runs and delete the unfinished file, whatever happens."""
        try:
            proc = self._proc
            if proc is not None and not self._finished:
                self._finished = True
                self._stopping = True
                proc.kill()
                with contextlib.suppress(queue.Full):
                    self._queue.put_nowait(None)
                if self._writer is not None:
                    self._writer.join(timeout=10)
                with contextlib.suppress(OSError):
                    if proc.stdin is not None:
                        proc.stdin.close()
                proc.wait()
                if self._err is not None:
                    self._err.close()
        finally:
            self.dest.discard()

    def commit(self, before_replace=None) -> None:
        """Finish, then move the file into place (after `before_replace(tmp_path)`, e.g. tagging)."""
        self.finish()
        if before_replace is not None:
            try:
                before_replace(self.dest.tmp)
            except OSError as e:
                raise OutputError(f"{self.path}: {describe(e)}") from e
        self.dest.commit()
        self._committed = True


def _disk_full(e: BaseException | None) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
