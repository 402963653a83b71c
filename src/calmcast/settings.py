"""The one table of what a render can be asked for: CLI options and manifest keys alike.

Each setting has one name (`bed_level` in a manifest, `--bed-level` on the command line),
one default and one check, so `calmcast render` and a course manifest cannot drift apart.
A check takes what a person wrote (a string from the command line, a TOML value from a
manifest) and returns the value calmcast uses, or raises ValueError saying what it expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import languages, lexicon, roles
from .durations import parse_duration
from .limits import MAX_SESSION

#: The constant bitrates MPEG-1 Layer III defines (at 32, 44.1 and 48 kHz), kbit/s.
MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
SAMPLE_RATES = (22050, 32000, 44100, 48000)


def number(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[Any], float]:
    """Return a check for a finite number from `lo` to `hi` (above `lo` when `lo_open`)."""

    def check(value: Any) -> float:
        expected = (
            f"expected a number {'above' if lo_open else 'from'} {lo:g} "
            f"{'and at most' if lo_open else 'to'} {hi:g}, got {value!r}"
        )
        if isinstance(value, bool):
            raise ValueError(expected)
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(expected) from None
        if not math.isfinite(x) or (x <= lo if lo_open else x < lo) or x > hi:
            raise ValueError(expected)
        return x

    return check


def length(lo: float = 0.0, hi: float = MAX_SESSION) -> Callable[[Any], float]:
    """Return a check for a length like 12m30s, 90s or 90 (seconds), as seconds."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"expected a length like 12m30s, 90s or 1h, got {value!r}")
        seconds = parse_duration(str(value))
        if not lo <= seconds <= hi:
            raise ValueError(f"expected a length from {lo:g} s to {hi / 60:g} min, got {value!r}")
        return seconds

    return check


#: The most bell times `--bells` takes.
MAX_BELL_TIMES = 100


def times(value: Any) -> tuple[float, ...]:
    """Check bell times, "0,10m,25m" or a list of lengths, as sorted seconds, each once."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(value, bool) or not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"expected bell times like 0,10m,25m, got {value!r}")
    if len(items) > MAX_BELL_TIMES:
        raise ValueError(f"at most {MAX_BELL_TIMES} bell times, got {len(items)}")
    check = length()
    return tuple(sorted({check(item.strip() if isinstance(item, str) else item)
                         for item in items}))  # fmt: skip


def whole(lo: int, hi: int) -> Callable[[Any], int]:
    """Return a check for a whole number from `lo` to `hi`."""

    def check(value: Any) -> int:
        x = number(lo, hi)(value)
        if x != int(x):
            raise ValueError(f"expected a whole number from {lo} to {hi}, got {value!r}")
        return int(x)

    return check


#: Characters XML 1.0 cannot carry, and control characters (a tab and new lines aside).
UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def text(most: int = 500, pattern: str | None = None, expect: str = "") -> Callable[[Any], str]:
    """Return a check for one line of text, at most `most` characters, matching `pattern`."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected {expect or 'text'}, got {value!r}")
        if len(value) > most or any(ord(c) < 32 for c in value) or UNWRITABLE.search(value):
            raise ValueError(
                f"{value[:40]!r}: at most {most} characters on one line, no control characters"
            )
        if pattern and not re.fullmatch(pattern, value.strip()):
            raise ValueError(f"expected {expect}, got {value!r}")
        return value.strip()

    return check


def choice(*options: Any) -> Callable[[Any], Any]:
    """Return a check for one of `options`, given as itself or as its text."""

    def check(value: Any) -> Any:
        for option in options:
            if not isinstance(value, bool) and str(value).strip().lower() == str(option).lower():
                return option
        raise ValueError(f"expected one of {', '.join(map(str, options))}, got {value!r}")

    return check


def boolean(value: Any) -> bool:
    """Check a yes-or-no setting: true or false (a manifest's), or their words."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {str(value)[:40]!r}")


def bitrate(value: Any) -> str:
    kbits = str(value).strip().lower().removesuffix("k")
    if isinstance(value, bool) or not kbits.isdigit() or int(kbits) not in MP3_BITRATES:
        raise ValueError(
            f"expected an MP3 bitrate ({', '.join(f'{b}k' for b in MP3_BITRATES)}), got {value!r}"
        )
    return f"{int(kbits)}k"


def track_number(value: Any) -> str:
    value = str(value).strip()
    if not re.fullmatch(r"[1-9]\d{0,3}(/[1-9]\d{0,3})?", value):
        raise ValueError(f"expected a number like 3 or 3/8, got {value!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One thing a render can be asked for."""

    name: str  # the manifest key; the CLI option is --name-with-dashes
    check: Callable[[Any], Any]
    default: Any = None
    help: str = ""
    metavar: str | None = None
    part: str = "request"  # which object takes it: request, mix or output
    attr: str | None = None  # its name there, when not `name`
    is_file: bool = False  # a file path a manifest names, found beside the manifest
    choices: tuple = ()  # shown by the CLI as a choice
    commands: frozenset = frozenset({"render", "build"})
    aliases: tuple[str, ...] = ()  # other names the CLI takes too, as --NAME
    multiple: bool = False  # the CLI option may be given again and again
    switch: bool = False  # yes or no: the CLI has --NAME and --no-NAME

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def target(self) -> str:
        return self.attr or self.name


SETTINGS: tuple[Setting, ...] = (
    Setting("minutes", number(0, MAX_SESSION / 60, lo_open=True), None,
            "The length in minutes (12.5 for 12m30s), at most 720. Default: the practice's.",
            "MINUTES"),
    Setting("duration", length(1), None, "The length as 12m30s, 90s or 1h.", "LENGTH",
            attr="minutes"),
    Setting("voice", text(300, expect="a voice name"), None,
            "espeak:en-gb, piper:joe, or a Piper .onnx path. See `calmcast voices`. "
            "Default: a natural voice of the practice's language when one is installed.",
            "NAME"),
    Setting("voices", roles.check_voices, None,
            "Speak the practice's role ROLE (its [voice ROLE] parts) with VOICE, e.g. "
            "--voice-for second=espeak:en-us (repeatable); a manifest's [voices] table. "
            "--voice is the first role's.", "ROLE=VOICE", multiple=True, aliases=("voice_for",)),
    Setting("fallback_voice", text(300, expect="a voice name"), None,
            "With a recorded voice: the voice that says a line it has no clip of (a "
            "listener's name). Default: espeak's voice of the practice's language.", "NAME"),
    Setting("strict_voice", boolean, False,
            "With a recorded voice: refuse, before any work, when a line has no clip, instead "
            "of saying it with the fallback voice.", switch=True),
    Setting("language", text(35, languages.TAG, "a language like de or es-419"), None,
            "The language to speak: a built-in practice's version in it (`calmcast practices "
            "--language de`) and a voice of it. Default: the practice's own.", "LANG"),
    Setting("format", choice("txt", "md", "ssml", "apg", "j2"), None,
            "How to read the practice file: plain text, Markdown, SSML, an audio-program-"
            "generator script or a template. Default: by its suffix and a look at it.",
            choices=("txt", "md", "ssml", "apg", "j2"), attr="script_format"),
    Setting("wpm", number(40, 500), None,
            "Words a minute. Default: a meditation pace (140).", "WPM", aliases=("rate",)),
    Setting("pitch", number(0, 100), None, "Voice pitch, 0 to 100 (espeak).", "PITCH"),
    Setting("ambience", text(1000, expect="a built-in name, a file or none"), "rain",
            "The bed under the voice: a built-in name, an audio file, or none.", "NAME|FILE",
            is_file=True),
    Setting("bell", text(1000, expect="a built-in name or a file"), None,
            "Strike this bell at the start and the end, and at every bare [bell]; none for no bells.",
            "NAME|FILE|none", is_file=True),
    Setting("interval_bell", length(), None,
            "Strike the bell every LENGTH (a timer), e.g. 5m.", "LENGTH"),
    Setting("bells", times, None,
            "Strike the bell at these times from the opening bell, e.g. 0,10m,25m.", "TIMES"),
    Setting("strikes", whole(1, 9), 1, "Strike every bell this many times, 4 s apart.", "N"),
    Setting("delay", length(0, 600), None,
            "Silence before the first bell, e.g. 10s; the session keeps its length. "
            "Default: the practice's lead-in (3 s).", "LENGTH"),
    Setting("pronounce", lexicon.check, None,
            "Say WORD as SAY, e.g. --pronounce Neff=Neph (repeatable); a manifest's "
            "[pronounce] table.", "WORD=SAY", multiple=True),
    Setting("end_bell", text(1000, expect="a built-in name or a file"), None,
            "A different bell for the end of the session. Default: the session's bell.",
            "NAME|FILE", is_file=True),
    Setting("bed_level", number(-60, 0), -20.0,
            "Bed loudness relative to the voice, LU.", "LU", part="mix"),
    Setting("duck", number(0, 40), 9.0, "How far the bed dips under speech, dB.", "DB",
            part="mix"),
    Setting("fade_in", length(0, 600), 3.0, "Bed fade-in.", "LENGTH", part="mix"),
    Setting("fade_out", length(0, 600), 6.0, "Bed fade-out.", "LENGTH", part="mix"),
    Setting("loudness", number(-30, -10), -16.0,
            "Loudness of the voice, LUFS, measured on the speech alone; at most -14 "
            "(mono -17) at 128k.", "LUFS", part="mix"),
    Setting("sample_rate", choice(*SAMPLE_RATES), 44100, "Sample rate of the MP3, Hz.", "HZ",
            part="mix", choices=SAMPLE_RATES),
    Setting("channels", choice(1, 2), 2, "1 for mono, 2 for stereo.", "N", part="mix",
            choices=(1, 2)),
    Setting("bitrate", bitrate, "128k", "MP3 bitrate, e.g. 96k, 192k.", "RATE", part="mix"),
    Setting("title", text(), None, "Title tag. Default: the practice's title.", "TEXT",
            part="output"),
    Setting("artist", text(), None, "Artist tag: the guide's name. Default in a course: guide.",
            "TEXT", part="output", aliases=("guide",)),
    Setting("album", text(), None, "Album tag. Default in a course: its title.", "TEXT",
            part="output"),
    Setting("track", track_number, None, "Track number tag, e.g. 3 or 3/8.", "N[/TOTAL]",
            part="output", commands=frozenset({"render"})),  # a course numbers its tracks
    Setting("cover", text(1000, expect="an image file"), None, "A JPEG or PNG cover image.",
            "FILE", part="output", is_file=True),
    Setting("id3", choice(3, 4), 3, "ID3 version: 2.3 plays everywhere, 2.4 is newer.", "3|4",
            part="output", attr="id3_version", choices=(3, 4)),
)  # fmt: skip

BY_NAME = {s.name: s for s in SETTINGS}
#: The settings a length is given by: one of them, never both.
LENGTH = ("minutes", "duration")
#: The settings `calmcast plan` takes: what decides the timeline.
PLAN = ("minutes", "duration", "voice", "voices", "fallback_voice", "strict_voice", "language", "format", "wpm", "pitch", "ambience", "bell",
        "interval_bell", "bells", "strikes", "delay", "end_bell", "pronounce")


def for_command(command: str) -> list[Setting]:
    return [s for s in SETTINGS if command in s.commands]


def parse(name: str, value: Any) -> Any:
    """Return `value` checked and converted by the setting `name` (ValueError if it is wrong)."""
    value = BY_NAME[name].check(value)
    return value / 60 if name == "duration" else value


def split(values: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Return checked settings as keyword arguments for a Request, its MixSettings and an Output.

    `values` holds converted values by setting name; missing ones take the defaults. A length
    given as `duration` arrives as minutes.
    """
    parts: dict[str, dict] = {"request": {}, "mix": {}, "output": {}}
    for s in SETTINGS:
        if s.name == "duration":
            continue
        value = values.get(s.name, s.default)
        if s.name == "minutes":
            value = values.get("minutes", values.get("duration"))
        if s.name == "ambience" and isinstance(value, str) and value.lower() == "none":
            value = None
        parts[s.part][s.target] = value
    return parts["request"], parts["mix"], parts["output"]


def click_options(command: str, only: tuple[str, ...] | None = None):
    """Return a decorator adding the table's options for `command` to a click command."""
    import click

    class Checked(click.ParamType):
        def __init__(self, setting: Setting) -> None:
            self.setting = setting
            self.name = setting.metavar or setting.name

        def convert(self, value, param, ctx):
            try:
                return parse(self.setting.name, value)
            except ValueError as e:
                self.fail(str(e), param, ctx)

    chosen = [s for s in for_command(command) if only is None or s.name in only]

    def decorate(f):
        for s in reversed(chosen):
            decls = [s.flag, *("--" + a.replace("_", "-") for a in s.aliases)]
            if s.switch:
                f = click.option(f"{s.flag}/--no-{s.flag[2:]}", s.name, default=None,
                                 help=s.help)(f)  # fmt: skip
                continue
            kind = click.Choice([str(c) for c in s.choices]) if s.choices else Checked(s)
            f = click.option(
                *decls, s.name, type=kind, default=None, metavar=s.metavar,
                multiple=s.multiple, help=s.help +
                (f"  [default: {_shown(s.default)}]" if s.default is not None else ""),
            )(f)  # fmt: skip
        return f

    return decorate


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def from_cli(given: dict[str, Any]) -> dict[str, Any]:
    """Return the settings given on a command line (None means not given), checked."""
    out = {}
    for name, value in given.items():
        if name in BY_NAME and BY_NAME[name].multiple:
            merged: dict = {}
            for each in value or ():
                for k, v in each.items():
                    if merged.get(k, v) != v:
                        import click

                        raise click.UsageError(f"{BY_NAME[name].flag}: {k} is given twice, as "
                                               f"{merged[k]} and as {v}")  # fmt: skip
                    merged[k] = v
            value = merged or None
        if name in BY_NAME and value is not None:
            out[name] = parse(name, value) if BY_NAME[name].choices else value
    if "minutes" in out and "duration" in out:
        import click

        raise click.UsageError("give --minutes or --duration, not both")
    return out


def make(practice: str, values: dict[str, str], chosen: dict[str, Any]):
    """Return the Request and the Output keyword arguments for checked settings `chosen`."""
    from .mix import MixSettings
    from .session import Request

    request, mix, output = split(chosen)
    return Request(practice=practice, values=values, mix=MixSettings(**mix), **request), output
