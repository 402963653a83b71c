from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calmcast.voices import VoiceInfo, register_backend
from calmcast.voices.cache import SpeechCache

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


class FakeVoice:
    """Speaks no words: a tone of exactly 40 ms per character, for timing arithmetic."""

    name = "fake:steady"
    language = "en"
    sample_rate = 22050

    def cache_key(self) -> str:
        return "fake|steady"

    def synthesize(self, text: str) -> np.ndarray:
        n = len(text) * self.sample_rate // 25
        t = np.arange(n) / self.sample_rate
        # Never near zero, so trimming leaves the length alone.
        return (0.2 + 0.1 * np.cos(2 * np.pi * 220 * t)).astype(np.float32)


class FakeBackend:
    prefix = "fake"

    def available(self) -> bool:
        return True

    def voices(self):
        return [VoiceInfo("fake:steady", "en", "a steady tone", neural=False)]

    def open(self, voice_id, rate, pitch):
        return FakeVoice()


register_backend(FakeBackend())


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Keep the tests' speech cache apart from the user's, shared across the session."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["CALMCAST_CACHE"] = str(folder)
    return folder


@pytest.fixture
def cache(tmp_path) -> SpeechCache:
    return SpeechCache(tmp_path / "cache")


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
