"""index.html: a listening page for the course that asks nothing of any other site.

Every track has a player, its length and description, a chapter list that seeks the player,
its transcript (the sentence being spoken is marked as it plays) and a small picture of
where it speaks, where it is silent and where a bell rings, drawn as inline SVG.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ..durations import format_duration

#: The timeline picture's width in SVG units.
WIDTH = 1000


def html(course, files, cover: str | None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["url"] = lambda name: quote(name)
    tracks = [_track(t, r) for t, r in files]
    total = sum(r["seconds"] for _, r in files)
    count = len({t.number for t, _ in files})
    return env.get_template("page.html.j2").render(
        course=course, tracks=tracks, cover=cover, total=format_duration(round(total)),
        count=count, files=len(files),
    )  # fmt: skip


def _clock(seconds: float) -> str:
    s = round(seconds)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def _track(t, record) -> dict:
    seconds = record["seconds"] or 1.0
    x = lambda s: float(f"{s * WIDTH / seconds:.1f}")  # noqa: E731
    speech = [(x(a), max(0.5, x(b) - x(a))) for kind, a, b in record["outline"] if kind == "speech"]
    bells = [x(a) for kind, a, _ in record["outline"] if kind == "bell"]
    spoken = sum(b - a for kind, a, b in record["outline"] if kind == "speech")
    return {
        "id": t.stem,
        "file": t.file,
        "title": t.title,
        "number": t.number,
        "description": t.description,
        "length": format_duration(round(record["seconds"])),
        "seconds": record["seconds"],
        "chapters": [(s, title, _clock(s)) for s, title in record["chapters"]],
        "chapter_marks": [x(s) for s, _ in record["chapters"][1:]],
        "paragraphs": record["paragraphs"],
        "speakers": record.get("speakers") or [""] * len(record["paragraphs"]),
        "speech": speech,
        "bells": bells,
        "share": f"{spoken / seconds:.0%}",
        "loudness": record["voice_loudness"],
        "stem": t.stem,
    }
