"""The pipeline, top to bottom: script -> speech -> timeline -> mix -> MP3 -> tags.

`plan()` does everything up to the timeline (speech is synthesised, or read from the cache,
because its length decides the pauses); `render()` goes on to the finished, tagged file.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, sounds
from .errors import CalmcastError, OutputError
from .mix import Mixer, MixSettings
from .model import Bell, Event, Pause, Practice, Script, Speech, Timeline
from .script import load_practice, render_script
from .timeline import fit, ring_out
from .voices import Voice, open_voice
from .voices.cache import SpeechCache

log = logging.getLogger(__name__)

#: Samples quieter than this (about -60 dBFS) at either end of an utterance are trimmed.
TRIM_LEVEL = 1e-3
#: The loudness assumed for the voice of a practice with no speech (a silent sit).
NOMINAL_VOICE_LUFS = -20.0


@dataclass(frozen=True)
class Request:
    """Everything a listener can choose about one render."""

    practice: str
    minutes: float | None = None
    voice: str | None = None
    rate: float | None = None
    pitch: float | None = None
    values: dict[str, str] = field(default_factory=dict)
    ambience: str | None = None  # a built-in name, a file path, or None for voice only
    bell: str | None = None  # struck at the start and at the end
    interval_bell: float | None = None  # seconds between bells through the session
    mix: MixSettings = field(default_factory=MixSettings)


@dataclass
class Plan:
    """A practice fitted to its length, with its speech ready to mix."""

    practice: Practice
    script: Script
    voice: Voice
    timeline: Timeline
    speech: list[np.ndarray]
    bells: dict[str | None, sounds.Sound]
    request: Request

    @property
    def minutes(self) -> float:
        return self.timeline.duration / 60

    def rows(self) -> list[dict]:
        """Return the timeline as plain rows: kind, start, length (seconds) and text."""
        rows = []
        rate = self.timeline.rate
        for e in self.timeline.events:
            seg = e.segment
            kind = type(seg).__name__.lower() if not isinstance(seg, Pause) else seg.kind
            text = getattr(seg, "text", None) or getattr(seg, "title", None) or ""
            if isinstance(seg, Bell):
                text = seg.name
            rows.append(
                {
                    "kind": kind,
                    "start": round(e.start / rate, 3),
                    "length": round(e.length / rate, 3),
                    "text": text,
                }
            )
        return rows


def plan(
    practice_ref: str | None = None,
    minutes: float | None = None,
    voice: str | None = None,
    values: dict[str, str] | None = None,
    *,
    request: Request | None = None,
    cache: SpeechCache | None = None,
) -> Plan:
    """Return the practice fitted to its length: speech synthesised, every pause placed."""
    if request is None:
        request = Request(practice_ref, minutes=minutes, voice=voice, values=dict(values or {}))
    rate = request.mix.rate
    practice = load_practice(request.practice)
    spoken_by = open_voice(request.voice, request.rate, request.pitch)
    minutes = request.minutes if request.minutes is not None else practice.minutes
    script = render_script(practice, minutes, request.values, language=spoken_by.language)

    # A bare [bell] is the session's bell. Every bell must exist before anything is spoken.
    bell = request.bell or sounds.DEFAULT_BELL
    body = [
        Bell(seg.name or bell, seg.place) if isinstance(seg, Bell) else seg
        for seg in script.segments
    ]
    names = {seg.name for seg in body if isinstance(seg, Bell)}
    if request.bell or request.interval_bell:
        names.add(bell)
    bells = {name: sounds.load(name, "bell", rate) for name in sorted(names)}
    if request.ambience:
        sounds.load(request.ambience, "ambience", rate)  # fail before speaking; kept cached

    timing = practice.timing
    segments = [Pause(timing.lead_in, timing.lead_in, kind="lead-in")]
    if request.bell:
        segments.append(Bell(bell))
    segments += body
    if request.bell:
        segments.append(Bell(bell))
    segments.append(Pause(timing.lead_out, timing.lead_out, kind="lead-out"))
    segments = ring_out(segments, {n: b.ring for n, b in bells.items()})

    speech = speak(spoken_by, [s.text for s in script.speech], rate, cache or SpeechCache())
    target = None if minutes is None else round(minutes * 60 * rate)
    timeline = fit(segments, [len(c) for c in speech], rate, target, name=practice.name)
    if request.interval_bell:
        timeline = with_interval_bells(timeline, request.interval_bell, bell)
    return Plan(practice, script, spoken_by, timeline, speech, bells, request)


def with_interval_bells(timeline: Timeline, every: float, name: str | None) -> Timeline:
    """Return the timeline with a bell every `every` seconds, none in the last 30 s."""
    rate = timeline.rate
    step = round(every * rate)
    marks = range(step, timeline.length - 30 * rate, step) if step > 0 else range(0)
    bells = [Event(Bell(name), t, 0) for t in marks]
    events = sorted([*timeline.events, *bells], key=lambda e: e.start)
    return Timeline(tuple(events), timeline.length, rate)


def speak(voice: Voice, texts: list[str], rate: int, cache: SpeechCache) -> list[np.ndarray]:
    """Return each text spoken and trimmed, at `rate`: from the cache, else synthesised."""
    import soxr

    key = voice.cache_key()
    out = []
    started = time.perf_counter()
    for text in texts:
        k = cache.key(key, text)
        got = cache.get(k)
        if got is None:
            samples = voice.synthesize(text)
            cache.put(k, samples, voice.sample_rate)
            got = (samples, voice.sample_rate)
        samples, native = got
        samples = _trim(samples)
        if native != rate:
            samples = soxr.resample(samples, native, rate, quality="HQ").astype(np.float32)
        out.append(samples)
    log.info(
        "speech: %d utterances, %d synthesised, %d from the cache, %.1f s",
        len(texts),
        cache.misses,
        cache.hits,
        time.perf_counter() - started,
    )
    return out


def _trim(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > TRIM_LEVEL)
    if len(loud) == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


@dataclass(frozen=True)
class Result:
    """A finished render, with the figures it was made to."""

    path: Path
    plan: Plan
    seconds: float
    loudness: float
    gain_db: float
    timings: dict[str, float]


@dataclass(frozen=True)
class Output:
    """Where and how the finished file is written."""

    path: Path
    bitrate: str = "128k"
    id3_version: int = 3
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: str | None = None
    cover: Path | None = None
    build: str | None = None  # a course build's fingerprint, recorded for incremental builds


def render(request: Request, output: Output, cache: SpeechCache | None = None) -> Result:
    """Render the request to a finished, tagged MP3 at output.path, atomically."""
    from .encode import Encoder
    from .tags import check_cover

    timings = {}
    t0 = time.perf_counter()
    # Gather and check everything that can fail before speaking or writing.
    _check_output(output.path)
    check_cover(output.cover)
    rate = request.mix.rate
    p = plan(request=request, cache=cache)
    bed = sounds.load(request.ambience, "ambience", rate) if request.ambience else None
    timings["plan"] = time.perf_counter() - t0

    t = time.perf_counter()
    voice_lufs = _voice_loudness(p.speech, rate, request.mix.channels)
    mixer = Mixer(p.timeline, p.speech, bed, p.bells, request.mix, voice_lufs)
    _measured, gain_db = mixer.normalise()
    timings["measure"] = time.perf_counter() - t

    t = time.perf_counter()
    for attempt in range(3):
        with Encoder(output.path, rate, request.mix.channels, output.bitrate) as enc:
            for block in mixer.final():
                enc.write(block)
        if attempt == 2 or not mixer.correct(enc.loudness):
            break
        enc.discard()
    timings["mix+encode"] = time.perf_counter() - t
    enc.commit(lambda tmp: _tag(tmp, p, output, request))
    timings["total"] = time.perf_counter() - t0
    gain_db = 20 * math.log10(mixer.gain)
    return Result(output.path, p, p.timeline.duration, enc.loudness, gain_db, timings)


def _check_output(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path()
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name like {path / 'session.mp3'}")
    if not folder.is_dir():
        raise OutputError(f"{path}: the folder {folder} does not exist")
    import os

    if not os.access(folder, os.W_OK):
        raise OutputError(f"{path}: the folder {folder} is not writable")


def _voice_loudness(speech: list[np.ndarray], rate: int, channels: int) -> float:
    """Return the loudness of all the speech, end to end, as it sits in the mix."""
    from .encode import Meter

    if sum(len(c) for c in speech) < rate // 2:
        return NOMINAL_VOICE_LUFS
    with Meter(rate, 1) as meter:  # clip by clip: no copy of the whole speech
        for clip in speech:
            meter.write(clip)
    # The voice sits in the centre of a stereo mix: both channels count.
    return meter.loudness + (10 * math.log10(2) if channels == 2 else 0.0)


def _tag(path: Path, p: Plan, output: Output, request: Request) -> None:
    from .tags import Tags, write_tags

    rate = p.timeline.rate
    ms = lambda samples: round(samples * 1000 / rate)  # noqa: E731
    chapters = tuple((title, ms(a), ms(b)) for title, a, b in p.timeline.chapters)
    made = {
        "calmcast:practice": p.practice.name,
        "calmcast:minutes": f"{p.minutes:.3f}",
        "calmcast:voice": p.voice.name,
        "calmcast:ambience": request.ambience or "none",
        "calmcast:version": __version__,
    }
    if output.build:
        made["calmcast:build"] = output.build
    if p.script.values:
        made["calmcast:values"] = ", ".join(f"{k}={v}" for k, v in sorted(p.script.values.items()))
    tags = Tags(
        title=output.title or p.practice.title,
        artist=output.artist or p.practice.extra.get("guide", "calmcast"),
        album=output.album or p.practice.extra.get("album", ""),
        description=p.practice.description,
        track=output.track,
        length_ms=ms(p.timeline.length),
        transcript=transcript(p),
        chapters=chapters,
        cover=output.cover,
        made=made,
    )
    try:
        write_tags(path, tags, output.id3_version)
    except CalmcastError:
        raise
    except Exception as e:  # mutagen raises its own hierarchy
        raise OutputError(f"{output.path}: cannot write tags: {e}") from e


def transcript(p: Plan) -> str:
    """Return the spoken text, a paragraph per chapter, as the USLT transcript."""
    parts, current = [], []
    for e in p.timeline.events:
        seg = e.segment
        if isinstance(seg, Speech):
            current.append(seg.text)
        elif isinstance(seg, Pause) and seg.kind in ("paragraph", "pause") and current:
            parts.append(" ".join(current))
            current = []
    if current:
        parts.append(" ".join(current))
    return "\n\n".join(parts)
