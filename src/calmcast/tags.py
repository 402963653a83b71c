"""ID3 tags with mutagen: the title and guide, the transcript, chapters, cover, provenance."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCON,
    TIT2,
    TLEN,
    TPE1,
    TRCK,
    TXXX,
    USLT,
    CTOCFlags,
)

from .errors import OutputError

log = logging.getLogger(__name__)

MAX_CHAPTERS = 255  # CTOC counts its children in one byte


@dataclass(frozen=True)
class Tags:
    """What the finished file says about itself."""

    title: str
    artist: str = "calmcast"
    album: str = ""
    description: str = ""
    track: str | None = None  # "3" or "3/8"
    length_ms: int = 0
    transcript: str = ""
    language: str = "eng"  # ISO 639-2, for USLT and COMM
    chapters: tuple[tuple[str, int, int], ...] = ()  # title, start ms, end ms
    cover: Path | None = None
    made: dict[str, str] = field(default_factory=dict)  # TXXX provenance, e.g. calmcast:voice


def write_tags(path: str | Path, tags: Tags, version: int = 3) -> None:
    """Write `tags` into the MP3 at `path` as ID3v2.`version` (3 or 4)."""
    id3 = ID3()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TPE1(encoding=3, text=tags.artist))
    if tags.album:
        id3.add(TALB(encoding=3, text=tags.album))
    id3.add(TCON(encoding=3, text="Meditation"))
    if tags.track:
        id3.add(TRCK(encoding=3, text=str(tags.track)))
    id3.add(TLEN(encoding=3, text=str(tags.length_ms)))
    if tags.description:
        id3.add(COMM(encoding=3, lang=tags.language, desc="", text=tags.description))
    if tags.transcript:
        id3.add(USLT(encoding=3, lang=tags.language, desc="transcript", text=tags.transcript))
    chapters = list(tags.chapters)
    if len(chapters) > MAX_CHAPTERS:
        log.warning("%d chapters; ID3 holds %d, the rest are dropped", len(chapters), MAX_CHAPTERS)
        chapters = chapters[:MAX_CHAPTERS]
    if chapters:
        ids = [f"chp{i:03d}" for i in range(len(chapters))]
        id3.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text=tags.title)],
            )
        )
        for eid, (title, start, end) in zip(ids, chapters, strict=True):
            id3.add(
                CHAP(
                    element_id=eid,
                    start_time=start,
                    end_time=end,
                    start_offset=0xFFFFFFFF,
                    end_offset=0xFFFFFFFF,
                    sub_frames=[TIT2(encoding=3, text=title)],
                )
            )
    if tags.cover:
        id3.add(_cover(Path(tags.cover)))
    for key, value in tags.made.items():
        id3.add(TXXX(encoding=3, desc=key, text=str(value)))
    id3.save(str(path), v2_version=version)


def _cover(path: Path) -> APIC:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OutputError(f"{path}: cannot read the cover image: {e.strerror}") from e
    if data.startswith(b"\xff\xd8"):
        mime = "image/jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    else:
        raise OutputError(f"{path}: the cover must be a JPEG or PNG image")
    return APIC(encoding=3, mime=mime, type=3, desc="Cover", data=data)


def check_cover(path: str | Path | None) -> None:
    """Fail early on a cover that cannot be used."""
    if path is not None:
        _cover(Path(path))
