"""A course: one manifest in, a folder of tagged MP3s out, rebuilt only where something changed.

Every track is read and checked before anything is spoken, so a typo in track 9 fails in a
second, not after eight tracks of audio.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, sounds
from .durations import parse_duration
from .errors import CalmcastError, ConfigError
from .limits import MAX_SESSION
from .mix import MixSettings
from .render import Output, Request, render
from .script import BUILTIN_DIR, find_practice, load_practice, render_script
from .voices import default_voice_name, open_voice

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

_TRACK_KEYS = {
    "practice", "title", "minutes", "duration", "set", "ambience", "bell", "interval_bell",
    "voice", "rate", "pitch", "file",
}  # fmt: skip
_COURSE_KEYS = {"title", "guide", "description", "cover", "defaults", "track"}


@dataclass(frozen=True)
class Track:
    """One track of a course, everything about it settled."""

    number: int
    file: str
    title: str
    request: Request


@dataclass(frozen=True)
class Course:
    """A checked course manifest."""

    path: Path
    title: str
    guide: str
    description: str
    cover: Path | None
    tracks: tuple[Track, ...] = field(default=())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "track"


#: The largest manifest calmcast reads, bytes.
MAX_MANIFEST_BYTES = 256_000
#: The most tracks one course may have.
MAX_TRACKS = 1000


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or bool(Path(ref).suffix)


def _inside(ref: str, manifest: Path, key: str, where: str, problems: list, trusted: bool):
    """Return the file a manifest names, which must lie inside the manifest's folder tree.

    Symlinks are resolved first, so a link cannot lead out. `trusted` lifts the rule.
    """
    root = manifest.parent.resolve()
    found = (manifest.parent / Path(ref).expanduser()).resolve()
    if not trusted and not found.is_relative_to(root):
        problems.append(
            f"{where}{key}: {ref!r} lies outside the manifest's folder {root} "
            "(build --trust allows it for a manifest you trust)"
        )
        return None
    return found


def load_course(path: str | Path, trusted: bool = False) -> Course:
    """Return the course in the manifest at `path`, with every problem reported at once.

    Every file it names (practice, ambience, bell, cover) must lie inside the manifest's
    folder tree unless `trusted`; track files are plain names inside the output folder.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_MANIFEST_BYTES // 1000} kB")
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the course: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start + 1})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from e
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    problems: list[str] = []
    for key in data:
        if key not in _COURSE_KEYS:
            problems.append(f"unknown key {key!r}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("title: expected the course's title")
        title = path.stem
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("defaults: expected a table")
        defaults = {}
    for key in defaults:
        if key not in _TRACK_KEYS - {"practice", "title", "file"}:
            problems.append(f"defaults: unknown key {key!r}")
    cover = data.get("cover")
    if cover is not None:
        cover = _inside(str(cover), path, "cover", "", problems, trusted)
        if cover is not None and not cover.is_file():
            problems.append(f"cover: no such file {cover}")
    raw_tracks = data.get("track", [])
    if not isinstance(raw_tracks, list) or not raw_tracks:
        problems.append("track: expected one or more [[track]] tables")
        raw_tracks = []
    if len(raw_tracks) > MAX_TRACKS:
        problems.append(f"track: {len(raw_tracks)} tracks; a course may have at most {MAX_TRACKS}")
        raw_tracks = raw_tracks[:MAX_TRACKS]
    tracks = []
    total = len(raw_tracks)
    for i, raw in enumerate(raw_tracks, start=1):
        where = f"track {i}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a table")
            continue
        spec = {**defaults, **raw}
        if isinstance(defaults.get("set"), dict) and isinstance(raw.get("set"), dict):
            spec["set"] = {**defaults["set"], **raw["set"]}
        track = _track(i, total, spec, path, where, problems, trusted)
        if track:
            tracks.append(track)
    names = [t.file for t in tracks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"file: {name!r} is used by more than one track")
    course = Course(path, title, str(data.get("guide", "")), str(data.get("description", "")),
                    cover, tuple(tracks))  # fmt: skip
    if problems:  # the tracks that did load are checked too: every problem at once
        problems += problems_of(course)
        raise ConfigError("; ".join(f"{path}: {p}" for p in problems[:8]) + (
            f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))  # fmt: skip
    return course


def _track(i, total, spec, manifest, where, problems, trusted=False) -> Track | None:
    for key in spec:
        if key not in _TRACK_KEYS:
            problems.append(f"{where}: unknown key {key!r}")
    practice = spec.get("practice")
    if not isinstance(practice, str) or not practice.strip():
        problems.append(f"{where}: practice: expected a built-in name or a template path")
        return None
    ref = practice
    if _looks_like_path(practice):  # a template beside the manifest, never one elsewhere
        found = _inside(practice, manifest, "practice", f"{where}: ", problems, trusted)
        if found is None:
            return None
        ref = str(found)
    for key in ("ambience", "bell"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}: {key}: expected a name or a file path")
            spec = {**spec, key: None}
        elif isinstance(value, str) and _looks_like_path(value):
            found = _inside(value, manifest, key, f"{where}: ", problems, trusted)
            spec = {**spec, key: str(found) if found else None}
    minutes = spec.get("minutes")
    if "duration" in spec:
        try:
            minutes = parse_duration(str(spec["duration"])) / 60
        except ValueError as e:
            problems.append(f"{where}: duration: {e}")
    if minutes is not None and (
        isinstance(minutes, bool)
        or not isinstance(minutes, (int, float))
        or not 0 < minutes <= MAX_SESSION / 60  # NaN and infinity too
    ):
        problems.append(
            f"{where}: minutes: expected a number above 0 and at most {MAX_SESSION / 60:g}, "
            f"got {minutes!r}"
        )
        minutes = None
    values = spec.get("set", {})
    if not isinstance(values, dict):
        problems.append(f'{where}: set: expected a table like {{ colour = "blue" }}')
        values = {}
    values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
    numbers = {}
    for key in ("rate", "pitch"):
        if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], (int, float))):
            problems.append(f"{where}: {key}: expected a number")
        elif key in spec and not math.isfinite(spec[key]):
            problems.append(f"{where}: {key}: expected a finite number")
        elif key in spec:
            numbers[key] = float(spec[key])
    interval = spec.get("interval_bell")
    if interval is not None:
        try:
            interval = parse_duration(str(interval))
        except ValueError as e:
            problems.append(f"{where}: interval_bell: {e}")
            interval = None
    ambience = spec.get("ambience", "rain")
    ambience = None if ambience is None or str(ambience).lower() == "none" else str(ambience)
    title = spec.get("title") or Path(practice).stem.replace("-", " ").capitalize()
    file = spec.get("file") or f"{i:02d}-{_slug(str(title))}.mp3"
    if not _plain_file_name(file):
        problems.append(
            f"{where}: file: {str(file)[:60]!r} must be a plain file name ending .mp3, "
            "without folders (it is written inside the output folder)"
        )
        return None
    request = Request(
        practice=ref, minutes=minutes, voice=spec.get("voice"), values=values,
        ambience=ambience, bell=spec.get("bell"), interval_bell=interval,
        mix=MixSettings(), **numbers,
    )  # fmt: skip
    return Track(i, str(file), str(title), request)


def _plain_file_name(name) -> bool:
    """Return whether a track's file name stays in the output folder and clashes with nothing."""
    if not isinstance(name, str) or not name.lower().endswith(".mp3") or len(name) > 200:
        return False
    if "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        return False
    return not any(ord(c) < 32 for c in name)


def check(course: Course) -> dict[int, tuple[str, ...]]:
    """Render every track's script and find every sound, before anything is spoken.

    Return the files each track's script read (its template and every include), by number.
    """
    sources: dict[int, tuple[str, ...]] = {}
    problems = problems_of(course, sources)
    if problems:
        raise ConfigError(f"{course.path}: " + "; ".join(problems))
    return sources


def problems_of(course: Course, sources: dict | None = None) -> list[str]:
    """Return every problem a build would meet in the course's tracks and cover."""
    from .tags import check_cover

    problems = []
    if course.cover is not None:
        try:
            check_cover(course.cover)
        except CalmcastError as e:
            problems.append(f"cover: {e.format_message()}")
    voices = {}
    for t in course.tracks:
        r = t.request
        try:
            if r.voice not in voices:
                voices[r.voice] = open_voice(r.voice, r.rate, r.pitch)
            practice = load_practice(r.practice)
            minutes = r.minutes if r.minutes is not None else practice.minutes
            script = render_script(practice, minutes, r.values, language=voices[r.voice].language)
            if sources is not None:
                sources[t.number] = script.sources
            if r.ambience:
                sounds.find(r.ambience, "ambience")
            if r.bell:
                sounds.find(r.bell, "bell")
        except CalmcastError as e:
            problems.append(f"track {t.number} ({t.file}): {e.format_message()}")
    return problems


def fingerprint(course: Course, track: Track, read: tuple[str, ...] | None = None) -> str:
    """Return a hash of everything that decides a track's audio and tags.

    `read` is every file its script read (`check` returns them); without it, the practice
    and the templates beside it and among the built-ins.
    """
    r = track.request
    practice = find_practice(r.practice)
    if read is not None:
        sources = sorted(Path(f) for f in read)
    else:
        sources = sorted({practice, *practice.parent.glob("*.j2"), *BUILTIN_DIR.glob("*.j2")})
    blob = {
        "version": __version__,
        "request": repr(r),
        "voice": r.voice or default_voice_name(),
        "title": track.title,
        "course": [course.title, course.guide, course.description, len(course.tracks)],
        "sources": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sources},
        "sounds": [
            _stat(ref, kind) for ref, kind in ((r.ambience, "ambience"), (r.bell, "bell")) if ref
        ],
        "cover": _stat(str(course.cover), None) if course.cover else None,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _stat(ref: str, kind: str | None) -> list:
    path = sounds.find(ref, kind) if kind else Path(ref)
    st = path.stat()
    return [str(path), st.st_size, int(st.st_mtime)]


@dataclass(frozen=True)
class Built:
    """What happened to one track in a build."""

    track: Track
    path: Path
    status: str  # "made" or "up to date"
    seconds: float = 0.0


def build(
    course: Course,
    folder: str | Path,
    force: bool = False,
    report: Callable[[Built], None] | None = None,
) -> list[Built]:
    """Build every track into `folder`, skipping those already built from the same inputs."""
    folder = Path(folder)
    read = check(course)
    folder.mkdir(parents=True, exist_ok=True)
    record = _read_record(folder)
    done = []
    total = len(course.tracks)
    for t in course.tracks:
        out = folder / t.file
        stamp = fingerprint(course, t, read.get(t.number))
        if not force and _up_to_date(out, stamp, record.get(t.file)):
            item = Built(t, out, "up to date")
        else:
            result = render(t.request, Output(
                out, title=t.title, artist=course.guide or None, album=course.title,
                track=f"{t.number}/{total}", cover=course.cover, build=stamp,
            ))  # fmt: skip
            record[t.file] = {"build": stamp, **_file_facts(out)}
            _write_record(folder, record)
            item = Built(t, out, "made", result.timings["total"])
        done.append(item)
        if report:
            report(item)
    _write_playlist(course, folder)
    return done


#: What a build knows of the files it made: their fingerprints, sizes and hashes.
RECORD = ".calmcast-build.json"


def _file_facts(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _up_to_date(out: Path, stamp: str, known: dict | None) -> bool:
    """Return whether `out` is the whole file an earlier build made from the same inputs."""
    if not out.is_file() or not isinstance(known, dict) or known.get("build") != stamp:
        return False
    if known.get("size") != out.stat().st_size:
        return False
    return known.get("sha256") == _file_facts(out)["sha256"]  # damaged or changed since


def _read_record(folder: Path) -> dict:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if isinstance(data, dict) else {}


def _write_record(folder: Path, files: dict) -> None:
    _write_text(folder / RECORD, json.dumps({"version": 1, "files": files}, indent=1))


def _write_text(path: Path, text: str) -> None:
    """Write a small file whole or not at all: beside it first, then renamed into place."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_playlist(course: Course, folder: Path) -> None:
    lines = ["#EXTM3U", f"#PLAYLIST:{course.title}"]
    for t in course.tracks:
        lines += [f"#EXTINF:-1,{course.guide + ' - ' if course.guide else ''}{t.title}", t.file]
    _write_text(folder / "playlist.m3u8", "\n".join(lines) + "\n")
