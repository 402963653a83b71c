"""ID3 tags with mutagen: the title and guide, the transcript, chapters, cover, provenance."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCON,
    TIT2,
    TLAN,
    TLEN,
    TPE1,
    TRCK,
    TXXX,
    USLT,
    CTOCFlags,
)

from .errors import OutputError
from .languages import iso639_2
from .model import Timeline
from .timeline import paragraphs, turns

if TYPE_CHECKING:
    from .session import Output, Result

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
    language: str = "eng"  # ISO 639-2, for TLAN, USLT and COMM
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
    id3.add(TLAN(encoding=3, text=tags.language))
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


def session_tags(result: Result, output: Output) -> Tags:
    """Return the tags of a finished session: what was asked, what it says, how it measured."""
    from . import __version__

    p, request = result.plan, result.plan.request
    rate = p.timeline.sample_rate
    ms = lambda samples: round(samples * 1000 / rate)  # noqa: E731
    made = {
        "calmcast:practice": p.practice.name,
        "calmcast:minutes": f"{p.minutes:.3f}",
        "calmcast:voice": p.voice.name,
        "calmcast:ambience": request.ambience or "none",
        "calmcast:version": __version__,
        "calmcast:loudness": _figure(result.loudness, "LUFS"),
        "calmcast:voice-loudness": _figure(result.voice_loudness, "LUFS"),
        "calmcast:true-peak": _figure(result.true_peak, "dBTP"),
    }
    if len(p.voices) > 1:
        made["calmcast:voices"] = ", ".join(f"{role}={v.name}" for role, v in p.voices.items())
    if output.build:
        made["calmcast:build"] = output.build
    if p.script.values:
        made["calmcast:values"] = ", ".join(f"{k}={v}" for k, v in sorted(p.script.values.items()))
    return Tags(
        title=output.title or p.practice.title,
        artist=output.artist or p.practice.guide or "calmcast",
        album=output.album or p.practice.album,
        description=output.description or p.practice.description,
        track=output.track,
        length_ms=ms(p.timeline.length),
        transcript=transcript(p.timeline, p.speakers),
        language=iso639_2(p.practice.language),
        chapters=tuple((title, ms(a), ms(b)) for title, a, b in p.timeline.chapters),
        cover=output.cover,
        made=made,
    )


def _figure(value: float, unit: str) -> str:
    return f"{value:.1f} {unit}" if math.isfinite(value) else "none"


def transcript(timeline: Timeline, speakers: Mapping[str, str] | None = None) -> str:
    """Return the spoken text, a paragraph per paragraph of speech, as the USLT transcript.

    With `speakers` (several voices read), a paragraph where the speaker changes starts
    with the speaker's name, as a script does: "Ana: Welcome."
    """
    paras = paragraphs(timeline)
    names = turns(paras, speakers or {})
    return "\n\n".join((f"{name}: " if name else "") + " ".join(e.text for e in para)
                         for name, para in zip(names, paras, strict=True))  # fmt: skip
