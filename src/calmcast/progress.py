"""What a render or a build says while it works.

`Progress` is what a `progress` callback is given, from the Python API and the CLI alike.
`BuildProgress` is the CLI's user of it for a course build: one status line on a terminal
(files done, those in progress, time left), drawn on stderr only when stderr is a terminal,
and a table at the end; a CI log gets the table and nothing else.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from enum import Enum

from .durations import format_clock, format_duration


class Stage(str, Enum):
    """What the work is doing."""

    SPEAKING = "speaking"  # done of total utterances spoken (or read from the cache)
    MIXING = "mixing"  # done of total seconds mixed (and encoded)
    STARTED = "started"  # a course's track started: `file`
    FINISHED = "finished"  # a course's track finished (`status`): done of total files

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Progress:
    """One report of a render's or a build's progress."""

    stage: Stage
    done: float = 0
    total: float = 0
    file: str | None = None  # in a build: the track's file
    status: str | None = None  # when a track finishes: a building.Status (made, up to date, ...)

    @property
    def fraction(self) -> float:
        """Return how much of this stage is done, 0 to 1."""
        return min(1.0, self.done / self.total) if self.total else 0.0


class RenderProgress:
    """A render's status line on stderr, drawn only on a terminal: speaking, then mixing."""

    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.drawn = 0.0

    def __enter__(self) -> RenderProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.live and self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def report(self, event: Progress) -> None:
        now = time.monotonic()
        if not self.live or (now - self.drawn < 0.1 and event.fraction < 1):
            return
        self.drawn = now
        if event.stage is Stage.SPEAKING:
            line = f"speaking {event.done:.0f} of {event.total:.0f} lines"
        else:
            line = f"mixing {_minutes(event.done)} of {_minutes(event.total)}"
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()


def _minutes(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


class BuildProgress:
    """A build's progress display; `report` is the build's callback."""

    def __init__(self, total: int, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.started = time.monotonic()
        self.first_made: float | None = None
        self.running: list[str] = []
        self.finished = 0
        self.made = 0
        self.speaking = 0

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def report(self, event: Progress) -> None:
        if event.stage is Stage.SPEAKING:
            self.speaking = int(event.total - event.done)
        elif event.stage is Stage.STARTED:
            self.speaking = 0
            self.running.append(event.file or "")
        elif event.stage is Stage.FINISHED:
            if event.file in self.running:
                self.running.remove(event.file)
            self.finished += 1
            if event.status == "made":
                self.made += 1
        self.draw()

    def left(self) -> str:
        """Return the time left, from the pace of the files made so far."""
        if not self.made:
            return ""
        elapsed = time.monotonic() - self.started
        todo = self.total - self.finished
        return f", about {format_duration(round(elapsed / self.made * todo))} left" if todo else ""

    def draw(self) -> None:
        if not self.live:
            return
        if self.speaking:
            line = f"speaking {self.speaking} new lines"
        else:
            now = ", ".join(self.running[:2]) + (" ..." if len(self.running) > 2 else "")
            line = f"[{self.finished}/{self.total}] {now}{self.left()}"
        import shutil

        width = max(20, shutil.get_terminal_size().columns - 1)
        self.stream.write("\r\x1b[K" + line[:width])
        self.stream.flush()

    def summary(self, done, folder, shard) -> None:
        """Print a table of every file: its length, loudness, peak, what happened and how long."""
        rows = [("file", "length", "voice", "peak", "status", "time")]
        for d in done:
            r = d.record or {}
            rows.append((
                d.track.file,
                format_clock(r["seconds"]) if r.get("seconds") is not None else "-",
                f"{r['voice_loudness']:.1f} LUFS" if r.get("voice_loudness") is not None else "-",
                f"{r['true_peak']:.1f} dBTP" if r.get("true_peak") is not None else "-",
                d.status,
                f"{d.seconds:.1f} s" if d.status == "made" else "",
            ))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        import click

        for row in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        made = sum(1 for d in done if d.status == "made")
        fresh = sum(1 for d in done if d.status == "up to date")
        other = len(done) - made - fresh
        tail = f", {other} left to other shards" if shard and other else ""
        took = time.monotonic() - self.started
        click.echo(f"{folder}: {len(done)} files, {made} made, {fresh} up to date{tail}, "
                   f"{took:.1f} s")  # fmt: skip
