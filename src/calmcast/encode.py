"""Everything that runs ffmpeg: finding it, decoding sound files, streaming PCM into MP3."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import AudioError, CalmcastError, OutputError

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


def _run(cmd: list[str], what: str, error: type[CalmcastError] = CalmcastError, **kw) -> bytes:
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode != 0:
        tail = _last_line(proc.stderr)
        raise error(f"{what}: ffmpeg failed: {tail}")
    return proc.stdout


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def decode(
    path: str | Path, rate: int, channels: int = 2, seconds: float | None = None
) -> np.ndarray:
    """Return the audio of `path` as float32 frames x channels at `rate`, resampled with soxr."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such sound file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path)]
    if seconds is not None:
        cmd += ["-t", f"{seconds:.3f}"]
    cmd += [
        "-vn",
        "-ac",
        str(channels),
        "-ar",
        str(rate),
        "-af",
        "aresample=resampler=soxr:precision=28",
        "-f",
        "f32le",
        "-",
    ]
    raw = _run(cmd, str(path), AudioError)
    audio = np.frombuffer(raw, dtype="<f4").reshape(-1, channels)
    if len(audio) == 0:
        raise AudioError(f"{path}: no audio could be decoded")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: the decoded audio holds invalid samples")
    return audio


def write_audio(path: str | Path, audio: np.ndarray, rate: int, codec_args: list[str]) -> None:
    """Encode float frames x channels to `path` deterministically (no timestamps, no ids)."""
    path = Path(path)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    cmd = [
        ffmpeg_exe(),
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


class Encoder:
    """Stream float32 blocks into ffmpeg; the file appears at `path` only when all went well.

    Use as a context manager: on an exception (or Ctrl-C) the half-written file is deleted and
    whatever was at `path` before is left as it was.
    """

    def __init__(
        self,
        path: str | Path,
        rate: int = 44100,
        channels: int = 2,
        bitrate: str = "128k",
        input_channels: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.rate = rate
        self.channels = channels
        self.input_channels = input_channels or channels
        self.bitrate = bitrate
        self.frames = 0
        self._proc: subprocess.Popen | None = None
        self._tmp: Path | None = None
        self._err = None

    def __enter__(self) -> Encoder:
        folder = self.path.parent if str(self.path.parent) else Path()
        if not folder.is_dir():
            raise OutputError(f"{self.path}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"{self.path}: the folder {folder} is not writable")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".part.mp3", dir=folder)
        os.close(fd)
        self._tmp = Path(tmp)
        self._err = tempfile.TemporaryFile()
        cmd = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "f32le",
            "-ar",
            str(self.rate),
            "-ac",
            str(self.input_channels),
            "-i",
            "-",
            "-ac",
            str(self.channels),
            *mp3_args(self.bitrate),
            "-f",
            "mp3",
            str(self._tmp),
        ]
        log.debug("encoding: %s", " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._err)
        return self

    def write(self, block: np.ndarray) -> None:
        """Send one block of float frames x channels to the encoder."""
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        except BrokenPipeError:
            self._proc.wait()
            raise OutputError(f"{self.path}: ffmpeg stopped: {self._stderr()}") from None
        self.frames += len(block)

    def _stderr(self) -> str:
        self._err.seek(0)
        return _last_line(self._err.read())

    def __exit__(self, exc_type, exc, tb) -> None:
        proc, tmp = self._proc, self._tmp
        try:
            if exc_type is not None:
                proc.kill()
                proc.wait()
                return
            proc.stdin.close()
            if proc.wait() != 0:
                raise OutputError(f"{self.path}: encoding failed: {self._stderr()}")
        finally:
            self._err.close()
            if exc_type is not None or proc.returncode != 0:
                tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Delete the finished but unwanted file."""
        self._tmp.unlink(missing_ok=True)

    def commit(self, before_replace=None) -> None:
        """Move the finished file into place (after `before_replace(tmp_path)`, e.g. tagging)."""
        try:
            if before_replace is not None:
                before_replace(self._tmp)
            os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp made it private
            os.replace(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
