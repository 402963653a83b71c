"""Everything that runs ffmpeg: finding it, decoding sound files, streaming PCM into MP3."""

from __future__ import annotations

import functools
import logging
import math
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


class _Pipe:
    """An ffmpeg process fed float32 frames on stdin, metering loudness as they pass.

    ffmpeg's own EBU R128 meter (BS.1770) runs in the ffmpeg process, on the other core,
    while Python mixes the next block.
    """

    what = "ffmpeg"

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self.frames = 0
        self.loudness = math.nan
        self._proc: subprocess.Popen | None = None
        self._err = None

    def _output_args(self) -> list[str]:
        return ["-f", "null", "-"]

    def _start(self) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-y",
            "-f", "f32le", "-ar", str(self.rate), "-ac", str(self.channels), "-i", "-",
            "-af", "ebur128=framelog=quiet", *self._output_args(),
        ]  # fmt: skip
        log.debug("%s: %s", self.what, " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._err)

    def __enter__(self):
        self._start()
        return self

    def write(self, block: np.ndarray) -> None:
        """Send one block of float frames x channels."""
        try:
            self._proc.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        except BrokenPipeError:
            self._proc.wait()
            raise OutputError(f"{self.what}: ffmpeg stopped: {self._stderr()[-1]}") from None
        self.frames += len(block)

    def _stderr(self) -> list[str]:
        self._err.seek(0)
        text = self._err.read().decode("utf-8", "replace")
        return [ln.strip() for ln in text.splitlines() if ln.strip()] or ["no message"]

    def _finish(self, failed: bool) -> None:
        proc = self._proc
        try:
            if failed:
                proc.kill()
                proc.wait()
                return
            proc.stdin.close()
            if proc.wait() != 0:
                raise OutputError(f"{self.what}: ffmpeg failed: {self._stderr()[-1]}")
            self.loudness = _integrated(self._stderr())
        finally:
            self._err.close()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._finish(exc_type is not None)


def _integrated(lines: list[str]) -> float:
    """Return the integrated loudness from ebur128's summary (-inf for silence)."""
    for line in reversed(lines):
        if line.startswith("I:") and line.endswith("LUFS"):
            value = float(line.split()[1])
            return -math.inf if value <= -70.0 else value
    return math.nan


class Meter(_Pipe):
    """Measure the integrated loudness of streamed audio; nothing is written."""

    what = "loudness meter"


class Encoder(_Pipe):
    """Stream float32 blocks into an MP3 that appears at `path` only when all went well.

    Use as a context manager: on an exception (or Ctrl-C) the half-written file is deleted and
    whatever was at `path` before is left as it was. `loudness` is measured on the way in.
    """

    def __init__(
        self, path: str | Path, rate: int = 44100, channels: int = 2, bitrate: str = "128k"
    ) -> None:
        super().__init__(rate, channels)
        self.path = Path(path)
        self.what = str(self.path)
        self.bitrate = bitrate
        self._tmp: Path | None = None

    def _output_args(self) -> list[str]:
        return [*mp3_args(self.bitrate), "-f", "mp3", str(self._tmp)]

    def __enter__(self) -> Encoder:
        folder = self.path.parent if str(self.path.parent) else Path()
        if not folder.is_dir():
            raise OutputError(f"{self.path}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"{self.path}: the folder {folder} is not writable")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".part.mp3", dir=folder)
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._start()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        ok = False
        try:
            self._finish(exc_type is not None)
            ok = exc_type is None
        finally:
            if not ok:
                self._tmp.unlink(missing_ok=True)

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
