from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calmcast.voices import VoiceInfo, register_backend
from calmcast.voices.cache import SpeechCache

# A shell starts background jobs with SIGINT ignored, and Python then never turns Ctrl-C into
# KeyboardInterrupt. The tests that interrupt calmcast need the terminal's behaviour in the
# processes they start, however the test run itself was started: a handler (unlike an
# ignored signal) is reset to the default in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


class FakeVoice:
    """Speaks no words: a tone of exactly 40 ms per character, for timing arithmetic.

    `fake:slow` takes 90 ms a character, slower than the real voices here (espeak-ng's en-gb
    speaks about 64, Piper's joe about 78), for the shortest length a practice can reach.
    Either speaks another language as `fake:slow@de`.
    """

    sample_rate = 22050

    def __init__(self, name: str = "fake:steady") -> None:
        self.name = name
        base, _, language = name.partition("@")
        self.language = language or "en"
        self.per_second = 1000 / 90 if base == "fake:slow" else 25

    def cache_key(self) -> str:
        return self.name.replace(":", "|")

    def synthesize(self, text: str) -> np.ndarray:
        n = int(len(text) * self.sample_rate / self.per_second)
        t = np.arange(n) / self.sample_rate
        # Never near zero, so trimming leaves the length alone.
        return (0.2 + 0.1 * np.cos(2 * np.pi * 220 * t)).astype(np.float32)


class FakeBackend:
    prefix = "fake"

    def available(self) -> bool:
        return True

    def voices(self):
        return [
            VoiceInfo("fake:steady", "en", "a steady tone", neural=False),
            VoiceInfo("fake:slow", "en", "a slow steady tone", neural=False),
        ]

    def open(self, voice_id, rate, pitch):
        base, at, language = voice_id.removeprefix("fake:").partition("@")
        return FakeVoice(f"fake:{'slow' if base == 'slow' else 'steady'}{at}{language}")


register_backend(FakeBackend())


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Keep the tests' speech cache apart from the user's, shared across the session.

    $CALMCAST_TEST_CACHE keeps it between runs (a quicker loop while developing); CI starts
    from an empty one, so the cold path is always tested there.
    """
    kept = os.environ.get("CALMCAST_TEST_CACHE")
    # Each process has its own (`-n 2` workers too): two renders preparing the same line at
    # once can replace the entry the other is reading, which calmcast reports as an error.
    folder = Path(kept) if kept else tmp_path_factory.mktemp("cache")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["CALMCAST_CACHE"] = str(folder)
    return folder


@pytest.fixture
def cache(tmp_path) -> SpeechCache:
    return SpeechCache(tmp_path / "cache")


@contextlib.contextmanager
def tmpfs(where: Path, options: str):
    """Mount a tmpfs at `where` for the block (as root, as CI runs); skip the test if not."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def load_script(name: str):
    """Return a maintainer's tool in scripts/ (scripts/NAME.py) imported as a module.

    scripts/ goes on sys.path, which spawned worker processes inherit, so they find it too.
    """
    import importlib

    folder = str(ROOT / "scripts")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run calmcast as a user would, in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "calmcast", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ffmpeg_builds() -> dict[str, str]:
    """Return the ffmpeg builds on this machine: the system's and the imageio-ffmpeg wheel's."""
    import shutil

    found = {}
    system = shutil.which("ffmpeg")
    if system:
        found["system"] = system
    try:
        import imageio_ffmpeg

        found["wheel"] = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    return found


def ebur128(path, start: float | None = None, seconds: float | None = None, ffmpeg=None):
    """Return (integrated LUFS, true peak dBTP) of a file, or a stretch of it, by ffmpeg's meter.

    Only options that every ffmpeg from 4.4 on accepts: the summary is parsed from stderr.
    """
    import re

    from calmcast.encode import ffmpeg_exe

    cmd = [ffmpeg or ffmpeg_exe(), "-hide_banner", "-nostats"]
    if start is not None:
        cmd += ["-ss", f"{start:.3f}"]
    if seconds is not None:
        cmd += ["-t", f"{seconds:.3f}"]
    cmd += ["-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"]
    err = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stderr
    summary = err[err.rindex("Summary:") :]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)
    return lufs, float(peak)


def decode(path, rate: int = 44100, channels: int = 2) -> np.ndarray:
    """Return a file's audio as float32 frames x channels, decoded by ffmpeg."""
    from calmcast.encode import ffmpeg_exe

    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "f32le", "-ac", str(channels),
         "-ar", str(rate), "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels)


def user_bed(path: Path, seconds: float = 37.0, rate: int = 48000) -> Path:
    """Write a short stereo WAV bed that is not made to loop: soft filtered noise, swelling a little."""
    from calmcast.encode import write_audio

    rng = np.random.default_rng(37)
    n = int(seconds * rate)
    noise = rng.normal(0, 0.1, (n, 2))
    kernel = np.ones(24) / 24
    soft = np.stack([np.convolve(noise[:, c], kernel, mode="same") for c in range(2)], axis=1)
    swell = 0.9 + 0.1 * np.sin(np.linspace(0, 3 * np.pi, n))[:, None]
    write_audio(path, (soft * swell).astype(np.float32), rate, ["-c:a", "pcm_s16le"])
    return path


def ffprobe_duration(path) -> float:
    """Return a file's duration in seconds as ffprobe (beside the system's ffmpeg) reads it."""
    import shutil
    import subprocess

    probe = shutil.which("ffprobe")
    if probe is None:  # the wheel ships no ffprobe: decode with ffmpeg instead
        return len(decode(path)) / 44100
    out = subprocess.run([probe, "-v", "error", "-show_entries", "format=duration", "-of",
                          "csv=p=0", str(path)], capture_output=True, text=True, check=True)  # fmt: skip
    return float(out.stdout.strip())


def load_script_file(name: str):
    """Return the Python program scripts/NAME (no suffix) imported as a module."""
    import importlib.machinery
    import importlib.util

    path = ROOT / "scripts" / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module
