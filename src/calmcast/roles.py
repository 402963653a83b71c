"""Several voices in one practice: its roles, and the voice each is spoken by.

A practice that speaks in more than one voice names its roles in its front matter,

    [voices]
    guide = "piper:joe"                                   # the first is the default role
    bell-keeper = { voice = "espeak:en-gb", speaker = "Ana" }

and switches with `[voice bell-keeper]` ... `[voice guide]` (or `[voice]`, back to the first).
A session's `voices` setting (`--voice-for ROLE=VOICE`, a manifest's `voices` table, the
API's `voices={...}`) overrides the practice's choice; `--voice` is the default role's. A
practice with no `[voices]` has one role, `guide`, as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError, ScriptError
from .model import DEFAULT_ROLE, Place, Practice, Role
from .pairs import pairs

log = logging.getLogger(__name__)

#: The most roles one practice or one session names.
MAX_ROLES = 8
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_VOICE_LENGTH = 300
_SPEAKER_LENGTH = 60


def check_role(name: Any) -> str:
    """Return a role's name, lower-cased, or raise ValueError saying what one looks like."""
    if isinstance(name, str) and _NAME.fullmatch(name.strip().lower()):
        return name.strip().lower()
    shown = repr(name[:40]) if isinstance(name, str) else repr(name)
    raise ValueError(f"{shown} is not a role name: one word of letters, digits, - or _, "
                     "starting with a letter, at most 32 characters")  # fmt: skip


def _voice_name(role: str, value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > _VOICE_LENGTH
        or any(ord(c) < 32 for c in value)
    ):
        raise ValueError(
            f"{role}: expected a voice name like espeak:en-gb, got {str(value)[:40]!r}"
        )
    return value.strip()


def check_voices(value: Any) -> dict[str, str]:
    """Check a session's voices by role: a table (a manifest, the API), "ROLE=VOICE" or a list
    of those (the command line). Raise ValueError saying what is wrong."""
    given = pairs(value, "ROLE=VOICE", "second=espeak:en-us")
    out: dict[str, str] = {}
    for role, voice in given:
        name = check_role(role)
        chosen = _voice_name(name, voice)
        if out.get(name, chosen) != chosen:
            raise ValueError(f"{name}: given two voices, {out[name]} and {chosen}")
        out[name] = chosen
    if len(out) > MAX_ROLES:
        raise ValueError(f"at most {MAX_ROLES} voices, got {len(out)}")
    return dict(sorted(out.items()))


#: A speaker's name in captions: words, with the punctuation names have.
_SPEAKER = re.compile(r"[^\W_]+(?:(?:\. |[ .'’-])[^\W_]+)*\.?", re.UNICODE)


def _speaker(role: str, value: Any) -> str:
    """Return a speaker's name, or raise ValueError: it goes into captions as it is."""
    if (
        isinstance(value, str)
        and len(value.strip()) <= _SPEAKER_LENGTH
        and (not value.strip() or _SPEAKER.fullmatch(value.strip()))
    ):
        return value.strip()
    raise ValueError(f"{role}: speaker: expected a name of words (letters, digits, one space, "
                     f"dot, apostrophe or hyphen between them), at most {_SPEAKER_LENGTH} "
                     f"characters, got {str(value)[:40]!r}")  # fmt: skip


def front_matter_roles(value: Any, problems: list[str]) -> tuple[Role, ...]:
    """Return a practice's `[voices]` table as roles, adding what is wrong to `problems`."""
    if not isinstance(value, Mapping):
        problems.append('voices: expected a table of ROLE = "VOICE"')
        return ()
    roles: list[Role] = []
    for key, spec in value.items():
        try:
            name = check_role(key)
            if isinstance(spec, Mapping):
                unknown = sorted(set(spec) - {"voice", "speaker"})
                if unknown:
                    raise ValueError(
                        f"{name}: unknown key {unknown[0]!r} (a role has voice and speaker)"
                    )
                voice = _voice_name(name, spec["voice"]) if "voice" in spec else ""
                speaker = _speaker(name, spec.get("speaker", ""))
                role = Role(name, voice, speaker)
            else:
                role = Role(name, _voice_name(name, spec))
            if any(r.name == name for r in roles):
                raise ValueError(f"{name}: named twice (role names are the same in any case)")
            roles.append(role)
        except ValueError as e:
            problems.append(f"voices: {e}")
    if len(roles) > MAX_ROLES:
        problems.append(f"voices: at most {MAX_ROLES} roles, got {len(roles)}")
    return tuple(roles)


def voice_names(
    practice: Practice,
    voice: str | None,
    voices: Mapping[str, str] | None,
    used: Mapping[str, Place | None],
    default: str,
    shown: str,
) -> dict[str, str]:
    """Return the voice of each role the script speaks in, in order of first use.

    `voice` is the session's voice (the default role's), `voices` its voices by role, `used`
    the roles the rendered script speaks in and where it first switched to each, `default`
    the first role's voice (`pipeline.voice_name`: the session's, the practice's or the
    language's default). A role with no voice anywhere is an error at
    the place of its `[voice]`.
    """
    voices = voices or {}
    first = practice.default_role
    given = voices.get(first)
    if len(voices) > MAX_ROLES:
        raise ConfigError(f"voices: at most {MAX_ROLES}, got {len(voices)}")
    if len(used) > MAX_ROLES:
        name = list(used)[MAX_ROLES]
        place = used[name]
        why = f"[voice {name}]: a practice speaks in at most {MAX_ROLES} voices"
        if place is not None:
            raise ScriptError.at(place.file, place.line, place.column, why)
        raise ScriptError.at(shown, None, None, why)
    if voice and given and voice != given:
        raise ConfigError(f"the voice {voice} (--voice) and {given} (--voice-for {first}=...) both "
                          f"choose the voice of {first}, the practice's first role: give one")  # fmt: skip
    out = {}
    for name in used or {first: None}:
        role = practice.role(name)
        chosen = default if name == first else voices.get(name) or (role and role.voice)
        if not chosen:
            place = used.get(name)
            declared = ", ".join(r.name for r in practice.roles) or DEFAULT_ROLE
            why = (
                f"the role {name} has no voice: name it in the front matter's [voices] "
                f"or give --voice-for {name}=VOICE (this practice's roles: {declared})"
            )
            if place is not None:
                raise ScriptError.at(place.file, place.line, place.column, f"[voice {name}]: {why}")
            raise ScriptError.at(shown, None, None, why)
        out[name] = chosen
    unused = sorted(set(voices) - set(out) - {r.name for r in practice.roles} - {first})
    for name in unused:
        if (shown, name) not in _warned:  # once a practice, however many tracks use it
            _warned.add((shown, name))
            log.warning("%s: no text is read by the role %s, so its voice %s is not used",
                        shown, name, voices[name])  # fmt: skip
    return out


_warned: set[tuple[str, str]] = set()
