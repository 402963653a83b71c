"""Piper neural voices, run offline: models loaded once and shared, speech at a set pace.

The voices installed are found by `piper_voices.py`. piper-tts is optional: nothing imports
it until a Piper voice speaks.

Piper phonemizes with its own copy of espeak-ng, linked into `piper.espeakbridge`, which
exports the same C symbols as libespeak-ng. When a libespeak-ng is already loaded globally (the
espeak backend loads the espeakng-loader wheel's library RTLD_GLOBAL), the bridge's calls bind
to that library while its data lives in its own copy, and the first phonemization segfaults.
The bridge is therefore imported with RTLD_DEEPBIND in that case, so both engines share one
process safely, in either order.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VoiceError
from . import MEDITATION_WPM, VoiceInfo
from .piper_voices import installed_voices, language_of, read_config, resolve

log = logging.getLogger(__name__)

#: en_US-joe-medium's pace at length_scale 1.0, in words a minute. Measured with piper-tts
#: 1.8 on 168 sentences (1255 words) of the built-in practices, one `synthesize` call per
#: sentence as the render speaks them: 355.6 s of speech, 212 wpm; six plain paragraphs of
#: meditation text (201 words) gave the same, 211-214 wpm over four runs.
NATURAL_WPM = 213.0
#: Seconds of each word that length_scale does not stretch. Time per word is affine, not
#: proportional, in length_scale: 0.0656 + 0.2163 * length_scale s on the same sentences,
#: fitted at length_scale 1.0, 1.5, 2.0 and 2.5 (residuals under 0.5%). The plain ratio
#: NATURAL_WPM / rate came out 10% fast: 155 wpm where 140 was asked for.
FIXED_SECONDS_PER_WORD = 0.066
#: The paces Piper voices keep intelligible (length_scale about 0.6 to 4.4).
MIN_WPM, MAX_WPM = 60.0, 300.0

_load_lock = threading.Lock()


def length_scale(wpm: float) -> float:
    """Return Piper's length_scale for a pace of `wpm` words a minute."""
    natural = 60.0 / NATURAL_WPM - FIXED_SECONDS_PER_WORD
    return (60.0 / wpm - FIXED_SECONDS_PER_WORD) / natural


@functools.cache
def _piper() -> Any:
    """Return the piper module, its espeak-ng bridge bound to its own espeak-ng."""
    import piper

    if "piper.espeakbridge" in sys.modules:
        return piper
    # RTLD_NOW binds every call now, so a libespeak-ng loaded globally later cannot interpose.
    flags = os.RTLD_NOW
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    if deepbind and _libespeak_is_global():
        log.debug("libespeak-ng is loaded globally: binding piper's espeak-ng to itself")
        flags |= deepbind
    # The flags are process-wide while set; only this one extension module is imported.
    previous = sys.getdlopenflags()
    sys.setdlopenflags(flags)
    try:
        import piper.espeakbridge
    finally:
        sys.setdlopenflags(previous)
    return piper


def _libespeak_is_global() -> bool:
    """Return whether espeak-ng's C symbols are visible to every library in the process."""
    if not sys.platform.startswith("linux"):
        return False
    return hasattr(ctypes.CDLL(None), "espeak_Initialize")


@functools.cache
def piper_version() -> str:
    """Return the installed piper-tts version."""
    try:
        return metadata.version("piper-tts")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- Finding voices ---------------------------------------------------------------------


# --- Loading models ---------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A Piper model loaded into onnxruntime, shared by every voice that uses it."""

    model: Path
    config: Path
    voice: Any  # piper.PiperVoice
    language: str

    def digest(self) -> str:
        """Return a hash of the model and its config."""
        return file_digest(self.model, self.config)


_digests: dict[tuple, str] = {}


def file_digest(*paths: Path) -> str:
    """Return a hash of the files' contents, computed once per process while they are unchanged."""
    stamp = []
    for path in paths:
        try:
            st = path.stat()
        except OSError as e:
            raise VoiceError(f"{path}: cannot be read: {e.strerror}") from e
        stamp.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
    key = tuple(stamp)
    if key not in _digests:
        h = hashlib.sha256()
        for path in paths:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
        _digests[key] = h.hexdigest()[:16]
    return _digests[key]


#: Loaded models by (resolved path, size, mtime): a replaced file loads afresh.
_models: dict[tuple[str, int, int], LoadedModel] = {}


def load_model(model: Path, config: Path) -> LoadedModel:
    """Return the model loaded once per process, or raise VoiceError naming the file."""
    try:
        stat = model.stat()
    except OSError as e:
        raise VoiceError(f"{model}: Piper model not found") from e
    key = (str(model.resolve()), stat.st_size, stat.st_mtime_ns)
    with _load_lock:
        if key not in _models:
            _models[key] = _load(model, config)
        return _models[key]


def unload_models() -> None:
    """Forget every loaded model, freeing its memory."""
    with _load_lock:
        _models.clear()


def _load(model: Path, config: Path) -> LoadedModel:
    """Load a model into onnxruntime, checking it is a Piper voice."""
    piper = _piper()
    import onnxruntime

    settings = read_config(config)
    try:
        piper_config = piper.PiperConfig.from_dict(settings)
    except (KeyError, TypeError, ValueError) as e:
        raise VoiceError(f"{config}: not a Piper voice config (bad or missing {e})") from e
    # onnxruntime's defaults, as piper's own loader uses. Measured on 2 cores: idle threads
    # that sleep instead of spinning save a quarter of the CPU and win on a busy machine, but
    # lose about 15% on a quiet one, where a render speaks alone.
    try:
        session = onnxruntime.InferenceSession(
            str(model),
            sess_options=onnxruntime.SessionOptions(),
            providers=["CPUExecutionProvider"],
        )
    # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception directly.
    except Exception as e:
        reason = str(e).splitlines()[0].rpartition("failed:")[2].strip() or type(e).__name__
        raise VoiceError(f"{model}: not a loadable Piper model ({reason})") from e
    inputs = {i.name for i in session.get_inputs()}
    if not {"input", "input_lengths", "scales"} <= inputs:
        raise VoiceError(f"{model}: not a Piper voice model (its inputs: {sorted(inputs)})")
    log.info("loaded Piper model %s", model)
    voice = piper.PiperVoice(session=session, config=piper_config)
    return LoadedModel(model, config, voice, language_of(settings))


# --- Speaking ---------------------------------------------------------------------------


class PiperVoice:
    """A Piper model speaking at a fixed pace; the model is loaded on the first utterance.

    Everything a cache key needs (the model's digest, its config, the pace) is known without
    loading it, so a render whose speech is all cached never starts onnxruntime.
    """

    def __init__(self, name: str, model: Path, config: Path, wpm: float | None) -> None:
        self.name = name
        self.model_path = model
        self.config_path = config
        settings = read_config(config)
        try:
            self.sample_rate = int(settings["audio"]["sample_rate"])
            inference = settings.get("inference") or {}
            self.noise = (
                float(inference.get("noise_scale", 0.667)),
                float(inference.get("noise_w", 0.8)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise VoiceError(f"{config}: not a Piper voice config (bad or missing {e})") from e
        self.language = language_of(settings)
        self.wpm = float(wpm) if wpm else float(MEDITATION_WPM)
        if not MIN_WPM <= self.wpm <= MAX_WPM:
            raise VoiceError(
                f"--wpm {self.wpm:g}: Piper speaks {MIN_WPM:g} to {MAX_WPM:g} words a minute"
            )
        self.length_scale = length_scale(self.wpm)

    @property
    def model(self) -> LoadedModel:
        """Return the loaded model, loading it (once per process) on first use."""
        return load_model(self.model_path, self.config_path)

    def cache_key(self) -> str:
        # Piper's SynthesisConfig defaults: no speaker, normalised audio, volume 1.
        return (
            f"piper|{file_digest(self.model_path, self.config_path)}"
            f"|length_scale={self.length_scale:.4f}|noise={self.noise[0]:g},{self.noise[1]:g}"
            f"|speaker=None|normalize=True|volume=1|piper-tts-{piper_version()}"
        )

    def synthesize(self, text: str) -> np.ndarray:
        """Return `text` spoken as one utterance, mono float32 at `sample_rate`."""
        if not text.strip():
            return np.zeros(0, np.float32)
        loaded = self.model
        settings = _piper().SynthesisConfig(length_scale=self.length_scale)
        try:
            # Piper yields one chunk per sentence, each already ending in its own short rest.
            chunks = [c.audio_float_array for c in loaded.voice.synthesize(text, settings)]
        except Exception as e:  # onnxruntime's errors derive from Exception directly
            raise VoiceError(f"{self.name} could not speak {text[:40]!r}: {e}") from e
        if not chunks:
            return np.zeros(0, np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)


class PiperBackend:
    prefix = "piper"

    def available(self) -> bool:
        return _importable()

    def voices(self) -> list[VoiceInfo]:
        if not self.available():
            return []
        return [v.info() for v in installed_voices()]

    def open(self, voice_id: str, wpm: float | None, pitch: float | None) -> PiperVoice:
        if not self.available():
            raise VoiceError("Piper voices need piper-tts: pip install 'calmcast[neural]'")
        name, model, config = resolve(voice_id.removeprefix("piper:").strip())
        voice = PiperVoice(name, model, config, wpm)
        if pitch is not None:
            # A warning, not an error: a pitch set for espeak must not break a practice
            # when installing the neural extra makes Piper the default voice.
            log.warning("%s has no pitch control: ignoring pitch %g", name, pitch)
        return voice


@functools.cache
def _importable() -> bool:
    """Return whether piper-tts and onnxruntime are installed, without importing them.

    Importing them costs 50 MB and a tenth of a second; a render whose speech is all cached
    never needs them. A broken install shows when the first utterance is spoken.
    """
    try:
        return all(find_spec(name) is not None for name in ("piper", "onnxruntime"))
    except (ImportError, ValueError) as e:
        log.debug("piper unavailable: %s", e)
        return False


BACKEND = PiperBackend()
