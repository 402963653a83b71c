"""What a course build shows while it works: one status line on a terminal, a table at the end.

The status line (files done, those in progress, time left) is drawn on stderr only when
stderr is a terminal; a CI log gets the summary table and nothing else.
"""

from __future__ import annotations

import sys
import time

import click

from .durations import format_clock, format_duration


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

    def report(self, kind: str, item) -> None:
        if kind == "speech":
            self.speaking = item
        elif kind == "start":
            self.speaking = 0
            self.running.append(item.file)
        elif kind == "done":
            if item.track.file in self.running:
                self.running.remove(item.track.file)
            self.finished += 1
            if item.status == "made":
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
        for row in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        made = sum(1 for d in done if d.status == "made")
        fresh = sum(1 for d in done if d.status == "up to date")
        other = len(done) - made - fresh
        tail = f", {other} left to other shards" if shard and other else ""
        took = time.monotonic() - self.started
        click.echo(f"{folder}: {len(done)} files, {made} made, {fresh} up to date{tail}, "
                   f"{took:.1f} s")  # fmt: skip
