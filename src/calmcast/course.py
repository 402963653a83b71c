"""A course: one manifest in, a folder of tagged MP3s out, rebuilt only where something changed.

Every track is read and checked before anything is spoken, so a typo in track 9 fails in a
second, not after eight tracks of audio.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path

from . import __version__, settings, sounds
from .errors import CalmcastError, ConfigError
from .mix import MixSettings
from .practice import BUILTIN_DIR, find_practice, load_practice
from .script import render_script
from .session import Request
from .voices import default_voice_name, open_voice

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
#: Apple Podcasts' top-level categories.
CATEGORIES = (
    "Arts", "Business", "Comedy", "Education", "Fiction", "Government", "History",
    "Health & Fitness", "Kids & Family", "Leisure", "Music", "News", "Religion & Spirituality",
    "Science", "Society & Culture", "Sports", "Technology", "True Crime", "TV & Film",
)  # fmt: skip


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


def _slug(text: str, empty: str = "track") -> str:
    """Return text as a file name: accents dropped (Über -> uber), at most 80 characters."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:80].strip("-") or empty


#: The largest manifest calmcast reads, bytes.
MAX_MANIFEST_BYTES = 256_000
#: The most tracks one course may have, and the most lengths one track may be offered at.
MAX_TRACKS = 1000
MAX_LENGTHS = 12
#: The most files one course makes (its tracks at all their lengths).
MAX_FILES = 1000
#: The most problems one message lists.
MAX_PROBLEMS = 20


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


def _read(path: Path) -> dict:
    try:
        if not path.is_file():  # a FIFO or a device would block or never end
            raise ConfigError(f"{path}: not a regular file")
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_MANIFEST_BYTES // 1000} kB")
        return tomllib.loads(raw.decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the course: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start + 1})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from e
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def default_folder(course: Course) -> Path:
    """Return where a course is built when no folder is named: output/COURSE-TITLE."""
    return Path("output") / _slug(course.title, "course")


def load_course(path: str | Path, trusted: bool = False) -> Course:
    """Return the course in the manifest at `path`, with every problem reported at once.

    Every file it names (practice, ambience, bell, cover) must lie inside the manifest's
    folder tree unless `trusted`; track files are plain names inside the output folder.
    """
    path = Path(path)
    data = _read(path)
    problems: list[str] = []
    for key in data:
        if key not in _COURSE_KEYS:
            problems.append(f"unknown key {key!r}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("title: expected the course's title")
        title = path.stem
    about = _publishing(data, path, problems, trusted)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("defaults: expected a table")
        defaults = {}
    for key in defaults:
        if key not in _SETTINGS and key != "set":
            problems.append(f"defaults: unknown key {key!r}")
    base = _settings(defaults, path, "defaults: ", problems, trusted)
    if isinstance(defaults.get("set", {}), dict):
        base["set"] = _values(defaults.get("set", {}))
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
    context = {"title": title.strip(), "guide": about["guide"], "cover": about["cover"]}
    for i, raw in enumerate(raw_tracks, start=1):
        if not isinstance(raw, dict):
            problems.append(f"track {i}: expected a table")
            continue
        tracks += _tracks(i, raw, base, context, path, problems, trusted)
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
    course = Course(path, title.strip(), tracks=tuple(tracks), **about)
    if problems:
        if not over:  # the tracks that did load are checked too: every problem at once
            problems += problems_of(course)
        shown = problems[:MAX_PROBLEMS]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        raise ConfigError("; ".join(f"{path}: {p}" for p in shown) + more, file=str(path),
                          reason="; ".join(shown) + more, problems=problems)  # fmt: skip
    return course


def _publishing(data: dict, manifest: Path, problems: list, trusted: bool) -> dict:
    """Return the course's own fields: who made it and where it is published."""
    out: dict = {}
    checks = {
        "guide": settings.text(200, expect="the guide's name"),
        "author": settings.text(200, expect="the author's name"),
        "description": settings.text(4000, expect="a description"),
        "copyright": settings.text(300, expect="a copyright line"),
        "base_url": settings.text(500, r"(?i)https?://[^\s\"'<>]+", "an http(s):// address"),
        "link": settings.text(500, r"(?i)https?://[^\s\"'<>]+", "an http(s):// address"),
        "language": settings.text(
            35, r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", "a language like en-GB"
        ),
        "email": settings.text(200, r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address"),
    }
    for key, check in checks.items():
        if key in data:
            try:
                out[key] = check(data[key]) if key != "description" else _paragraph(data[key])
            except ValueError as e:
                problems.append(f"{key}: {e}")
    for key in ("base_url", "link"):
        if out.get(key):
            try:
                out[key] = _address(out[key], folder=key == "base_url")
            except ValueError as e:
                problems.append(f"{key}: {e}")
                out.pop(key)
    out.setdefault("guide", "")
    out.setdefault("description", "")
    out.setdefault("author", out["guide"])
    if "explicit" in data:
        if isinstance(data["explicit"], bool):
            out["explicit"] = data["explicit"]
        else:
            problems.append(f"explicit: expected true or false, got {data['explicit']!r}")
    if "category" in data:
        category = data["category"]
        names = [category] if isinstance(category, str) else category
        if (
            not isinstance(names, list) or not 1 <= len(names) <= 2
            or not all(isinstance(n, str) for n in names) or names[0] not in CATEGORIES
        ):  # fmt: skip
            problems.append(
                f'category: expected an Apple Podcasts category like "Health & Fitness" or '
                f'["Health & Fitness", "Mental Health"] (one of {", ".join(CATEGORIES)}), '
                f"got {category!r}"
            )
        else:
            out["category"] = tuple(names)
    out["cover"] = None
    if data.get("cover") is not None:
        out["cover"] = _file(data["cover"], manifest, "cover", "", problems, trusted)
    return out


def _address(text: str, folder: bool) -> str:
    """Return an http(s) address as a feed can carry it; a folder's ends with /."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number from 0 to 65535") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s):// address, got {text!r}")
    if parts.username or parts.password:
        raise ValueError(f"{text!r}: an address with a user name or password would be published")
    if folder and (parts.query or parts.fragment):
        raise ValueError(f"{text!r}: the folder's address takes no ?query or #fragment")
    path = parts.path if not folder or parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path or "/", parts.query,
                       parts.fragment))  # fmt: skip


def _paragraph(value) -> str:
    if not isinstance(value, str) or len(value) > 4000:
        raise ValueError("expected text of at most 4000 characters")
    if settings.UNWRITABLE.search(value):
        raise ValueError("control characters are not allowed")
    return value.strip()


def _file(value, manifest: Path, key: str, where: str, problems: list, trusted: bool):
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}{key}: expected a file path")
        return None
    found = _inside(value, manifest, key, where, problems, trusted)
    if found is not None and not found.is_file():
        problems.append(f"{where}{key}: no such file {found}")
        return None
    return found


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
        if setting.is_file and isinstance(value, str) and _looks_like_path(value):
            if name == "cover":
                out[name] = _file(value, manifest, name, where, problems, trusted)
            else:  # a sound file beside the manifest; a built-in name stays a name
                found = _inside(value, manifest, name, where, problems, trusted)
                out[name] = str(found) if found else None
            continue
        try:
            out["minutes" if name in settings.LENGTH else name] = settings.parse(name, value)
        except ValueError as e:
            problems.append(f"{where}{name}: {e}")
    if all(n in table for n in settings.LENGTH):
        problems.append(f"{where}give minutes or duration, not both")
    return out


def _tracks(i, raw, base, course, manifest, problems, trusted) -> list[Track]:
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
    if _looks_like_path(practice):  # a template beside the manifest, never one elsewhere
        found = _inside(practice, manifest, "practice", where, problems, trusted)
        if found is None:
            return []
        ref = str(found)
    own = _settings(raw, manifest, where, problems, trusted)
    chosen = {**base, **own}  # a track's own length beats the course's, whichever key
    values = dict(base.get("set", {}))
    table = raw.get("set", {})
    if isinstance(table, dict):
        values.update(_values(table))
    else:
        problems.append(f'{where}set: expected a table like {{ colour = "blue" }}')
    # The title is a setting (the title tag), checked by the table with the others.
    title = own.get("title") or Path(practice).stem.replace("-", " ").capitalize()
    description = raw.get("description", "")
    try:
        description = _paragraph(description)
    except ValueError as e:
        problems.append(f"{where}description: {e}")
        description = ""
    date = _date(raw.get("date"), where, problems)
    file = raw.get("file") or f"{i:02d}-{_slug(str(title))}.mp3"
    if not _plain_file_name(file):
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
        label = _label(minutes) if several else ""
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


def _values(table: dict) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in table.items()}


def _label(minutes: float) -> str:
    """Return a length for a file name: 10min, or 12m30s."""
    seconds = round(minutes * 60)
    return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds // 60}m{seconds % 60:02d}s"


def _date(value, where: str, problems: list) -> datetime | None:
    """Return a track's date (a TOML date or date-time, or ISO text) as an aware date-time."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            problems.append(f"{where}date: expected a date like 2026-01-31, got {value!r}")
            return None
    if isinstance(value, datetime):
        return (
            value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        )
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    problems.append(f"{where}date: expected a date like 2026-01-31, got {value!r}")
    return None


def _plain_file_name(name) -> bool:
    """Return whether a track's file name stays in the output folder and clashes with nothing."""
    if not isinstance(name, str) or not name.lower().endswith(".mp3") or len(name) > 200:
        return False
    if "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        return False
    return not any(ord(c) < 32 for c in name)


@dataclass(frozen=True)
class Checked:
    """What checking a track found: every file its script read, and what it will say."""

    sources: tuple[str, ...]
    texts: tuple[str, ...]


def check(course: Course) -> dict[str, Checked]:
    """Render every track's script and find every sound, before anything is spoken.

    Return, by file name, what each track's script read and what it says.
    """
    found: dict[str, Checked] = {}
    problems = problems_of(course, found)
    if problems:
        raise ConfigError.at(str(course.path), None, None, "; ".join(problems), problems)
    return found


def problems_of(course: Course, found: dict | None = None) -> list[str]:
    """Return every problem a build would meet in the course's tracks and covers."""
    from .mix import check as check_levels
    from .pipeline import check_request
    from .tags import check_cover

    problems = []
    covers = {t.tags.get("cover") for t in course.tracks} | {course.cover}
    for cover in sorted(c for c in covers if c is not None):
        try:
            check_cover(cover)
        except CalmcastError as e:
            problems.append(f"cover: {e.format_message()}")
    voices = {}
    for t in course.tracks:
        r = t.request
        try:
            check_request(r)
            check_levels(r.mix)
            spec = (r.voice, r.wpm, r.pitch)
            if spec not in voices:
                voices[spec] = open_voice(*spec)
            practice = load_practice(r.practice)
            minutes = r.minutes if r.minutes is not None else practice.minutes
            script = render_script(practice, minutes, r.values, language=voices[spec].language)
            if found is not None:
                found[t.file] = Checked(script.sources, tuple(s.text for s in script.speech))
            if r.ambience:
                sounds.find(r.ambience, "ambience")
            if r.bell:
                sounds.find(r.bell, "bell")
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
    practice = find_practice(r.practice)
    if read is not None:
        sources = sorted(Path(f) for f in read)
    else:
        sources = sorted({practice, *practice.parent.glob("*.j2"), *BUILTIN_DIR.glob("*.j2")})
    root = course.path.parent.resolve()
    files = {
        "ambience": sounds.find(r.ambience, "ambience") if r.ambience else None,
        "bell": sounds.find(r.bell, "bell") if r.bell else None,
        "cover": track.tags.get("cover"),
    }
    portable = replace(
        r, practice=_portable(practice, root),
        **{k: _portable(v, root) for k, v in files.items() if k != "cover" and v},
    )  # fmt: skip
    blob = {
        "version": __version__,
        "request": repr(portable),
        "voice": r.voice or default_voice_name(),
        "title": track.title,
        "description": track.description,
        "tags": {k: str(v) if k != "cover" else None for k, v in sorted(track.tags.items())},
        "sources": {_portable(p, root): _digest(p) for p in sources},
        "files": {k: [_portable(v, root), _digest(v)] for k, v in files.items() if v},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


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
