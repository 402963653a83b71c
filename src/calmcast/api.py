"""calmcast from Python: list what there is, plan a session, render it, build a course.

Every function takes the settings `calmcast render` takes, as keyword arguments with the
same names and the same defaults (`minutes=10, voice="piper:joe", bed_level=-18`), checked
by the same table (`settings.py`), so the CLI and a program cannot drift apart. A value that
is wrong raises `ConfigError` naming the setting; every failure is a `CalmcastError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from . import settings as table
from .errors import ConfigError

if TYPE_CHECKING:
    import pydub

    from .building import Built
    from .model import Practice
    from .progress import Progress
    from .session import Plan, Result
    from .voices import VoiceInfo

    Sound: TypeAlias = str | Path | pydub.AudioSegment | None
else:
    Sound = Any

Listener = Callable[["Progress"], None]


def _default(name: str) -> Any:
    return table.BY_NAME[name].default


@dataclass(frozen=True)
class Settings:
    """What a session can be asked for: the settings of `calmcast render`, by the same names.

    Defaults are the CLI's (from one table). Lengths take seconds or text like "12m30s";
    `ambience` and `bell` take a built-in name, a file, or a `pydub.AudioSegment`;
    `ambience=None` (or "none") is the voice alone.
    """

    minutes: float | None = _default("minutes")
    duration: str | float | None = _default("duration")
    voice: str | None = _default("voice")
    voices: Mapping[str, str] | None = _default("voices")
    fallback_voice: str | None = _default("fallback_voice")
    strict_voice: bool = _default("strict_voice")
    language: str | None = _default("language")
    format: str | None = _default("format")
    wpm: float | None = _default("wpm")
    pitch: float | None = _default("pitch")
    ambience: Sound = _default("ambience")
    bell: Sound = _default("bell")
    interval_bell: str | float | None = _default("interval_bell")
    bells: str | Sequence[str | float] | None = _default("bells")
    strikes: int = _default("strikes")
    delay: str | float | None = _default("delay")
    end_bell: Sound = _default("end_bell")
    pronounce: Mapping[str, str] | None = _default("pronounce")
    bed_level: float = _default("bed_level")
    duck: float = _default("duck")
    fade_in: str | float = _default("fade_in")
    fade_out: str | float = _default("fade_out")
    loudness: float = _default("loudness")
    sample_rate: int = _default("sample_rate")
    channels: int = _default("channels")
    bitrate: str = _default("bitrate")
    title: str | None = _default("title")
    artist: str | None = _default("artist")
    album: str | None = _default("album")
    track: str | int | None = _default("track")
    cover: str | Path | None = _default("cover")
    id3: int = _default("id3")

    def replace(self, **options: Any) -> Settings:
        """Return these settings with `options` changed (unknown names raise TypeError)."""
        return dataclasses.replace(self, **_known(options))

    def checked(self) -> dict[str, Any]:
        """Return the settings given, checked and converted as the CLI checks its options."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                if f.name == "ambience":  # None is no bed, not the default one
                    out[f.name] = "none"
                continue
            if f.name in ("ambience", "bell", "end_bell") and not isinstance(value, (str, Path)):
                out[f.name] = _given_sound(value, f.name)
                continue
            try:
                out[f.name] = table.parse(f.name, str(value) if isinstance(value, Path) else value)
            except ValueError as e:
                raise ConfigError(f"{f.name}: {e}", reason=str(e)) from None
        if self.minutes is not None and self.duration is not None:
            raise ConfigError("give minutes or duration, not both")
        return out


def _known(options: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(Settings)}
    for name in options:
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TypeError(f"unknown setting {name!r}{hint}")
    return dict(options)


def _given_sound(sound: Any, name: str) -> str:
    """Return a file holding an AudioSegment given as an ambience or a bell.

    It is written once as WAV into the cache folder, named by the hash of its samples.
    """
    import pydub

    from .voices.cache import default_cache_dir

    if not isinstance(sound, pydub.AudioSegment):
        raise ConfigError(
            f"{name}: expected a built-in name, a file or a pydub.AudioSegment, got {sound!r}"
        )
    if len(sound.raw_data) == 0:
        raise ConfigError(f"{name}: the AudioSegment is empty")
    ident = hashlib.sha256(
        f"{sound.frame_rate}/{sound.channels}/{sound.sample_width}/".encode() + sound.raw_data
    ).hexdigest()[:20]
    path = default_cache_dir() / "sounds" / "given" / f"{name}-{ident}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        sound.export(tmp, format="wav")
        tmp.replace(path)
    return str(path)


def _request(practice: str | Path, values: Mapping[str, Any] | None, settings: Settings | None,
             options: Mapping[str, Any]):  # fmt: skip
    """Return the Request and the output tags for a call, checked."""
    chosen = (settings or Settings()).replace(**options).checked()
    if "duration" in chosen:
        chosen["minutes"] = chosen.pop("duration")
    given = {str(k): _value(v) for k, v in (values or {}).items()}
    request, tags = table.make(str(practice), given, chosen)
    if tags["cover"] is not None:
        tags["cover"] = Path(tags["cover"])
    return request, tags


def _value(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def default_output(practice: str | Path, language: str | None = None) -> Path:
    """Return where a render goes when no file is named: output/PRACTICE.mp3, or
    output/PRACTICE-de.mp3 for a built-in's version in another language (made if need be)."""
    ref = str(practice)
    tag = language or (ref.partition("/")[0] if "/" in ref and not Path(ref).exists() else "")
    suffix = f"-{tag.lower()}" if tag and tag.split("-")[0].lower() != "en" else ""
    output = Path("output") / f"{Path(practice).stem}{suffix}.mp3"
    output.parent.mkdir(exist_ok=True)
    return output


# -- what there is -----------------------------------------------------------------------------


def list_practices(language: str | None = None) -> list[Practice]:
    """Return the built-in practices (those written in `language`, if given), each with its
    title, language, lengths and variables."""
    from .practice import builtin_practices, load_practice

    return [load_practice(name) for name in builtin_practices(language)]


def load_practice(ref: str | Path, language: str | None = None) -> Practice:
    """Return a practice by built-in name (`settling`, `de/settling`; with `language`, the
    version in it) or template path, its front matter checked."""
    from .practice import load_practice as load

    return load(str(ref), language)


def list_voices() -> list[VoiceInfo]:
    """Return the installed voices of every backend."""
    from .voices import list_voices as found

    return found()


def list_ambiences() -> dict[str, Path]:
    """Return the built-in ambience beds by name."""
    from . import sounds

    return sounds.ambiences()


def list_bells() -> dict[str, Path]:
    """Return the built-in bells by name."""
    from . import sounds

    return sounds.bells()


# -- making sessions ---------------------------------------------------------------------------


def plan(
    practice: str | Path,
    *,
    values: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    cache: str | Path | None = None,
    progress: Listener | None = None,
    **options: Any,
) -> Plan:
    """Return the session fitted to its length, every segment placed (`Plan.timeline`).

    Speech is synthesised (or read from the speech cache, `cache` or $CALMCAST_CACHE),
    because its length decides the pauses; nothing is mixed or written.
    """
    from .pipeline import plan as make_plan
    from .voices.cache import SpeechCache

    request, _ = _request(practice, values, settings, options)
    return make_plan(request, SpeechCache(cache), progress)


def render(
    practice: str | Path,
    output: str | Path | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    cache: str | Path | None = None,
    progress: Listener | None = None,
    **options: Any,
) -> Result:
    """Render a session to a finished, tagged MP3 (default: output/PRACTICE.mp3).

    The file appears whole or not at all; the result holds its plan and measured figures.
    """
    from .pipeline import render as make
    from .session import Output
    from .voices.cache import SpeechCache

    request, tags = _request(practice, values, settings, options)
    path = Path(output) if output is not None else default_output(practice, request.language)
    return make(request, Output(path, **tags), SpeechCache(cache), progress)


def render_audio(
    practice: str | Path,
    *,
    values: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    cache: str | Path | None = None,
    progress: Listener | None = None,
    **options: Any,
) -> pydub.AudioSegment:
    """Return a session mixed as `render` mixes it, as a pydub AudioSegment (16-bit PCM)."""
    return plan(practice, values=values, settings=settings, cache=cache, progress=progress,
                **options).to_audiosegment(progress)  # fmt: skip


def build(
    manifest: str | Path,
    output: str | Path | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    index_only: bool = False,
    trust: bool = False,
    progress: Listener | None = None,
) -> list[Built]:
    """Build a course manifest into a folder to publish (default: output/COURSE-TITLE).

    As `calmcast build`: only what changed is made again, `jobs` tracks at a time (default:
    the cores); the result says what happened to every file.
    """
    from .building import build as make
    from .course import default_folder, load_course

    course = load_course(manifest, trusted=trust)
    folder = Path(output) if output is not None else default_folder(course)
    return make(course, folder, force=force, jobs=jobs, shard=shard, index_only=index_only,
                progress=progress)  # fmt: skip
