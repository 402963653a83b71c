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
from .errors import CalmcastError, ConfigError, OutputError
from .limits import MAX_SESSION, MIN_BELL_INTERVAL, finite
from .mix import Levels, LimiterStats, Mixer, MixSettings, anchor, voice_chain
from .mix import check as check_levels
from .model import Bell, Event, Pause, Practice, Script, Speech, Timeline
from .script import find_practice, load_practice, render_script
from .timeline import fit, ring_out
from .voices import Voice, open_voice
from .voices.cache import SpeechCache
from .voices.speech import Utterance, speak

log = logging.getLogger(__name__)

#: Beyond this much safety limiting (dB) the render says so: something is too loud for its place.
LIMITER_WARNING = 3.0


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
    """A practice fitted to its length, with its speech prepared and cached, ready to mix."""

    practice: Practice
    script: Script
    voice: Voice
    timeline: Timeline
    speech: list[Utterance]
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
    rate, channels = request.mix.rate, request.mix.channels
    check_request(request)
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
    opens, closes = False, False
    if request.bell:
        # A script that already opens or closes with a bell gets --bell there, not a second
        # bell struck at the same moment.
        body, opens = _replace_bell(body, bell)
        body, closes = _replace_bell(body[::-1], bell)
        body = body[::-1]
    names = {seg.name for seg in body if isinstance(seg, Bell)}
    if request.bell or request.interval_bell:
        names.add(bell)
    bells = {name: sounds.load(name, "bell", rate, channels) for name in sorted(names)}
    if request.ambience:
        sounds.load(request.ambience, "ambience", rate, channels)  # fail before speaking

    timing = practice.timing
    segments = [Pause(timing.lead_in, timing.lead_in, kind="lead-in")]
    if request.bell and not opens:
        segments.append(Bell(bell))
    segments += body
    if request.bell and not closes:
        segments.append(Bell(bell))
    segments.append(Pause(timing.lead_out, timing.lead_out, kind="lead-out"))
    segments = ring_out(segments, {n: b.ring for n, b in bells.items()})

    texts = [s.text for s in script.speech]
    speech = speak(spoken_by, texts, voice_chain(request.mix), cache or SpeechCache())
    target = None if minutes is None else round(minutes * 60 * rate)
    lengths = [u.length(rate) for u in speech]
    timeline = fit(segments, lengths, rate, target, name=practice.name)
    if request.interval_bell:
        timeline = with_interval_bells(timeline, request.interval_bell, bell)
    return Plan(practice, script, spoken_by, timeline, speech, bells, request)


def _replace_bell(segments: list, name: str) -> tuple[list, bool]:
    """Return segments with their first bell before any speech struck as `name`, and whether."""
    out = list(segments)
    for i, seg in enumerate(out):
        if isinstance(seg, Speech):
            break
        if isinstance(seg, Bell):
            out[i] = Bell(name, seg.place)
            return out, True
    return out, False


def check_request(request: Request) -> None:
    """Raise ConfigError for a length or an interval outside calmcast's limits."""
    try:
        if request.minutes is not None:
            finite(request.minutes, "minutes", 0, MAX_SESSION / 60)
            if not request.minutes > 0:
                raise ValueError(f"minutes: expected a positive length, got {request.minutes!r}")
        if request.interval_bell is not None:
            finite(request.interval_bell, "interval bell (seconds)", MIN_BELL_INTERVAL, MAX_SESSION)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def with_interval_bells(timeline: Timeline, every: float, name: str | None) -> Timeline:
    """Return the timeline with a bell every `every` seconds, none in the last 30 s."""
    rate = timeline.rate
    step = round(every * rate)
    marks = range(step, timeline.length - 30 * rate, step) if step > 0 else range(0)
    bells = [Event(Bell(name), t, 0) for t in marks]
    events = sorted([*timeline.events, *bells], key=lambda e: e.start)
    return Timeline(tuple(events), timeline.length, rate)


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


@dataclass(frozen=True)
class Output:
    """Where and how the finished file is written."""

    path: Path
    id3_version: int = 3
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    track: str | None = None
    cover: Path | None = None
    description: str | None = None  # the comment tag; default: the practice's description
    build: str | None = None  # a course build's fingerprint, recorded for incremental builds


def render(request: Request, output: Output, cache: SpeechCache | None = None) -> Result:
    """Render the request to a finished, tagged MP3 at output.path, atomically, in one pass."""
    from . import loudness
    from .encode import Encoder, level_loss
    from .output import Destination
    from .tags import check_cover

    timings = {}
    t0 = time.perf_counter()
    # Gather and check everything that can fail before speaking or writing.
    dest = Destination(output.path, _inputs(request, output))
    check_cover(output.cover)
    settings = request.mix
    check_levels(settings)
    cache = cache or SpeechCache()
    cache.check()
    p = plan(request=request, cache=cache)
    dest.check_inputs(sounds.find(name or sounds.DEFAULT_BELL, "bell") for name in p.bells)
    bed = None
    if request.ambience:
        bed = sounds.load(request.ambience, "ambience", settings.rate, settings.channels)
    timings["plan"] = time.perf_counter() - t0

    # Every gain is known before the first sample: the voice is the anchor.
    t = time.perf_counter()
    rate = settings.rate
    codec = level_loss(_calibration(p, bed, settings), settings.bitrate, rate, cache.folder)
    bed_codec = None
    if bed is not None and p.speech:
        # A bed loses its own share: noise with air above 16 kHz loses more than speech.
        sample = bed.samples(0, int(CALIBRATION_SECONDS * rate))
        bed_codec = level_loss(sample, settings.bitrate, rate, cache.folder)
    levels = anchor(p.timeline, p.speech, bed, p.bells, settings, codec, bed_codec)
    mixer = Mixer(p.timeline, p.speech, bed, p.bells, settings, levels)
    log.info(
        "voice %.1f LUFS as spoken, gain %+.1f dB; bed %+.1f dB",
        levels.voice_lufs, levels.voice_gain, levels.bed_gain,
    )  # fmt: skip
    timings["levels"] = time.perf_counter() - t

    # One pass: mix a block while ffmpeg encodes the last, measuring what goes in.
    t = time.perf_counter()
    meter = loudness.Meter(settings.rate, settings.channels)
    with Encoder(dest, settings.rate, settings.channels, settings.bitrate) as enc:
        for block in mixer.final():
            meter.write(block)
            enc.write(block)
        enc.finish()
        timings["mix+encode"] = time.perf_counter() - t
        # The figures as the file will read: the encoder's loss taken off what went in, and
        # the peaks it adds put on.
        peak = meter.true_peak_db - levels.codec_gain + levels.overshoot
        result = Result(
            output.path, p, p.timeline.duration, levels, meter.loudness - levels.codec_gain,
            peak, mixer.limiter, timings,
        )  # fmt: skip
        enc.commit(lambda tmp: _tag(tmp, result, output))
    timings["total"] = time.perf_counter() - t0
    if mixer.limiter.frames_limited:
        # The voice chain holds the voice's peaks; what is left is a bell over speech, or a
        # bed asked to be nearly as loud as the voice.
        report = log.warning if mixer.limiter.most > LIMITER_WARNING else log.info
        report(
            "the safety limiter lowered %d frames, by at most %.1f dB%s",
            mixer.limiter.frames_limited, mixer.limiter.most,
            " (lower --bed-level or use a softer sound)" if report is log.warning else "",
        )  # fmt: skip
    return result


#: Seconds of the session's own material the encoder is calibrated on.
CALIBRATION_SECONDS = 8.0


def _calibration(p: Plan, bed: sounds.Sound | None, settings: MixSettings) -> np.ndarray:
    """Return a few seconds of what the session is made of, to measure the encoder's loss on.

    The voice is the anchor, so its first utterances; with no speech, the bed; else a bell.
    """
    rate, channels = settings.rate, settings.channels
    want = int(CALIBRATION_SECONDS * rate)
    pieces, have = [], 0
    for utterance in p.speech:
        if have >= want:
            break
        clip = utterance.audio(rate)
        pieces += [clip, np.zeros(rate // 4, np.float32)]
        have += len(clip)
    if have:
        mono = np.concatenate(pieces)
        return np.repeat(mono[:, None], channels, axis=1)
    if bed is not None:
        return bed.samples(0, want)
    for bell in p.bells.values():
        return bell.samples(0, want)
    return np.zeros((rate, channels), np.float32)


def _inputs(request: Request, output: Output) -> list[Path]:
    """Return the files a render reads, which its output must not be."""
    found = [find_practice(request.practice), output.cover]
    for ref, kind in ((request.ambience, "ambience"), (request.bell, "bell")):
        if ref:
            found.append(sounds.find(ref, kind))
    return [f for f in found if f is not None]


def _tag(path: Path, result: Result, output: Output) -> None:
    from .tags import Tags, write_tags

    p, request = result.plan, result.plan.request
    rate = p.timeline.rate
    ms = lambda samples: round(samples * 1000 / rate)  # noqa: E731
    chapters = tuple((title, ms(a), ms(b)) for title, a, b in p.timeline.chapters)
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
    if output.build:
        made["calmcast:build"] = output.build
    if p.script.values:
        made["calmcast:values"] = ", ".join(f"{k}={v}" for k, v in sorted(p.script.values.items()))
    tags = Tags(
        title=output.title or p.practice.title,
        artist=output.artist or p.practice.extra.get("guide", "calmcast"),
        album=output.album or p.practice.extra.get("album", ""),
        description=output.description or p.practice.description,
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


def _figure(value: float, unit: str) -> str:
    return f"{value:.1f} {unit}" if math.isfinite(value) else "none"


def paragraphs(timeline: Timeline) -> list[list[Event]]:
    """Return the spoken events in paragraphs: a pause or a paragraph break ends one."""
    out: list[list[Event]] = [[]]
    for e in timeline.events:
        seg = e.segment
        if isinstance(seg, Speech):
            out[-1].append(e)
        elif isinstance(seg, Pause) and seg.kind in ("paragraph", "pause") and out[-1]:
            out.append([])
    return [para for para in out if para]


def transcript(p: Plan) -> str:
    """Return the spoken text, a paragraph per chapter, as the USLT transcript."""
    return "\n\n".join(" ".join(e.segment.text for e in para) for para in paragraphs(p.timeline))
