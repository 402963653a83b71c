"""calmcast: guided-meditation audio from practice scripts, offline.

    import calmcast

    for p in calmcast.list_practices():
        print(p.name, p.title, p.min_minutes, p.max_minutes)
    plan = calmcast.plan("settling", minutes=5)
    result = calmcast.render("settling", "settling.mp3", minutes=5, ambience="rain")
    audio = calmcast.render_audio("settling", minutes=5)  # a pydub.AudioSegment

Every function takes the settings of `calmcast render` as keyword arguments, with the same
names and defaults; see `Settings`. Every failure is a `CalmcastError`. The names below are
imported when first used, so `import calmcast` stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module it lives in.
_WHERE = {
    "plan": "api", "render": "api", "render_audio": "api", "build": "api",
    "list_practices": "api", "load_practice": "api", "list_voices": "api",
    "list_ambiences": "api", "list_bells": "api",
    "Settings": "api",
    "Plan": "session", "Result": "session",
    "Built": "building", "Status": "building",
    "Progress": "progress", "Stage": "progress",
    "Practice": "model", "Variable": "model", "Timeline": "model", "Event": "model",
    "Speech": "model", "Pause": "model", "PauseKind": "model", "Bell": "model",
    "Chapter": "model", "Place": "model",
    "VoiceInfo": "voices",
    "CalmcastError": "errors", "ScriptError": "errors", "LengthError": "errors",
    "VoiceError": "errors", "AudioError": "errors", "OutputError": "errors",
    "ConfigError": "errors",
}  # fmt: skip

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'calmcast' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .api import (
        Settings,
        build,
        list_ambiences,
        list_bells,
        list_practices,
        list_voices,
        load_practice,
        plan,
        render,
        render_audio,
    )
    from .building import Built, Status
    from .errors import (
        AudioError,
        CalmcastError,
        ConfigError,
        LengthError,
        OutputError,
        ScriptError,
        VoiceError,
    )
    from .model import (
        Bell,
        Chapter,
        Event,
        Pause,
        PauseKind,
        Place,
        Practice,
        Speech,
        Timeline,
        Variable,
    )
    from .progress import Progress, Stage
    from .session import Plan, Result
    from .voices import VoiceInfo
