"""Domain types: what a practice is made of, and where each piece lands in time.

Times are whole samples at the render's sample rate inside the timeline, and seconds
(floats) at the edges where people read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Place:
    """Where a segment came from, for error messages."""

    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")


#: The role that speaks a practice with no [voices] of its own, and any text before a
#: practice's first `[voice ROLE]`.
DEFAULT_ROLE = "guide"


@dataclass(frozen=True)
class Role:
    """A voice a practice is read in: its name in `[voice NAME]`, the voice it asks for (empty:
    the session's), and the speaker's name in captions."""

    name: str
    voice: str = ""
    speaker: str = ""

    @property
    def shown(self) -> str:
        return self.speaker or self.name.replace("-", " ").replace("_", " ").capitalize()


@dataclass(frozen=True)
class Speech:
    """One utterance: a sentence (or a bounded piece of a very long one)."""

    text: str
    place: Place | None = None
    role: str = DEFAULT_ROLE  # who says it: a role of the practice's [voices]


class PauseKind(str, Enum):
    """Why a silence is there: written in the script, or put there by calmcast."""

    PAUSE = "pause"  # a [pause] marker
    BREATH = "breath"  # between two sentences
    PARAGRAPH = "paragraph"  # between two paragraphs
    LEAD_IN = "lead-in"  # before the first sound
    LEAD_OUT = "lead-out"  # after the last
    RING_OUT = "ring-out"  # long enough for the closing bell to die away
    STRIKE = "strike"  # between two strikes of one bell

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Pause:
    """A silence of `minimum` seconds, growing up to `maximum` (inf: no limit) when elastic."""

    minimum: float
    maximum: float
    weight: float = 1.0
    kind: PauseKind = PauseKind.PAUSE
    place: Place | None = None

    @property
    def elastic(self) -> bool:
        return self.maximum > self.minimum

    @property
    def unbounded(self) -> bool:
        return math.isinf(self.maximum)


@dataclass(frozen=True)
class Bell:
    """A bell struck at this point; its ring overlaps whatever follows."""

    name: str | None = None
    place: Place | None = None


@dataclass(frozen=True)
class Chapter:
    """A chapter starting at this point."""

    title: str
    place: Place | None = None


Segment = Speech | Pause | Bell | Chapter


@dataclass(frozen=True)
class Variable:
    """A variable a practice declares in its front matter."""

    name: str
    default: object
    help: str = ""
    choices: tuple[str, ...] = ()  # when given, the only values a listener may set


@dataclass(frozen=True)
class Timing:
    """Default silences the script format inserts on its own, in seconds."""

    pause: float = 3.0
    breath: float = 0.9
    paragraph: float = 2.5
    lead_in: float = 3.0
    lead_out: float = 4.0


@dataclass(frozen=True)
class Practice:
    """A practice template with its front matter, before rendering."""

    name: str
    path: str
    source: str
    title: str
    description: str = ""
    minutes: float | None = None
    min_minutes: float | None = None
    max_minutes: float | None = None
    variables: tuple[Variable, ...] = ()
    timing: Timing = field(default_factory=Timing)
    front_matter_lines: int = 0
    guide: str = ""  # the teacher whose practice it is: the artist tag
    album: str = ""
    language: str = ""  # the language it is written in, when it says
    pronounce: dict[str, str] = field(default_factory=dict)  # respellings for the voice
    roles: tuple[Role, ...] = ()  # its [voices], the first the default; none: one guide

    @property
    def default_role(self) -> str:
        """Return the role that speaks until the first `[voice ROLE]`."""
        return self.roles[0].name if self.roles else DEFAULT_ROLE

    def role(self, name: str) -> Role | None:
        """Return the role the front matter declares as `name`, if it does."""
        return next((r for r in self.roles if r.name == name), None)


@dataclass(frozen=True)
class Script:
    """A rendered practice: its segments in order, ready to be timed."""

    practice: Practice
    segments: tuple[Segment, ...]
    values: dict
    text: str
    sources: tuple[str, ...] = ()  # every file the template read: itself and its includes
    roles: dict[str, Place | None] = field(default_factory=dict)  # each role spoken, where first

    @property
    def speech(self) -> tuple[Speech, ...]:
        return tuple(s for s in self.segments if isinstance(s, Speech))


@dataclass(frozen=True)
class Event:
    """A segment placed on the timeline, in samples."""

    segment: Segment
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def text(self) -> str:
        """Return the words spoken in this event ("" for anything but speech)."""
        return self.segment.text if isinstance(self.segment, Speech) else ""


@dataclass(frozen=True)
class Timeline:
    """Every segment placed in time; `length` is the finished file's length in samples."""

    events: tuple[Event, ...]
    length: int
    sample_rate: int

    def seconds(self, samples: int) -> float:
        return samples / self.sample_rate

    @property
    def duration(self) -> float:
        return self.length / self.sample_rate

    @property
    def chapters(self) -> list[tuple[str, int, int]]:
        """Return (title, start, end) in samples for every chapter."""
        marks = [(e.segment.title, e.start) for e in self.events if isinstance(e.segment, Chapter)]
        out = []
        for i, (title, start) in enumerate(marks):
            end = marks[i + 1][1] if i + 1 < len(marks) else self.length
            out.append((title, start, end))
        return out
