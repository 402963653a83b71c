"""Building a course: every track checked first, then speech and encoding in worker processes.

A build knows what it made from one small record per file in the output folder's
`.calmcast/` folder (its inputs' hash, its size and hash, its sidecars, its figures), so an
unchanged track is not made again, shards built apart can be gathered by copying their
folders together, and the feed, the page and the manifest are written from the records.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .course import Checked, Course, Track
from .errors import CalmcastError, ConfigError
from .output import sweep_parts, write_small
from .progress import Progress, Stage
from .records import RECORD_VERSION, RECORDS, file_hash, look

log = logging.getLogger(__name__)


class Status(str, Enum):
    """What a build did with one file."""

    MADE = "made"
    UP_TO_DATE = "up to date"  # its inputs unchanged and the file whole: left as it was
    MISSING = "missing"  # another shard's to make

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Built:
    """What happened to one file of a course in a build."""

    track: Track
    path: Path
    status: Status
    seconds: float = 0.0
    record: dict | None = None


#: Inside a build: ("speech", count) before speaking, ("start", Track), ("done", Built).
Report = Callable[[str, object], None]


def _reporter(progress: Callable[[Progress], None], total: int) -> Report:
    """Return the build's own report, telling `progress` in Progress events."""
    finished = 0

    def report(kind: str, item) -> None:
        nonlocal finished
        if kind == "speech":
            progress(Progress(Stage.SPEAKING, 0, item))
        elif kind == "start":
            progress(Progress(Stage.STARTED, finished, total, file=item.file))
        else:
            finished += 1
            progress(Progress(Stage.FINISHED, finished, total, item.track.file, item.status))

    return report


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_shard(text: str) -> tuple[int, int]:
    """Return K and N of a shard given as K/N (1 <= K <= N)."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n) <= 1000):
        raise ValueError(f"expected K/N with 1 <= K <= N, like 2/4, got {text!r}")
    return int(k), int(n)


def in_shard(course: Course, shard: tuple[int, int] | None) -> list[Track]:
    """Return the tracks of one deterministic slice of the course: every Nth file from the Kth."""
    if shard is None:
        return list(course.tracks)
    k, n = shard
    return [t for i, t in enumerate(course.tracks) if i % n == k - 1]


def build(
    course: Course,
    folder: str | Path,
    *,
    force: bool = False,
    jobs: int | None = None,
    shard: tuple[int, int] | None = None,
    index_only: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> list[Built]:
    """Build the course's tracks (one shard of them) into `folder`, then its publishing files.

    Unchanged tracks are not made again. With a shard, only its tracks are made and the
    publishing files are left to a final build without one (or with `index_only`).
    `progress` is told of the speech to be spoken and of each file as it starts and ends.
    """
    from . import publish

    report = _reporter(progress, len(course.tracks)) if progress else None

    folder = Path(folder)
    found, stamps, records, fresh = look(course, folder, check_output=True)
    strays = sorted(set(records) - {t.file for t in course.tracks})
    if strays and shard is None:
        log.warning(
            "%s: %d files are no longer in the course (delete them to unpublish): %s",
            folder, len(strays), ", ".join(strays[:5]) + (" ..." if len(strays) > 5 else ""),
        )  # fmt: skip
    mine = {t.file for t in in_shard(course, shard)}
    done: dict[str, Built] = {}
    todo = []
    for t in course.tracks:
        if not force and t.file in fresh:
            done[t.file] = Built(t, folder / t.file, Status.UP_TO_DATE, record=records[t.file])
        elif t.file in mine and not index_only:
            todo.append(t)
        else:
            done[t.file] = Built(t, folder / t.file, Status.MISSING)
    if index_only and any(b.status is Status.MISSING for b in done.values()):
        missing = [f for f, b in done.items() if b.status is Status.MISSING]
        raise ConfigError(
            f"{folder}: {len(missing)} of {len(course.tracks)} files are missing or out of "
            f"date, so the feed and page cannot be written yet: {', '.join(missing[:6])}"
            + (" ..." if len(missing) > 6 else "")
        )
    if todo:
        for item in _make_all(course, folder, todo, stamps, found, jobs or default_jobs(), report):
            done[item.track.file] = item
    ordered = [done[t.file] for t in course.tracks]
    if report:
        for item in ordered:
            if item.status is not Status.MADE:
                report("done", item)
    if shard is None:
        folder.mkdir(parents=True, exist_ok=True)
        publish.write_all(course, folder, {b.track.file: b.record or {} for b in ordered})
    return ordered





# Making tracks.


def _make_all(course, folder, todo, stamps, found, jobs, report) -> list[Built]:
    """Make the tracks in `todo`: in this process with one job, else in worker processes.

    New lines are spoken first (each once, however many tracks share it), then every track
    is planned, so a length out of reach in the last track fails before any file is made;
    then the tracks are mixed and encoded.
    """
    args = [(t, str(folder), stamps[t.file]) for t in todo]
    jobs = max(1, min(jobs, len(todo)))
    if jobs == 1:
        _raise_all(course, [(t, _problem(plan_only, t)) for t in todo])
        out = []
        for a in args:
            if report:
                report("start", a[0])
            item = make(*a)
            out.append(item)
            if report:
                report("done", item)
        return out
    context = multiprocessing.get_context("spawn")  # no inherited voice engines or threads
    level = logging.getLogger().getEffectiveLevel()
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker, initargs=(level,))
    try:
        started = [pool.submit(os.getpid) for _ in range(jobs)]  # start up while we look
        texts = _unspoken(todo, found)
        wait(started)
        if texts:  # shared lines are spoken once, before any track is mixed
            if report:
                report("speech", sum(len(v) for _, v in texts))
            for f in [pool.submit(_working, functools.partial(speak_some, spec, chunk))
                      for spec, chunk in _chunks(texts, jobs)]:  # fmt: skip
                f.result()
        plans = [(t, pool.submit(_working, functools.partial(_problem, plan_only, t)))
                 for t in todo]  # fmt: skip
        _raise_all(course, [(t, f.result()) for t, f in plans])
        pending = {pool.submit(_working, functools.partial(make, *a)): a[0] for a in args}
        queued = [a[0] for a in args]  # the pool starts them in this order, `jobs` at a time
        out = []
        while pending:
            while report and queued and len(out) + jobs > len(args) - len(queued):
                report("start", queued.pop(0))
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                pending.pop(f)
                item = f.result()
                out.append(item)
                if report:
                    report("done", item)
        return out
    except BrokenProcessPool:
        raise CalmcastError(
            "a build worker stopped unexpectedly (out of memory, or killed); every file made "
            "so far is kept: run the build again to finish"
        ) from None
    except (KeyboardInterrupt, SystemExit):
        workers = list(getattr(pool, "_processes", {}).values())
        for proc in workers:
            if proc.is_alive():
                proc.terminate()  # each worker cleans up as Ctrl-C does
        pool.shutdown(wait=True, cancel_futures=True)
        # And should one have been stopped before it could, its part files go too.
        sweep_parts(folder, {proc.pid for proc in workers if proc.pid})
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def plan_only(track: Track) -> None:
    """Plan a track (its speech spoken or cached, its pauses fitted) to find what cannot be."""
    from .pipeline import plan

    plan(track.request)


def _problem(task, track: Track) -> str | None:
    try:
        task(track)
    except CalmcastError as e:
        return e.format_message()
    return None


def _raise_all(course: Course, results) -> None:
    problems = [f"track {t.number} ({t.file}): {p}" for t, p in results if p]
    if problems:
        raise ConfigError.at(str(course.path), None, None, "; ".join(problems), problems)


_busy = False  # in a worker: whether it is making something


def _worker(level: int) -> None:
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    # A worker makes many tracks: scipy's filters pay for their import after the first
    # (calmcast's own give the same result, slower, where scipy cannot be imported).
    with contextlib.suppress(ImportError):
        import scipy.signal  # noqa: F401

    def stop(signum, frame):
        # Ctrl-C reaches the whole process group; the build stops its workers itself, once,
        # so each cleans up undisturbed. An idle worker has nothing to clean up.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not _busy:
            os._exit(0)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)


def _working(task):
    """Run `task` marked busy, so a stop signal cleans up rather than exits."""
    global _busy
    _busy = True
    try:
        return task()
    finally:
        _busy = False


def _unspoken(todo: list[Track], found: dict[str, Checked]) -> list[tuple[tuple, list[str]]]:
    """Return the lines not yet in the speech cache, once each, by voice and voice chain.

    Each group is (voice, wpm, pitch, mix settings of its first track) with its lines: a
    track read in several voices is in several groups.
    """
    from .mix import voice_chain
    from .voices import open_voice
    from .voices.cache import SpeechCache
    from .voices.speech import unprepared

    cache = SpeechCache()
    groups: dict[tuple, tuple[tuple, dict[str, None]]] = {}
    voices = {}
    for t in todo:
        r, chain = t.request, voice_chain(t.request.mix)
        for name, texts in found[t.file].by_voice().items():
            spec = (name, r.wpm, r.pitch)
            if spec not in voices:
                voices[spec] = open_voice(*spec)
            _, lines = groups.setdefault((*spec, chain.key()), ((*spec, r.mix), {}))
            lines.update(dict.fromkeys(unprepared(voices[spec], texts, chain, cache)))
    return [(spec, list(lines)) for spec, lines in groups.values() if lines]


def _chunks(groups, jobs: int):
    for spec, texts in groups:
        size = -(-len(texts) // jobs)
        for i in range(0, len(texts), size):
            yield spec, texts[i : i + size]


def speak_some(spec: tuple, texts: list[str]) -> None:
    """Speak lines into the speech cache (a worker's share of a build's new lines)."""
    from .mix import voice_chain
    from .voices import open_voice
    from .voices.cache import SpeechCache
    from .voices.speech import speak

    voice, wpm, pitch, mix = spec
    speak(open_voice(voice, wpm, pitch), texts, voice_chain(mix), SpeechCache())


def make(track: Track, folder: str, stamp: str) -> Built:
    """Make one file of a course with its captions and chapters, and record it."""
    from . import publish
    from .pipeline import render
    from .session import Output

    started = time.perf_counter()
    folder_path = Path(folder)
    (folder_path / RECORDS).mkdir(parents=True, exist_ok=True)
    out = folder_path / track.file
    tags = dict(track.tags)
    result = render(track.request, Output(
        out, title=track.title, description=track.description or None, build=stamp, **tags))  # fmt: skip
    missing = result.plan.fallbacks
    if missing:
        log.warning("%s: %d line%s said by %s, not recorded", track.file, len(missing),
                    "s" if len(missing) > 1 else "", missing[0][0])  # fmt: skip
    sidecars = publish.sidecars(result, track)
    for name, body in sidecars.items():
        write_small(folder_path / name, body)
    record = {
        "version": RECORD_VERSION,
        "file": track.file,
        "build": stamp,
        "size": out.stat().st_size,
        "sha256": file_hash(out),
        "sidecars": {n: hashlib.sha256(b.encode("utf-8")).hexdigest() for n, b in sidecars.items()},
        **publish.facts(result, track),
    }
    write_small(folder_path / RECORDS / f"{track.file}.json", json.dumps(record, indent=1))
    return Built(track, out, Status.MADE, time.perf_counter() - started, record)
