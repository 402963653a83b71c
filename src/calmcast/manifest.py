"""A course manifest's fields: reading the TOML and checking what a person wrote in it.

Each check appends what is wrong to a list of problems, with the place (`track 3: date:`),
so that a manifest's every problem is reported at once. Files a manifest names must lie
inside its own folder unless it is trusted: a manifest may come from a stranger.
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from . import settings
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: Apple Podcasts' top-level categories.
CATEGORIES = (
    "Arts", "Business", "Comedy", "Education", "Fiction", "Government", "History",
    "Health & Fitness", "Kids & Family", "Leisure", "Music", "News", "Religion & Spirituality",
    "Science", "Society & Culture", "Sports", "Technology", "True Crime", "TV & Film",
)  # fmt: skip


def slug(text: str, empty: str = "track") -> str:
    """Return text as a file name: accents dropped (Über -> uber), at most 80 characters."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:80].strip("-") or empty


#: The largest manifest calmcast reads, bytes.
MAX_MANIFEST_BYTES = 256_000


def looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or bool(Path(ref).suffix)


def inside(ref: str, manifest: Path, key: str, where: str, problems: list, trusted: bool):
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


def read_manifest(path: Path) -> dict:
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


def publishing(data: dict, manifest: Path, problems: list, trusted: bool) -> dict:
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
                out[key] = check(data[key]) if key != "description" else paragraph(data[key])
            except ValueError as e:
                problems.append(f"{key}: {e}")
    for key in ("base_url", "link"):
        if out.get(key):
            try:
                out[key] = address(out[key], folder=key == "base_url")
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
        out["cover"] = named_file(data["cover"], manifest, "cover", "", problems, trusted)
    return out


def address(text: str, folder: bool) -> str:
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


def paragraph(value) -> str:
    if not isinstance(value, str) or len(value) > 4000:
        raise ValueError("expected text of at most 4000 characters")
    if settings.UNWRITABLE.search(value):
        raise ValueError("control characters are not allowed")
    return value.strip()


def named_file(value, manifest: Path, key: str, where: str, problems: list, trusted: bool):
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}{key}: expected a file path")
        return None
    found = inside(value, manifest, key, where, problems, trusted)
    if found is not None and not found.is_file():
        problems.append(f"{where}{key}: no such file {found}")
        return None
    return found


def values_of(table: dict) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in table.items()}


def length_label(minutes: float) -> str:
    """Return a length for a file name: 10min, or 12m30s."""
    seconds = round(minutes * 60)
    return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds // 60}m{seconds % 60:02d}s"


def date_of(value, where: str, problems: list) -> datetime | None:
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


def plain_file_name(name) -> bool:
    """Return whether a track's file name stays in the output folder and clashes with nothing."""
    if not isinstance(name, str) or not name.lower().endswith(".mp3") or len(name) > 200:
        return False
    if "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        return False
    return not any(ord(c) < 32 for c in name)
