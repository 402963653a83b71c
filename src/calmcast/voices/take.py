"""One continuous reading of a practice's lines, cut into a clip a line.

Silence alone cannot tell a reader's pause inside a line from the gap between two lines, so
the take is aligned with what it should say. It is read once, as a stream, into 10 ms levels;
its sounds are the runs above the room (gaps shorter than `JOIN` are inside a word or between
two); then a dynamic programme gives each line of the script a run of consecutive sounds, so
that the time spoken matches the line's expected time (its synthetic reading, scaled by the
reader's own pace) and as few long pauses as possible fall inside a line. A short sound that
fits no line (a breath, a cough, a chair) is dropped; a line that holds a listener's value
may be read with its default or left out. What does not fit is said with the line's number.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..durations import format_duration
from ..errors import VoiceError

log = logging.getLogger(__name__)

#: The levels are measured over this long, seconds.
HOP = 0.01
#: Silences shorter than this are inside a line's words: a sound runs across them, seconds.
JOIN = 0.3
#: The longest take read, seconds (a whole practice read slowly, with retakes).
MAX_TAKE = 3 * 3600.0
#: A take whose loud moments (its 95th percentile of levels) are below this holds no speech,
#: dBFS; nor one whose loud moments stand less far above its quiet ones (its 10th), dB.
SILENT, STANDS_OUT = -60.0, 15.0
#: Sound is what stands out from the room (its quietest tenth) by this much, dB ...
ABOVE_ROOM = 12.0
#: ... and lies within this far of the speech (its loud frames), never nearer than NEAREST.
BELOW_SPEECH, NEAREST = 40.0, 20.0
#: How far a line's spoken time may stray from its expected time before it is a fault, a
#: ratio: at first, then (once the reader's own consistency is measured) four times their
#: spread, but never under TIGHTEST.
STRAY, TIGHTEST = 1.7, 1.25
#: The costs the alignment weighs: the spread of a reader's time per line (natural log) ...
SPREAD = 0.35
#: ... a pause inside a line where the words have none, the least a pause costs, each of its seconds (lightly: a reader's pauses inside a
#: line and between lines overlap in length), a line with a value left out, and a fault.
INNER, INNER_LEAST, INNER_SECOND, OPTIONAL, FAULT = 2.0, 0.3, 0.3, 1.0, 12.0
#: A pause inside a line longer than this reader's usual (LONG_PAUSE times their tenth
#: longest, at least a second) costs LONG_COST more.
LONG_PAUSE, LONG_COST = 1.5, 6.0
#: A reader leaves at least this long between lines, seconds; a line that starts sooner after
#: the last word costs up to CLOSE.
BETWEEN, CLOSE = 0.6, 6.0
#: A dropped sound costs DROP plus (its seconds / DROP_SCALE) squared: a burst is cheap; one
#: longer than LONG seconds is speech that fits no line, a fault.
DROP, DROP_SCALE, LONG = 0.5, 0.3, 1.0
#: A sound quieter than the speech by this much (dB at its loudest) is a breath, not a word.
QUIET = 12.0
#: The most sounds one line may take, and sounds per expected line before a take is refused.
MOST_PIECES, MOST_PER_LINE = 16, 12
#: The most sounds times lines one import aligns (about a minute's work).
MOST_WORK = 3_000_000


@dataclass(frozen=True)
class Piece:
    """A run of sound in the take: start and end (seconds), and its loudest level (dBFS)."""

    start: float
    end: float
    peak: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Expected:
    """A line the take should hold: its number in the listing, words, and expected seconds."""

    number: int
    id: str
    text: str
    seconds: float
    optional: bool  # holds a listener's value: read with its default, or left out
    marks: tuple[float, ...] = ()  # where its synthetic reading pauses, shares of its time


@dataclass(frozen=True)
class Cut:
    """Where a line lies in the take: its first and last sound, seconds."""

    line: Expected
    start: float
    end: float


@dataclass
class Take:
    """A take read once: its 10 ms levels (dBFS), its samples on disk, its rate."""

    path: Path
    levels: np.ndarray
    rate: int
    _file: object

    @classmethod
    def read(cls, path: Path, rate: int) -> Take:
        """Decode any file ffmpeg reads to mono 16-bit at `rate`, streamed to a temporary file."""
        from ..encode import ffmpeg_exe

        if not path.is_file():
            raise VoiceError(f"{path}: not a regular file")
        hop = round(HOP * rate)
        tmp = tempfile.TemporaryFile(prefix="calmcast-take-")  # noqa: SIM115 (the take's life)
        levels: list[np.ndarray] = []
        proc = subprocess.Popen(
            [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-ac",
             "1", "-ar", str(rate), "-f", "s16le", "-t", str(MAX_TAKE + 1), "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        rest = b""
        total = 0
        try:
            while chunk := proc.stdout.read(hop * 2 * 1000):
                tmp.write(chunk)
                total += len(chunk)
                data = rest + chunk
                whole = len(data) // (hop * 2) * hop * 2
                rest = data[whole:]
                x = np.frombuffer(data[:whole], "<i2").astype(np.float32) / 32768
                levels.append(np.mean(x.reshape(-1, hop) ** 2, axis=1))
            said = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
            code = proc.wait(timeout=60)
        except BaseException:
            proc.kill()
            proc.wait()
            tmp.close()
            raise
        if code != 0 or total == 0:
            tmp.close()
            why = said[-1] if said else "no audio in it"
            if "matches no streams" in why:
                why = "it has no sound"
            raise VoiceError(f"{path}: not audio calmcast can read ({why[:120]})")
        if total > MAX_TAKE * rate * 2:
            tmp.close()
            raise VoiceError(f"{path}: longer than {format_duration(MAX_TAKE)}, the longest "
                             "take calmcast reads")  # fmt: skip
        power = np.concatenate(levels) if levels else np.zeros(0)
        return cls(path, 10 * np.log10(power + 1e-12), rate, tmp)

    @property
    def seconds(self) -> float:
        return len(self.levels) * HOP

    def samples(self, start: float, end: float) -> np.ndarray:
        """Return [start, end) seconds of the take as float32."""
        a = max(round(start * self.rate), 0)
        b = max(round(end * self.rate), a)
        f = self._file
        f.seek(a * 2)  # type: ignore[attr-defined]
        data = f.read((b - a) * 2)  # type: ignore[attr-defined]
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768

    def close(self) -> None:
        self._file.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Take:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def room_and_speech(levels: np.ndarray) -> tuple[float, float]:
    """Return the room's level (its quietest tenth) and the speech's (its loud frames), dBFS."""
    if len(levels) == 0:
        return -120.0, -120.0
    return float(np.percentile(levels, 10)), float(np.percentile(levels, 95))


def threshold(levels: np.ndarray) -> float:
    """Return the level above which a frame is sound, dBFS."""
    room, speech = room_and_speech(levels)
    return min(max(room + ABOVE_ROOM, speech - BELOW_SPEECH), speech - NEAREST)


def pieces(levels: np.ndarray, at: float | None = None) -> list[Piece]:
    """Return the runs of sound in `levels` (one a HOP), joined across gaps shorter than JOIN."""
    if len(levels) == 0:
        return []
    loud = levels > (threshold(levels) if at is None else at)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    join = round(JOIN / HOP)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < join:
            merged[-1][1] = b
        else:
            merged.append([int(a), int(b)])
    return [Piece(a * HOP, b * HOP, float(levels[a:b].max())) for a, b in merged]


def spoken(samples: np.ndarray, rate: int) -> tuple[float, tuple[float, ...]]:
    """Return how long `samples` speak (the sum of their runs of sound, as a take is
    measured) and where they pause, as shares of that time."""
    hop = round(HOP * rate)
    n = len(samples) // hop
    if n == 0:
        return 0.0, ()
    levels = 10 * np.log10(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    found = pieces(levels)
    total = sum(p.seconds for p in found)
    if not total:
        return len(samples) / rate, ()
    cumulative = np.cumsum([p.seconds for p in found])[:-1] / total
    return total, tuple(float(x) for x in cumulative)


def align(found: list[Piece], lines: list[Expected], pace: float, speech: float,
          spread: float = SPREAD, stray: float = STRAY, pause: float = math.inf,
          ) -> tuple[float, list[tuple[Expected, int, int] | None], list[int]]:  # fmt: skip
    """Return the cost, each line's run of pieces [a, b) (None: not read), and the pieces
    dropped, for the lines read at `pace` times their expected seconds.

    Every fault costs about FAULT (a line missing, a long sound that fits no line, a line
    whose time strays beyond STRAY), so the alignment chosen is the one with the fewest; a
    take that begins late or ends early is one fault however many lines it lacks there.
    """
    m, n = len(found), len(lines)
    seconds = np.array([p.seconds for p in found])
    starts = np.array([p.start for p in found])
    ends = np.array([p.end for p in found])
    drop = np.where(seconds <= LONG, DROP + (seconds / DROP_SCALE) ** 2, FAULT + seconds)
    quiet = np.array([p.peak for p in found]) < speech - QUIET
    drop[quiet & (seconds <= LONG)] = DROP * 0.4
    # How close each piece follows the last word before it (a breath between is no word).
    close = np.zeros(m)
    last_word = -math.inf
    for i, p in enumerate(found):
        close[i] = CLOSE * max(0.0, 1 - (p.start - last_word) / BETWEEN)
        if not quiet[i]:
            last_word = p.end
    stray = math.log(stray)
    inf = math.inf
    best = np.full((n + 1, m + 1), inf)
    how = np.zeros((n + 1, m + 1), np.int32)  # 0 drop a piece, -1 skip a line, -2 begin late
    best[0, 0] = 0.0
    for i in range(1, m + 1):
        best[0, i] = best[0, i - 1] + drop[i - 1]
    for j in range(1, n + 1):
        line = lines[j - 1]
        want = math.log(max(pace * line.seconds, 0.05))
        skip = OPTIONAL if line.optional else FAULT
        breaks = len(line.marks)
        row, prev, first = best[j], best[j - 1], best[0]
        for i in range(0, m + 1):
            c, h = prev[i] + skip, -1
            if j > 1 and first[i] + FAULT < c:
                c, h = first[i] + FAULT, -2
            if i:
                d = row[i - 1] + drop[i - 1]
                if d < c:
                    c, h = d, 0
            spoken, gaps = 0.0, 0.0
            for k in range(1, min(MOST_PIECES, i) + 1):
                a = i - k
                spoken += seconds[a]
                if k > 1:
                    # A reader pauses where the words do (as often as the synthetic reading
                    # does, cheaply); more often, or much longer than usual, costs more.
                    gap = starts[a + 1] - ends[a]
                    gaps += (INNER_LEAST if k - 1 <= breaks else INNER) + INNER_SECOND * gap
                    gaps += LONG_COST if gap > pause else 0.0
                before = prev[a]
                if before < inf:
                    off = math.log(spoken) - want
                    # A breath at either edge is left out, not made part of the line.
                    edges = INNER * (quiet[a] + (k > 1 and quiet[i - 1]))
                    cost = before + (off / spread) ** 2 + gaps + close[a] + edges + (
                        FAULT if abs(off) > stray else 0)  # fmt: skip
                    if cost < c:
                        c, h = cost, k
                if spoken > 4 * pace * line.seconds + 2:
                    break
            row[i], how[j, i] = c, h
    # The take may end early: one fault for the lines after its last.
    ends_at = [best[j, m] + (FAULT if j < n else 0.0) for j in range(n + 1)]
    j = int(np.argmin(ends_at))
    runs: list[tuple[Expected, int, int] | None] = [None] * n
    dropped: list[int] = []
    i = m
    while j > 0 or i > 0:
        h = int(how[j, i]) if j > 0 else 0
        if h == 0:
            dropped.append(i - 1)
            i -= 1
        elif h == -1:
            j -= 1
        elif h == -2:
            j = 0
        else:
            runs[j - 1] = (lines[j - 1], i - h, i)
            i -= h
            j -= 1
    return float(min(ends_at)), runs, sorted(dropped)


def cut(take: Take, lines: list[Expected]) -> list[Cut]:
    """Return where each line lies in the take, or raise VoiceError saying what does not fit."""
    name = take.path
    room, speech = room_and_speech(take.levels)
    if speech < SILENT:
        raise VoiceError(f"{name}: no speech in it (silence, or too quiet: its loud moments "
                         f"are at {speech:.0f} dBFS)")  # fmt: skip
    if speech - room < STANDS_OUT:
        raise VoiceError(f"{name}: no speech stands out from the noise (its loud moments are "
                         f"only {speech - room:.0f} dB above its quiet ones; a reading has "
                         f"{STANDS_OUT:g} or more)")  # fmt: skip
    found = pieces(take.levels)
    if not found:
        raise VoiceError(f"{name}: no speech in it (silence, or too quiet)")
    if len(found) > MOST_PER_LINE * len(lines) + 50:
        raise VoiceError(f"{name}: {len(found)} separate sounds for {len(lines)} lines: too "
                         "noisy to cut, or not a reading of these lines")  # fmt: skip
    if len(found) * len(lines) > MOST_WORK:
        raise VoiceError(f"{name}: {len(found)} sounds for {len(lines)} lines is more than one "
                         "import cuts: import the take in parts, with --lines")  # fmt: skip
    _, speech = room_and_speech(take.levels)
    required = sum(line.seconds for line in lines if not line.optional) or 1.0
    # The reader's pace from the lines as cut, until it settles: started from the take's
    # whole length (every line read) and from the synthetic voice's own (some lines missing).
    said = sum(p.seconds for p in found if p.peak >= speech - QUIET)
    best = min((_settle(found, lines, start, speech) for start in (said / required, 1.0)),
               key=lambda tried: tried[0])  # fmt: skip
    _, pace, runs, dropped = best
    # Then as closely as this reader keeps to their own pace: a line that strays from it
    # much further than the others do holds more (or less) than its words.
    spread, stray, pause = _consistency(found, runs, pace)
    _, pace, runs, dropped = _settle(found, lines, pace, speech, spread, stray, pause)
    matched = [r for r in runs if r is not None]
    _check(name, found, lines, runs, dropped, pace, stray)
    for i in dropped:
        p = found[i]
        log.info("%s: at %s a sound of %.2f s fits no line (a breath, a cough?): left out",
                 name, _at(p.start), p.seconds)  # fmt: skip
    log.info("%s: %d lines cut; the reader speaks %.2f times as fast as the synthetic voice",
             name, len(matched), 1 / pace)  # fmt: skip
    return [Cut(line, found[a].start, found[b - 1].end) for line, a, b in matched]


def _settle(found: list[Piece], lines: list[Expected], pace: float, speech: float,
            spread: float = SPREAD, stray: float = STRAY, pause: float = math.inf,
            ) -> tuple[float, float, list[tuple[Expected, int, int] | None], list[int]]:  # fmt: skip
    """Return the alignment's cost, the pace it settled at, its runs and dropped pieces."""
    for _ in range(6):
        cost, runs, dropped = align(found, lines, pace, speech, spread, stray, pause)
        matched = [r for r in runs if r is not None]
        if not matched:
            break
        spoken = sum(sum(p.seconds for p in found[a:b]) for _, a, b in matched)
        again = spoken / sum(line.seconds for line, _, _ in matched)
        if abs(again / pace - 1) < 0.01:
            break
        pace = again
    return cost, pace, runs, dropped


def _consistency(found: list[Piece], runs: list[tuple[Expected, int, int] | None],
                 pace: float) -> tuple[float, float, float]:  # fmt: skip
    """Return the spread of the reader's time per line about their pace (natural log, robust),
    the ratio beyond which a line is a fault, and the longest pause inside a line that is
    usual for them."""
    offs = np.array([math.log(sum(p.seconds for p in found[a:b]) / (pace * line.seconds))
                     for line, a, b in (r for r in runs if r is not None)])  # fmt: skip
    if len(offs) < 5:
        return SPREAD, STRAY, math.inf
    sigma = 1.4826 * float(np.median(np.abs(offs - np.median(offs))))
    spread = min(max(2 * sigma, 0.1), SPREAD)
    inner = [found[x + 1].start - found[x].end for r in runs if r is not None
             for x in range(r[1], r[2] - 1)]  # fmt: skip
    pause = max(LONG_PAUSE * float(np.percentile(inner, 90)), 1.0) if inner else math.inf
    return spread, min(max(math.exp(4 * sigma), TIGHTEST), STRAY), pause


def _check(name: Path, found: list[Piece], lines: list[Expected],
           runs: list[tuple[Expected, int, int] | None], dropped: list[int], pace: float,
           stray: float) -> None:  # fmt: skip
    """Raise VoiceError for the first thing in the alignment that does not fit."""
    utterances = [r for r in runs if r is not None]
    unread = [line for line, r in zip(lines, runs, strict=True) if r is None and not line.optional]
    if not utterances:
        raise VoiceError(f"{name}: nothing in it fits the {len(lines)} lines expected: is it a "
                         "reading of this practice?")  # fmt: skip
    first_read, last_read = utterances[0][0].number, utterances[-1][0].number
    late = [line for line in unread if line.number > last_read]
    if late:
        raise VoiceError(f"{name}: the take ends after {len(utterances)} utterances; "
                         f"{len(lines)} lines expected, the first missing is {late[0].number}: "
                         f"{_quote(late[0].text)}")  # fmt: skip
    early = [line for line in unread if line.number < first_read]
    if early:
        raise VoiceError(f"{name}: the take begins with line {first_read}, "
                         f"{_quote(utterances[0][0].text)}; lines {early[0].number} to "
                         f"{early[-1].number} are not in it (a take of some lines is imported "
                         "with --lines)")  # fmt: skip
    for k, r in enumerate(utterances, 1):
        line, a, b = r
        spoken = sum(p.seconds for p in found[a:b])
        ratio = spoken / (pace * line.seconds)
        if ratio > stray or ratio < 1 / stray:
            words = len(line.text.split())
            raise VoiceError(
                f"{name}: utterance {k} (at {_at(found[a].start)}) lasts {spoken:.1f} s for a "
                f"{words}-word line, {line.number}: {_quote(line.text)} (about "
                f"{pace * line.seconds:.1f} s expected): is a line missing near it, or one "
                "read twice?"
            )  # fmt: skip
    if unread:
        first = unread[0]
        after = [r for r in utterances if r[0].number < first.number]
        where = f"after {_at(found[after[-1][2] - 1].end)}" if after else "at the start"
        raise VoiceError(f"{name}: line {first.number} is not in the take ({where}): "
                         f"{_quote(first.text)}")  # fmt: skip
    long_drops = [found[i] for i in dropped if found[i].seconds > LONG]
    if long_drops:
        p = long_drops[0]
        before = [r[0] for r in utterances if found[r[2] - 1].end <= p.start]
        where = f"after line {before[-1].number}, {_quote(before[-1].text)}" if before else \
            "before the first line"  # fmt: skip
        raise VoiceError(f"{name}: at {_at(p.start)}, {where}: {p.seconds:.1f} s of speech fit "
                         f"no line; the take holds more than the {len(lines)} lines expected (a "
                         "line read twice, or one not in this practice?)")  # fmt: skip


def _at(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


def _quote(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
