"""What a session is asked for (`Request`, `Output`) and what making it gives (`Plan`, `Result`).

These are plain values: `render.py` makes them, the CLI, a course build and the Python API
read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .mix.levels import Levels, MixSettings
from .model import Bell, Pause, Practice, Role, Script, Speech, Timeline

if TYPE_CHECKING:
    import pydub

    from .mix import LimiterStats
    from .progress import Progress
    from .sounds import Sound
    from .voices import Voice
    from .voices.speech import Utterance


@dataclass(frozen=True)
class Request:
    """Everything a listener can choose about one session: what is said and how it sounds."""

    practice: str
    minutes: float | None = None
    voice: str | None = None
    voices: dict[str, str] | None = None  # by role, for a practice read in several voices
    fallback_voice: str | None = None  # says what a recorded voice has no clip of
    strict_voice: bool = False  # ... or refuse when it has none
    language: str | None = None  # the built-in practice's version in it; None: its own
    script_format: str | None = None  # how to read the practice file; None: by its name
    wpm: float | None = None  # words a minute
    pitch: float | None = None
    values: dict[str, str] = field(default_factory=dict)
    ambience: str | None = None  # a built-in name, a file path, or None for voice only
    bell: str | None = None  # struck at the start and at the end
    interval_bell: float | None = None  # seconds between bells through the session
    bells: tuple[float, ...] | None = None  # times of bells from the opening bell, seconds
    strikes: int = 1  # strikes of every bell
    delay: float | None = None  # silence before the first bell; None: the practice's lead-in
    end_bell: str | None = None  # the closing bell, when it differs from the session's
    pronounce: dict[str, str] | None = None  # respellings over the practice's own
    mix: MixSettings = field(default_factory=MixSettings)


@dataclass(frozen=True)
class Output:
    """Where and how the finished file is written, and what its tags say."""

    path: Path
    id3_version: int = 3
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: str | None = None
    cover: Path | None = None
    description: str | None = None  # the comment tag; default: the practice's description
    build: str | None = None  # a course build's fingerprint, recorded for incremental builds


@dataclass
class Plan:
    """A practice fitted to its length, with its speech prepared and cached, ready to mix.

    `timeline` places every segment in samples; `rows()` gives it as plain rows in seconds.
    """

    practice: Practice
    script: Script
    voice: Voice
    timeline: Timeline
    speech: list[Utterance]
    bells: dict[str | None, Sound]
    request: Request
    voices: dict[str, Voice] = field(default_factory=dict)  # by role; `voice` is the first's
    #: The shortest and longest the session can last with this speech, seconds (inf: no
    #: limit): a slow reader's recording reaches a longer shortest.
    reach: tuple[float, float] | None = None

    @property
    def minutes(self) -> float:
        return self.timeline.duration / 60

    @property
    def seconds(self) -> float:
        return self.timeline.duration

    def rows(self) -> list[dict]:
        """Return the timeline as plain rows: kind, start, length (seconds) and text."""
        rows = []
        rate = self.timeline.sample_rate
        said = iter(self.speech)
        for e in self.timeline.events:
            seg = e.segment
            kind = seg.kind.value if isinstance(seg, Pause) else type(seg).__name__.lower()
            text = getattr(seg, "text", None) or getattr(seg, "title", None) or ""
            if isinstance(seg, Bell):
                text = seg.name
            row = {
                "kind": kind,
                "start": round(e.start / rate, 3),
                "length": round(e.length / rate, 3),
                "text": text,
            }
            if isinstance(seg, Speech):
                chosen = (self.voices.get(seg.role) or self.voice).name
                row["voice"] = next(said).voice or chosen
                row["role"] = seg.role
                if row["voice"] != chosen:
                    row["fallback"] = True  # a line the recording does not have
            rows.append(row)
        return rows

    @property
    def fallbacks(self) -> list[tuple[str, str]]:
        """Return (voice, text) for each line a recorded voice had no clip of."""
        return [(r["voice"], r["text"]) for r in self.rows() if r.get("fallback")]

    @property
    def voice_shown(self) -> str:
        """Return the voice, or each role's voice, as a summary line names them."""
        if len(self.voices) < 2:
            return self.voice.name
        return ", ".join(f"{v.name} ({role})" for role, v in self.voices.items())

    @property
    def speakers(self) -> dict[str, str]:
        """Return the name captions give each role's speaker, when more than one speaks."""
        if len(self.voices) < 2:
            return {}
        return {name: (self.practice.role(name) or Role(name)).shown for name in self.voices}

    def to_audiosegment(
        self, progress: Callable[[Progress], None] | None = None
    ) -> pydub.AudioSegment:
        """Return the finished session, mixed as a render mixes it, as a pydub AudioSegment.

        16-bit PCM at the session's sample rate and channels, with no MP3 encoding: the
        voice sits at the requested loudness and the peaks under the ceiling.
        """
        from .pipeline import mix_audio

        return mix_audio(self, progress)


@dataclass(frozen=True)
class Result:
    """A finished render, with the figures it was made to, measured as it was encoded."""

    path: Path
    plan: Plan
    seconds: float
    levels: Levels
    loudness: float  # the whole programme's integrated loudness, LUFS
    true_peak: float  # the programme's highest true peak, dBTP
    limiter: LimiterStats
    timings: dict[str, float]

    @property
    def voice_loudness(self) -> float:
        """Return the voice's loudness as the file reads, LUFS (-inf when nothing is spoken)."""
        levels = self.levels
        return levels.voice_lufs + levels.voice_gain - levels.codec_gain
