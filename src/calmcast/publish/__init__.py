"""A course's output folder as a publishable library: sidecars per track, files for the folder.

Beside each MP3: captions (`.vtt`, `.srt`), Podcasting 2.0 chapters (`.chapters.json`) and
the same chapters as a WebVTT chapters track (`.chapters.vtt`, for `<track kind="chapters">`).
In the folder: `playlist.m3u8`, `feed.xml` (RSS 2.0 with the iTunes and Podcasting 2.0
namespaces), `index.html` (a listening page that needs nothing from elsewhere) and
`manifest.json` (every file with the hash of its inputs, its length, loudness and tags).
All of it is written from the build's records, so it is the same whoever made the tracks.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import captions

if TYPE_CHECKING:
    from ..course import Course, Track
    from ..session import Result

#: What a build writes in the folder, from the tracks' records.
NAMES = ("playlist.m3u8", "feed.xml", "index.html", "manifest.json")


def sidecars(result: Result, track: Track) -> dict[str, str]:
    """Return the files that go beside a track's MP3: captions and chapters, by name."""
    timeline, speakers = result.plan.timeline, result.plan.speakers
    return {
        f"{track.stem}.vtt": captions.webvtt(timeline, speakers),
        f"{track.stem}.srt": captions.srt(timeline, speakers),
        f"{track.stem}.chapters.json": captions.chapters_json(timeline, track.title),
        f"{track.stem}.chapters.vtt": captions.chapters_vtt(timeline),
    }


def _finite(x: float) -> float | None:
    return round(x, 2) if math.isfinite(x) else None


def facts(result: Result, track: Track) -> dict:
    """Return what the publishing files need to know of a made track, as plain JSON values."""
    from ..timeline import paragraphs, turns

    p = result.plan
    timeline = p.timeline
    rate = timeline.sample_rate
    return {
        "title": track.title,
        "seconds": round(result.seconds, 3),
        "loudness": _finite(result.loudness),
        "voice_loudness": _finite(result.voice_loudness),
        "true_peak": _finite(result.true_peak),
        "practice": p.practice.name,
        "language": p.practice.language,
        "about": p.practice.description,
        "voice": p.voice.name,
        "voices": {role: v.name for role, v in p.voices.items()},
        "minutes": round(p.minutes, 3),
        "tags": {
            "title": track.title,
            "artist": track.tags.get("artist") or (p.practice.guide or "calmcast"),
            "album": track.tags.get("album") or "",
            "track": track.tags.get("track"),
        },
        "chapters": [[start, title] for start, title in captions.chapter_marks(timeline)],
        "outline": captions.outline(timeline),
        "paragraphs": [
            [[round(e.start / rate, 3), round(e.end / rate, 3), e.text] for e in para]
            for para in paragraphs(timeline)
        ],
        "speakers": turns(paragraphs(timeline), p.speakers),
    }


def source_date() -> datetime | None:
    """Return $SOURCE_DATE_EPOCH as a date-time, when it is set."""
    from ..errors import ConfigError

    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value), timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise ConfigError(
            f"SOURCE_DATE_EPOCH={value[:30]!r}: expected seconds since 1970 (as `date +%s` prints)"
        ) from None


def cover_name(course: Course) -> str | None:
    """Return the course cover's name in the folder, by what the image is (not its name)."""
    if not course.cover:
        return None
    with open(course.cover, "rb") as f:
        return "cover.png" if f.read(8) == b"\x89PNG\r\n\x1a\n" else "cover.jpg"


def contents(course: Course, folder: Path, records: dict[str, dict]) -> dict[str, bytes]:
    """Return the folder's publishing files, by name, as they should read."""
    from . import feed, page

    files = [(t, records[t.file]) for t in course.tracks]
    return {
        "playlist.m3u8": playlist(course, files).encode("utf-8"),
        "feed.xml": feed.rss(course, files, cover_name(course)),
        "index.html": page.html(course, files, cover_name(course)).encode("utf-8"),
        "manifest.json": manifest(course, files).encode("utf-8"),
    }


def write_all(course: Course, folder: Path, records: dict[str, dict]) -> list[str]:
    """Write the publishing files (and the cover) where they changed; return those written."""
    from ..output import write_small

    if course.base_url == "":
        import logging

        logging.getLogger(__name__).info(
            "%s: no base_url, so the feed's links are relative: podcast apps need base_url",
            course.path,
        )
    written = []
    files = contents(course, folder, records)
    cover = cover_name(course)
    if cover and course.cover:
        files[cover] = course.cover.read_bytes()
    for name, body in files.items():
        if write_small(folder / name, body):
            written.append(name)
    return written


def playlist(course: Course, files) -> str:
    from urllib.parse import quote

    lines = ["#EXTM3U", f"#PLAYLIST:{course.title}"]
    for t, record in files:
        who = f"{course.guide} - " if course.guide else ""
        lines += [f"#EXTINF:{round(record['seconds'])},{who}{t.title}", quote(t.file)]
    return "\n".join(lines) + "\n"


def manifest(course: Course, files) -> str:
    """Return manifest.json: the course, and every file with its inputs' hash and figures."""
    doc = {
        "version": 1,
        "course": {
            "title": course.title,
            "guide": course.guide,
            "author": course.author,
            "description": course.description,
            "language": course.language,
            "base_url": course.base_url or None,
            "cover": cover_name(course),
        },
        "files": [
            {
                "file": t.file,
                "track": t.number,
                "length": t.length or None,
                "title": t.title,
                "description": t.description,
                "date": t.date.isoformat() if t.date else None,
                "inputs": r["build"],
                "bytes": r["size"],
                "sha256": r["sha256"],
                "seconds": r["seconds"],
                "loudness": r["loudness"],
                "voice_loudness": r["voice_loudness"],
                "true_peak": r["true_peak"],
                "practice": r["practice"],
                "voice": r["voice"],
                **({"voices": r["voices"]} if len(r.get("voices") or ()) > 1 else {}),
                "tags": r["tags"],
                "captions": [f"{t.stem}.vtt", f"{t.stem}.srt"],
                "chapters": f"{t.stem}.chapters.json",
            }
            for t, r in files
        ],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
