"""A course: one manifest in, a folder of tagged MP3s out, rebuilt only where something changed.

Every track is read and checked before anything is spoken, so a typo in track 9 fails in a
second, not after eight tracks of audio.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from . import __version__, settings, sounds
from .errors import CalmcastError, ConfigError
from .manifest import (
    date_of,
    inside,
    length_label,
    looks_like_path,
    named_file,
    paragraph,
    plain_file_name,
    publishing,
    read_manifest,
    slug,
    values_of,
)
from .mix import MixSettings
from .practice import BUILTIN_DIR, builtin_dir, find_practice, is_builtin_name, load_practice
from .script import render_script
from .session import Request
from .voices import default_voice_name

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

log = logging.getLogger(__name__)

#: What a track names besides the render settings.
_TRACK_KEYS = {"practice", "title", "file", "description", "date", "set"}
#: A course's own keys: what it is and where it is published.
_COURSE_KEYS = {
    "title", "guide", "author", "description", "cover", "base_url", "link", "language",
    "email", "category", "explicit", "copyright", "defaults", "track",
}  # fmt: skip
#: The settings a manifest may give, at course level ([defaults]) or per track.
_SETTINGS = {s.name: s for s in settings.for_command("build")}


@dataclass(frozen=True)
class Track:
    """One file of a course, everything about it settled (a track at several lengths is several)."""

    number: int  # the manifest's track number, shared by its lengths
    file: str
    title: str
    request: Request
    tags: dict = field(default_factory=dict)  # Output keyword arguments: artist, album, cover, id3
    description: str = ""
    date: datetime | None = None
    length: str = ""  # "10min" when the track is offered at several lengths

    @property
    def stem(self) -> str:
        return self.file[: -len(".mp3")]


@dataclass(frozen=True)
class Course:
    """A checked course manifest."""

    path: Path
    title: str
    guide: str
    description: str
    cover: Path | None
    tracks: tuple[Track, ...] = field(default=())
    base_url: str = ""
    link: str = ""
    language: str = "en"
    author: str = ""
    email: str = ""
    category: tuple[str, ...] = ("Health & Fitness", "Mental Health")
    explicit: bool = False
    copyright: str = ""


#: The most tracks one course may have, and the most lengths one track may be offered at.
MAX_TRACKS = 1000
MAX_LENGTHS = 12
#: The most files one course makes (its tracks at all their lengths).
MAX_FILES = 1000
#: The most problems one message lists.
MAX_PROBLEMS = 20


def default_folder(course: Course) -> Path:
    """Return where a course is built when no folder is named: output/COURSE-TITLE."""
    return Path("output") / slug(course.title, "course")


def load_course(path: str | Path, trusted: bool = False) -> Course:
    """Return the course in the manifest at `path`, with every problem reported at once.

    Every file it names (practice, ambience, bell, cover) must lie inside the manifest's
    folder tree unless `trusted`; track files are plain names inside the output folder.
    """
    path = Path(path)
    data = read_manifest(path)
    problems: list[str] = []
    for key in data:
        if key not in _COURSE_KEYS:
            problems.append(f"unknown key {key!r}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("title: expected the course's title")
        title = path.stem
    about = publishing(data, path, problems, trusted)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("defaults: expected a table")
        defaults = {}
    for key in defaults:
        if key not in _SETTINGS and key != "set":
            problems.append(f"defaults: unknown key {key!r}")
    base = _settings(defaults, path, "defaults: ", problems, trusted)
    # The course's language is its tracks' too: a bare built-in name takes its version in
    # it (a track naming de/settling or its own file keeps that practice's language).
    spoken = base.get("language") or about.get("language")
    if isinstance(defaults.get("set", {}), dict):
        base["set"] = values_of(defaults.get("set", {}))
    else:
        problems.append('defaults: set: expected a table like { colour = "blue" }')
    raw_tracks = data.get("track", [])
    if not isinstance(raw_tracks, list) or not raw_tracks:
        problems.append("track: expected one or more [[track]] tables")
        raw_tracks = []
    over = len(raw_tracks) > MAX_TRACKS  # a course too large is refused before any checking
    if over:
        problems.append(f"track: {len(raw_tracks)} tracks; a course may have at most {MAX_TRACKS}")
        raw_tracks = raw_tracks[:MAX_TRACKS]
    tracks: list[Track] = []
    broken: set[int] = set()
    context = {"title": title.strip(), "guide": about["guide"], "cover": about["cover"]}
    for i, raw in enumerate(raw_tracks, start=1):
        if not isinstance(raw, dict):
            problems.append(f"track {i}: expected a table")
            continue
        tracks += _tracks(i, raw, base, context, path, problems, trusted, spoken, broken)
    if len(tracks) > MAX_FILES:
        over = True
        problems.append(f"track: {len(tracks)} files in all; a course makes at most {MAX_FILES}")
        tracks = tracks[:MAX_FILES]
    names = [t.file for t in tracks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        which = sorted({t.number for t in tracks if t.file == name})
        problems.append(
            f"file: {name!r} is used by more than one track (tracks {which})"
            if len(which) > 1
            else f"track {which[0]}: a length is listed twice"
        )
    total = len({t.number for t in tracks})
    tracks = [replace(t, tags={**t.tags, "track": f"{t.number}/{total}"}) for t in tracks]
    if "language" not in about:  # the feed's and the page's: the tracks', when they agree
        about["language"] = _common_language(tracks)
    course = Course(path, title.strip(), tracks=tuple(tracks), **about)
    if problems:
        if not over:  # the tracks that did load are checked too: every problem at once
            problems += problems_of(course, skip=broken)
        shown = problems[:MAX_PROBLEMS]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        raise ConfigError("; ".join(f"{path}: {p}" for p in shown) + more, file=str(path),
                          reason="; ".join(shown) + more, problems=problems)  # fmt: skip
    return course


def _settings(table: dict, manifest: Path, where: str, problems: list, trusted: bool) -> dict:
    """Return the render settings a manifest table gives, checked by the settings table."""
    out: dict = {}
    for name, setting in _SETTINGS.items():
        if name not in table:
            continue
        value = table[name]
        if name in settings.LENGTH and isinstance(value, list):
            lengths = []
            if not 1 <= len(value) <= MAX_LENGTHS:
                problems.append(f"{where}{name}: expected 1 to {MAX_LENGTHS} lengths")
                continue
            for item in value:
                try:
                    lengths.append(settings.parse(name, item))
                except ValueError as e:
                    problems.append(f"{where}{name}: {e}")
            out["minutes"] = lengths
            continue
        if setting.is_file and isinstance(value, str) and looks_like_path(value):
            if name == "cover":
                out[name] = named_file(value, manifest, name, where, problems, trusted)
            else:  # a sound file beside the manifest; a built-in name stays a name
                found = inside(value, manifest, name, where, problems, trusted)
                out[name] = str(found) if found else None
            continue
        try:
            out["minutes" if name in settings.LENGTH else name] = settings.parse(name, value)
        except ValueError as e:
            problems.append(f"{where}{name}: {e}")
    if all(n in table for n in settings.LENGTH):
        problems.append(f"{where}give minutes or duration, not both")
    return out


def _common_language(tracks: list[Track]) -> str:
    """Return the language the tracks' practices are written in, when it is one; else English."""
    found = set()
    for t in tracks:
        with contextlib.suppress(CalmcastError):  # reported with the track's other problems
            found.add(load_practice(t.request.practice, t.request.language,
                                    t.request.script_format).language)
    return found.pop() if len(found) == 1 else "en"


def _tracks(i, raw, base, course, manifest, problems, trusted, spoken=None,
            broken: set[int] | None = None) -> list[Track]:
    """Return the files one [[track]] table makes: one, or one per length it lists."""
    where = f"track {i}: "
    for key in raw:
        if key not in _SETTINGS and key not in _TRACK_KEYS:
            problems.append(f"{where}unknown key {key!r}")
    practice = raw.get("practice")
    if not isinstance(practice, str) or not practice.strip():
        problems.append(f"{where}practice: expected a built-in name or a template path")
        return []
    ref = practice
    beside = manifest.parent / practice
    if looks_like_path(practice) and not (is_builtin_name(practice) and not beside.exists()):
        # a template beside the manifest, never one elsewhere
        found = inside(practice, manifest, "practice", where, problems, trusted)
        if found is None:
            return []
        ref = str(found)
    before = len(problems)
    own = _settings(raw, manifest, where, problems, trusted)
    if len(problems) > before and broken is not None:
        broken.add(i)  # checked no further: its settings are not what it asked for
    chosen = {**base, **own}  # a track's own length beats the course's, whichever key
    for name in ("pronounce", "voices"):  # tables add to the course's, as `set` does
        if isinstance(base.get(name), dict) and isinstance(own.get(name), dict):
            chosen[name] = {**base[name], **own[name]}
    if "language" not in own and (ref != practice or "/" in practice):
        chosen.pop("language", None)  # a file or a de/NAME is in its own language
    elif "language" not in chosen and spoken:
        chosen["language"] = spoken
    values = dict(base.get("set", {}))
    table = raw.get("set", {})
    if isinstance(table, dict):
        values.update(values_of(table))
    else:
        problems.append(f'{where}set: expected a table like {{ colour = "blue" }}')
    # The title is a setting (the title tag), checked by the table with the others.
    title = own.get("title") or Path(practice).stem.replace("-", " ").capitalize()
    description = raw.get("description", "")
    try:
        description = paragraph(description)
    except ValueError as e:
        problems.append(f"{where}description: {e}")
        description = ""
    date = date_of(raw.get("date"), where, problems)
    file = raw.get("file") or f"{i:02d}-{slug(str(title))}.mp3"
    if not plain_file_name(file):
        problems.append(
            f"{where}file: {str(file)[:60]!r} must be a plain file name ending .mp3, "
            "without folders (it is written inside the output folder)"
        )
        return []
    chosen.pop("set", None)
    lengths = chosen.pop("minutes", None)
    several = isinstance(lengths, list) and len(lengths) > 1
    if not isinstance(lengths, list):
        lengths = [lengths]
    request_args, mix, output = settings.split(chosen)
    output = {
        **output,
        "artist": output.get("artist") or course["guide"] or None,
        "album": output.get("album") or course["title"],
        "cover": output.get("cover") or course["cover"],
    }
    output.pop("track", None)
    output.pop("title", None)
    tracks = []
    for minutes in lengths:
        label = length_label(minutes) if several else ""
        name = f"{file[:-4]}-{label}.mp3" if label else file
        request = Request(
            practice=ref,
            values=values,
            mix=MixSettings(**mix),
            **{**request_args, "minutes": minutes},
        )
        shown = f"{title} ({label.replace('min', ' min')})" if label else str(title)
        tracks.append(Track(i, name, shown, request, output, description, date, label))
    return tracks


@dataclass(frozen=True)
class Checked:
    """What checking a track found: every file its script read, and what it will say."""

    sources: tuple[str, ...]
    texts: tuple[str, ...]
    voices: tuple[str, ...] = ()  # the voice that says each text, by its name

    def by_voice(self) -> dict[str, list[str]]:
        """Return the texts each voice says, in order."""
        out: dict[str, list[str]] = {}
        for voice, text in zip(self.voices, self.texts, strict=True):
            out.setdefault(voice, []).append(text)
        return out


def check(course: Course) -> dict[str, Checked]:
    """Render every track's script and find every sound, before anything is spoken.

    Return, by file name, what each track's script read and what it says.
    """
    found: dict[str, Checked] = {}
    problems = problems_of(course, found)
    if problems:
        raise ConfigError.at(str(course.path), None, None, "; ".join(problems), problems)
    return found


def problems_of(
    course: Course, found: dict | None = None, skip: set[int] | frozenset[int] = frozenset()
) -> list[str]:
    """Return every problem a build would meet in the course's tracks and covers."""
    from .mix import check as check_levels
    from .pipeline import check_request, spoken
    from .tags import check_cover

    problems = []
    covers = {t.tags.get("cover") for t in course.tracks} | {course.cover}
    for cover in sorted(c for c in covers if c is not None):
        try:
            check_cover(cover)
        except CalmcastError as e:
            problems.append(f"cover: {e.format_message()}")
    voices: dict = {}
    for t in course.tracks:
        if t.number in skip:
            continue
        r = t.request
        try:
            check_request(r)
            check_levels(r.mix)
            practice = load_practice(r.practice, r.language, r.script_format)
            minutes = r.minutes if r.minutes is not None else practice.minutes
            script = render_script(practice, minutes, r.values)
            said = spoken(r, practice, script, voices)
            if found is not None:
                found[t.file] = Checked(said.script.sources, tuple(said.texts), tuple(said.names))
            if r.ambience:
                sounds.find(r.ambience, "ambience")
            sounds.bell_file(r.bell)
            sounds.bell_file(r.end_bell)
        except CalmcastError as e:
            problems.append(f"track {t.number} ({t.file}): {e.format_message()}")
    return problems


def fingerprint(course: Course, track: Track, read: tuple[str, ...] | None = None) -> str:
    """Return a hash of everything that decides a track's audio and tags.

    It names files by where they sit (beside the manifest, or among the built-ins) and by
    their content, never by their absolute path or time, so a clean clone elsewhere hashes
    alike. `read` is every file its script read (`check` returns them); without it, the
    practice and the templates beside it and among the built-ins.
    """
    r = track.request
    practice = find_practice(r.practice, r.language)
    language = load_practice(str(practice), None, r.script_format).language
    if read is not None:
        sources = sorted(Path(f) for f in read)
    else:
        shared = builtin_dir(language) or BUILTIN_DIR
        sources = sorted({practice, *practice.parent.glob("*.j2"), *shared.glob("*.j2")})
    root = course.path.parent.resolve()
    files = {
        "ambience": sounds.find(r.ambience, "ambience") if r.ambience else None,
        "bell": sounds.bell_file(r.bell),
        "end_bell": sounds.bell_file(r.end_bell),
        "cover": track.tags.get("cover"),
    }
    ambience, bell, end_bell = files["ambience"], files["bell"], files["end_bell"]
    portable = replace(
        r, practice=_portable(practice, root),
        values=dict(sorted(r.values.items())),
        voices=dict(sorted(r.voices.items())) if r.voices else r.voices,
        pronounce=dict(sorted(r.pronounce.items())) if r.pronounce else r.pronounce,
        ambience=_portable(ambience, root) if ambience else r.ambience,
        bell=_portable(bell, root) if bell else r.bell,
        end_bell=_portable(end_bell, root) if end_bell else r.end_bell,
    )  # fmt: skip
    blob = {
        "version": __version__,
        "request": repr(portable),
        "voice": r.voice or default_voice_name(language),
        "title": track.title,
        "description": track.description,
        "tags": {k: str(v) if k != "cover" else None for k, v in sorted(track.tags.items())},
        "sources": {_portable(p, root): _digest(p) for p in sources},
        "files": {k: [_portable(v, root), _digest(v)] for k, v in files.items() if v},
    }
    recorded = _recorded_digests(r)
    if recorded:  # only then, so other courses' fingerprints stay as they were
        blob["recorded"] = recorded
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _recorded_digests(r: Request) -> dict[str, str]:
    """Return the clips' hash of each recorded voice a track names: a retake rebuilds it."""
    from .voices.recorded import Folder, find

    out = {}
    for name in [r.voice, *(r.voices or {}).values()]:
        if not name:
            continue
        ref = name.removeprefix("recorded:")
        if name.startswith("recorded:") or (Path(name).expanduser() / "voice.json").is_file():
            try:
                out[name] = Folder.open(find(ref)).digest()
            except CalmcastError:
                out[name] = "missing"
    return out


def _portable(path: str | Path, root: Path) -> str:
    """Return a file's name as it holds on any machine: beside the manifest, or built in."""
    path = Path(path).resolve()
    for base, label in ((root, "course"), (BUILTIN_DIR.parent.resolve(), "calmcast"),
                        (sounds.library_dir().resolve(), "sounds")):  # fmt: skip
        if path.is_relative_to(base):
            return f"{label}:{path.relative_to(base).as_posix()}"
    return str(path)


def _digest(path: str | Path) -> str:
    st = os.stat(path)
    return _digest_of(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
