"""Captions and chapters from the timeline: we know when every sentence is spoken.

Each sentence is a cue from the moment it starts to the moment it ends; a sentence too long
for two lines of 42 characters is shared over several cues, its time divided by length.
Chapters follow the Podcasting 2.0 JSON chapters format, at the same milliseconds as the
MP3's ID3 chapters. When several voices read, each WebVTT cue names its speaker (`<v Ana>`)
and a SubRip cue starts with the name where the speaker changes ("Ana: ...").
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..model import Bell, Speech, Timeline

#: The longest caption line, characters, and the most lines a cue has.
LINE = 42
LINES = 2
#: How many characters longer a line may be to end at punctuation rather than mid-phrase.
PUNCTUATION_BONUS = 8


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    lines: tuple[str, ...]
    speaker: str = ""  # who says it, when several voices read
    turn: bool = False  # the first cue of its speaker after another's


def cues(timeline: Timeline, speakers: Mapping[str, str] | None = None) -> list[Cue]:
    """Return a cue per sentence (or per piece of a long one), in order.

    `speakers` names each role's speaker (given when several voices read).
    """
    rate = timeline.sample_rate
    out: list[Cue] = []
    last = None
    for e in timeline.events:
        if isinstance(e.segment, Speech):
            role = e.segment.role
            speaker = speakers.get(role, "") if speakers else ""
            pieces = screens(e.segment.text)
            total = sum(len(" ".join(p)) for p in pieces) or 1
            start = e.start
            for i, piece in enumerate(pieces):
                share = len(" ".join(piece)) / total
                end = e.end if i == len(pieces) - 1 else start + round(e.length * share)
                turn = bool(speaker) and role != last
                out.append(Cue(_ms(start, rate), _ms(end, rate), piece, speaker, turn))
                start, last = end, role
    return out


def _ms(samples: int, rate: int) -> float:
    return round(samples * 1000 / rate) / 1000


def screens(text: str, width: int = LINE, lines: int = LINES) -> list[tuple[str, ...]]:
    """Return `text` as screens of at most `lines` lines of at most `width` characters.

    Lines break between words, balanced within a screen; a word longer than a line is cut.
    """
    words = []
    for word in text.split():
        words += [word[i : i + width] for i in range(0, len(word), width)]
    out, rows = [], _fill(words, width)
    for i in range(0, len(rows), lines):
        chunk = " ".join(rows[i : i + lines]).split()
        out.append(tuple(_balanced(chunk, width, lines)))
    return out


def _fill(words: list[str], width: int) -> list[str]:
    rows, row = [], ""
    for word in words:
        if row and len(row) + 1 + len(word) > width:
            rows.append(row)
            row = word
        else:
            row = f"{row} {word}" if row else word
    return [*rows, row] if row else rows


def _balanced(words: list[str], width: int, lines: int) -> list[str]:
    """Return `words` on at most `lines` lines, the longest line as short as it can be."""
    if lines != 2 or len(" ".join(words)) <= width:
        return _fill(words, width)
    best = None
    for cut in range(1, len(words)):
        a, b = " ".join(words[:cut]), " ".join(words[cut:])
        if len(a) > width or len(b) > width:
            continue
        # A line that ends at a comma or a full stop reads better, even if a little longer.
        score = max(len(a), len(b)) + (0 if a[-1] in ",;:.!?" else PUNCTUATION_BONUS)
        if best is None or score < best[0]:
            best = (score, [a, b])
    return best[1] if best else _fill(words, width)


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _vtt_text(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _voice_tag(name: str) -> str:
    """Return `<v name>`: a WebVTT voice span's annotation cannot hold > or a new line."""
    return f"<v {' '.join(name.replace('>', ' ').replace('&', ' and ').split())}>"


def webvtt(timeline: Timeline, speakers: Mapping[str, str] | None = None) -> str:
    """Return the captions as WebVTT, each cue's speaker named when several voices read."""
    import webvtt as vtt

    doc = vtt.WebVTT()
    for cue in cues(timeline, speakers):
        text = "\n".join(_vtt_text(x) for x in cue.lines)
        if cue.speaker:
            text = _voice_tag(cue.speaker) + text
        doc.captions.append(vtt.Caption(_clock(cue.start), _clock(cue.end), text))
    return doc.content.rstrip("\n") + "\n"


def srt(timeline: Timeline, speakers: Mapping[str, str] | None = None) -> str:
    """Return the captions as SubRip; a cue where the speaker changes starts with the name."""
    import webvtt as vtt

    doc = vtt.WebVTT()
    for cue in cues(timeline, speakers):
        lines = list(cue.lines)
        if cue.turn:
            lines[0] = f"{cue.speaker}: {lines[0]}"
        doc.captions.append(vtt.Caption(_clock(cue.start), _clock(cue.end), "\n".join(lines)))
    buffer = io.StringIO()
    doc.write(buffer, format="srt")
    text = buffer.getvalue().rstrip("\n")
    return text + "\n" if text else ""


def chapter_marks(timeline: Timeline) -> list[tuple[float, str]]:
    """Return (start seconds, title) per chapter, at the ID3 chapters' milliseconds."""
    return [(round(a * 1000 / timeline.sample_rate) / 1000, t) for t, a, _ in timeline.chapters]


def chapters_vtt(timeline: Timeline) -> str:
    """Return the chapters as a WebVTT chapters track (kind="chapters")."""
    import webvtt as vtt

    doc = vtt.WebVTT()
    rate = timeline.sample_rate
    for title, a, b in timeline.chapters:
        doc.captions.append(
            vtt.Caption(_clock(_ms(a, rate)), _clock(_ms(b, rate)), _vtt_text(title))
        )
    return doc.content.rstrip("\n") + "\n"


def chapters_json(timeline: Timeline, title: str | None = None) -> str:
    """Return the chapters in the Podcasting 2.0 JSON chapters format (version 1.2.0)."""
    doc: dict = {"version": "1.2.0"}
    if title:
        doc["title"] = title
    doc["chapters"] = [{"startTime": start, "title": t} for start, t in chapter_marks(timeline)]
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def outline(timeline: Timeline) -> list[list]:
    """Return the session as [kind, start, end] runs (speech, bell), seconds: for pictures."""
    rate = timeline.sample_rate
    runs: list[list] = []
    for e in timeline.events:
        if isinstance(e.segment, Speech):
            start, end = _ms(e.start, rate), _ms(e.end, rate)
            if runs and runs[-1][0] == "speech" and start - runs[-1][2] < 1.5:
                runs[-1][2] = end  # a breath between sentences is still speech, drawn
            else:
                runs.append(["speech", start, end])
        elif isinstance(e.segment, Bell):
            runs.append(["bell", _ms(e.start, rate), _ms(e.start, rate)])
    return runs
