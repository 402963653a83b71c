"""Speech backends behind one small protocol, keyed by the names users type.

`espeak:en-gb` picks espeak-ng (through pyttsx3) with its en-gb voice, `piper:joe` a Piper
neural voice, and a path ending in `.onnx` a Piper model file. A bare name is tried against
every installed backend.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import VoiceError

log = logging.getLogger(__name__)

#: The meditation pace, in words per minute: slower than a voice's everyday default.
MEDITATION_WPM = 140


@dataclass(frozen=True)
class VoiceInfo:
    """An installed voice, as `calmcast voices` lists it."""

    name: str  # what users type: "espeak:en-gb"
    language: str
    description: str
    neural: bool


@runtime_checkable
class Voice(Protocol):
    """A voice ready to speak, with its settings fixed."""

    name: str
    language: str
    sample_rate: int

    def cache_key(self) -> str:
        """Return a string naming the backend, the voice, its settings and engine version."""

    def synthesize(self, text: str) -> np.ndarray:
        """Return one utterance of `text` as mono float32 samples at `sample_rate`."""


class Backend(Protocol):
    """A speech engine: lists its voices and opens one by id."""

    prefix: str

    def available(self) -> bool: ...

    def voices(self) -> list[VoiceInfo]: ...

    def open(self, voice_id: str, wpm: float | None, pitch: float | None) -> Voice: ...


#: Backends by prefix, imported on first use so that `--help` stays instant.
BACKEND_MODULES = {"espeak": "calmcast.voices.espeak", "piper": "calmcast.voices.piper",
                   "recorded": "calmcast.voices.recorded"}
_backends: dict[str, Backend] = {}


def backend(prefix: str) -> Backend:
    """Return the backend registered under `prefix`."""
    if prefix not in _backends:
        if prefix not in BACKEND_MODULES:
            known = ", ".join(sorted(BACKEND_MODULES))
            raise VoiceError(f"unknown voice backend {prefix!r} (known: {known})")
        module = importlib.import_module(BACKEND_MODULES[prefix])
        _backends[prefix] = module.BACKEND
    return _backends[prefix]


def register_backend(backend_: Backend) -> None:
    """Add a backend under its prefix (for backends that live outside calmcast)."""
    BACKEND_MODULES.setdefault(backend_.prefix, type(backend_).__module__)
    _backends[backend_.prefix] = backend_


def installed_backends() -> list[Backend]:
    """Return the backends that can speak on this machine."""
    found = []
    for prefix in BACKEND_MODULES:
        try:
            b = backend(prefix)
        except (ImportError, VoiceError) as e:
            log.debug("backend %s unavailable: %s", prefix, e)
            continue
        if b.available():
            found.append(b)
    return found


def list_voices() -> list[VoiceInfo]:
    """Return every installed voice of every backend."""
    return [v for b in installed_backends() for v in b.voices()]


def default_voice_name(language: str | None = None) -> str:
    """Return the voice used when none is asked for: a natural one of `language` (English
    by default) when one is installed, else espeak-ng's voice for it."""
    from ..languages import same

    try:
        piper = backend("piper")
        if piper.available():
            for v in piper.voices():
                if same(v.language, language):
                    return v.name
    except (ImportError, VoiceError):
        pass
    return espeak_voice_name(language)


def espeak_voice_name(language: str | None = None) -> str:
    """Return espeak-ng's voice for `language` (English: en-gb)."""
    from ..languages import normal, primary, same

    if primary(language) == "en":
        return "espeak:en-gb"
    try:
        found = [v for v in backend("espeak").voices() if same(v.language, language)]
    except (ImportError, VoiceError):
        found = []
    if not found:
        raise VoiceError(f"no installed voice speaks {normal(language)} (`calmcast voices` lists them)")
    exact = [v for v in found if normal(v.language) == normal(language)]
    return min(exact or found, key=lambda v: len(v.name)).name


def check_language(voice: Voice, language: str | None) -> None:
    """Raise VoiceError if `voice` cannot speak a practice written in `language`."""
    from ..languages import normal, primary, same

    if language and not same(voice.language, language):
        raise VoiceError(
            f"voice {voice.name} speaks {voice.language}, but the practice is in "
            f"{normal(language)}: choose a voice of {primary(language)} (`calmcast voices` lists them)"
        )


def open_voice(name: str | None, wpm: float | None = None, pitch: float | None = None) -> Voice:
    """Return the voice users call `name`, speaking `wpm` words a minute at `pitch` (espeak)."""
    name = name or default_voice_name()
    if name.lower().endswith(".onnx"):
        return backend("piper").open(name, wpm, pitch)
    if (Path(name).expanduser() / "voice.json").is_file():  # a recorded voice's folder
        return backend("recorded").open(name, wpm, pitch)
    if "/" in name and Path(name).expanduser().is_dir():
        raise VoiceError(f"{name}: no recorded voice here (no voice.json)")
    prefix, sep, voice_id = name.partition(":")
    if sep and prefix in BACKEND_MODULES:
        b = backend(prefix)
        if not b.available():
            raise VoiceError(f"voice {name!r}: the {prefix} backend is not installed")
        return b.open(voice_id, wpm, pitch)
    # A bare name: the first backend that knows it.
    for b in installed_backends():
        if any(v.name == f"{b.prefix}:{name}" for v in b.voices()):
            return b.open(name, wpm, pitch)
    return backend("espeak").open(name, wpm, pitch)
