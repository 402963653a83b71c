"""The pipeline, top to bottom: script -> speech -> timeline -> levels -> mix -> MP3 -> tags.

`plan()` does everything up to the timeline (speech is synthesised, or read from the cache,
because its length decides the pauses); `render()` goes on to the finished, tagged file in
one pass; `mix_audio()` mixes a plan into memory instead, for Python callers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import roles, sounds
from .durations import format_duration
from .errors import ConfigError, VoiceError
from .lexicon import Lexicon
from .limits import MAX_SESSION, MIN_BELL_INTERVAL, finite
from .mix import Levels, Mixer, RoomLayer, anchor, codec_sample, voice_chain
from .mix import check as check_levels
from .model import Bell, Practice, Script, Timeline
from .practice import find_practice, load_practice, shown_name
from .progress import Progress, Stage
from .script import render_script
from .session import Output, Plan, Request, Result
from .timeline import (
    TIMER_END_CLEARANCE,
    bell_names,
    fit,
    frame,
    reach,
    timer_origin,
    with_interval_bells,
    with_timer_bells,
)
from .voices import Voice, check_language, default_voice_name, espeak_voice_name, open_voice
from .voices.cache import SpeechCache
from .voices.speech import Utterance, speak

if TYPE_CHECKING:
    import numpy as np
    import pydub

log = logging.getLogger(__name__)

#: Beyond this much safety limiting (dB) the render says so: something is too loud for its place.
LIMITER_WARNING = 3.0

Listener = Callable[[Progress], None]


def plan(
    request: Request, cache: SpeechCache | None = None, progress: Listener | None = None
) -> Plan:
    """Return the practice fitted to its length: speech synthesised, every pause placed."""
    rate, channels = request.mix.sample_rate, request.mix.channels
    check_request(request)
    practice = load_practice(request.practice, request.language, request.script_format)
    minutes = request.minutes if request.minutes is not None else practice.minutes
    script = render_script(practice, minutes, request.values)
    said = spoken(request, practice, script)
    script, voices, who, texts = said.script, said.voices, said.who, said.texts

    # Every bell and the bed must exist before anything is spoken. A bare [bell] is the
    # session's bell; `--bell none` silences the script's bells, named ones too.
    body = script.segments
    timer = bool(request.interval_bell or request.bells)
    if sounds.silenced(request.bell):
        for given, flag in ((request.interval_bell, "--interval-bell"), (request.bells, "--bells"),
                            (request.end_bell, "--end-bell")):  # fmt: skip
            if given:
                raise ConfigError(f"--bell none strikes no bell, so {flag} has none to strike")
        body = tuple(seg for seg in body if not isinstance(seg, Bell))
    session_bell = request.bell if request.bell and not sounds.silenced(request.bell) else None
    bell = session_bell or sounds.DEFAULT_BELL
    names = bell_names(body, bell, session_bell=bool(session_bell or timer))
    if request.end_bell:
        names.add(request.end_bell)
    bells: dict[str | None, sounds.Sound] = {
        name: sounds.load(name, "bell", rate, channels) for name in sorted(names)
    }
    if request.ambience:
        sounds.load(request.ambience, "ambience", rate, channels)
    segments = frame(body, practice.timing, bell, lambda name: bells[name].ring,
                     open_and_close=bool(session_bell), end_bell=request.end_bell,
                     strikes=request.strikes, delay=request.delay)  # fmt: skip

    heard = None
    if progress:
        heard = lambda done, total: progress(Progress(Stage.SPEAKING, done, total))  # noqa: E731
    speech = _speak(who, texts, voice_chain(request.mix), cache or SpeechCache(), heard)
    target = None if minutes is None else round(minutes * 60 * rate)
    lengths = [u.length(rate) for u in speech]
    timeline = fit(segments, lengths, rate, target, name=practice.name, file=practice.path)
    lo, hi = reach(segments, lengths, rate)
    if request.bells:
        _check_bell_times(request.bells, timeline, practice.name)
        timeline = with_timer_bells(timeline, request.bells, bell, request.strikes)
    if request.interval_bell:
        timeline = with_interval_bells(timeline, request.interval_bell, bell, request.strikes)
    voice = voices[practice.default_role] if practice.default_role in voices else \
        next(iter(voices.values()))  # fmt: skip
    return Plan(practice, script, voice, timeline, speech, bells, request, voices,
                (lo / rate, hi / rate))  # fmt: skip


def voice_name(request: Request, practice: Practice) -> str:
    """Return the voice of the practice's first role: the request's, else the one the
    practice names, else the default for the practice's language."""
    role = practice.role(practice.default_role)
    chosen = request.voice or (request.voices or {}).get(practice.default_role)
    if chosen or (role and role.voice):
        return chosen or role.voice  # type: ignore[union-attr]
    try:
        return default_voice_name(practice.language)
    except VoiceError as e:
        raise VoiceError(f"{shown_name(practice)}: written in {practice.language}, and "
                         f"{e.format_message()}") from None


def voice_names(request: Request, practice: Practice, script: Script) -> dict[str, str]:
    """Return the voice of each role the script speaks in (one, `guide`, for most)."""
    return roles.voice_names(practice, request.voice, request.voices, script.roles,
                             voice_name(request, practice), shown_name(practice))  # fmt: skip


def open_voices(
    request: Request, practice: Practice, script: Script, opened: dict | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Voice]:  # fmt: skip
    """Return each role's voice, opened and checked against the practice's language.

    `opened` keeps voices by (name, wpm, pitch) across calls, so a course opens each once;
    `names` are the voices by role when the caller has them (`voice_names`).
    """
    opened = {} if opened is None else opened
    out = {}
    names = names or voice_names(request, practice, script)
    for role, name in names.items():
        spec = (name, request.wpm, request.pitch)
        try:
            if spec not in opened:
                opened[spec] = open_voice(*spec)
            check_language(opened[spec], practice.language)
        except VoiceError as e:
            if len(names) < 2 and not practice.role(role):
                raise
            # Say whose voice it is: the practice's roles may each name one.
            place = script.roles.get(role)
            where = str(place) if place else shown_name(practice)
            raise VoiceError(f"{where}: the voice of {role}: {e.format_message()}") from None
        out[role] = opened[spec]
    return out


@dataclass
class Spoken:
    """Who says what: the script (a recorded voice's lines one utterance each), each role's
    voice, and for each utterance its voice, the name that voice was opened by, its text."""

    script: Script
    voices: dict[str, Voice]
    who: list[Voice]
    names: list[str]
    texts: list[str]


def spoken(
    request: Request, practice: Practice, script: Script, opened: dict | None = None
) -> Spoken:
    """Return who says what in `script`, every voice opened and checked.

    A line a recorded voice has no clip of is said by the fallback voice; a recording says
    the words as written, the lexicon's respellings being for the voices that read them.
    """
    by_role = voice_names(request, practice, script)
    voices = open_voices(request, practice, script, opened, by_role)
    recorded = {role for role, v in voices.items() if hasattr(v, "has")}
    fallback, fallback_name = None, ""
    if recorded:
        from .lines import joined

        script = replace(script, segments=joined(script.segments, recorded))
        fallback_name = request.fallback_voice or espeak_voice_name(practice.language)
        fallback = open_voice(fallback_name)
        check_language(fallback, practice.language)
    texts = voice_texts(practice, request, script)
    who: list[Voice] = []
    names: list[str] = []
    for i, seg in enumerate(script.speech):
        voice, name = voices[seg.role], by_role[seg.role]
        if hasattr(voice, "has"):
            if voice.has(seg.text):
                texts[i] = seg.text
            else:
                voice, name = fallback, fallback_name  # type: ignore[assignment]
        who.append(voice)
        names.append(name)
    if request.strict_voice:
        lacking = [seg for seg, v in zip(script.speech, who, strict=True) if v is fallback]
        if lacking:
            first = lacking[0]
            raise VoiceError(f"{first.place}: {by_role[first.role]} has no clip of "
                             f"{first.text[:60]!r}" + (f" (nor of {len(lacking) - 1} more lines)"
                             if len(lacking) > 1 else "") + "; --strict-voice says no fallback "
                             "(`calmcast voices status` lists what is missing)")  # fmt: skip
    return Spoken(script, voices, who, names, texts)


def _speak(who: list[Voice], texts: list[str], chain, cache: SpeechCache,
           heard: Callable[[int, int], None] | None) -> list[Utterance]:  # fmt: skip
    """Return each text spoken by its voice, in order."""
    if len(set(map(id, who))) <= 1:
        return speak(who[0], texts, chain, cache, heard) if who else []
    out: list[Utterance | None] = [None] * len(texts)
    done = 0
    for voice in dict.fromkeys(who):
        mine = [i for i, v in enumerate(who) if v is voice]

        def told(n: int, _total: int, base: int = done) -> None:
            if heard:
                heard(base + n, len(texts))

        for i, u in zip(mine, speak(voice, [texts[i] for i in mine], chain, cache, told),
                        strict=True):  # fmt: skip
            out[i] = u
        done += len(mine)
    return out  # type: ignore[return-value]


def voice_texts(practice: Practice, request: Request, script: Script) -> list[str]:
    """Return what the voice is given to say: the script's words with their respellings."""
    said = Lexicon(practice.pronounce, request.pronounce)
    return said.say_all(s.text for s in script.speech)


def _check_bell_times(times: tuple[float, ...], timeline: Timeline, name: str) -> None:
    """Raise ConfigError for a bell time the session does not reach, before any audio work."""
    rate = timeline.sample_rate
    room = (timeline.length - timer_origin(timeline)) / rate - TIMER_END_CLEARANCE
    late = [t for t in times if t > room]
    if late:
        raise ConfigError(
            f"{name}: --bells {format_duration(late[0])} is too late: this "
            f"{format_duration(timeline.duration)} session can strike a timer bell up to "
            f"{format_duration(max(room, 0))} after its opening bell "
            f"({TIMER_END_CLEARANCE:g} s before the end are the closing bell's)"
        )


def check_request(request: Request) -> None:
    """Raise ConfigError for a length or an interval outside calmcast's limits."""
    try:
        if request.minutes is not None:
            finite(request.minutes, "minutes", 0, MAX_SESSION / 60)
            if not request.minutes > 0:
                raise ValueError(f"minutes: expected a positive length, got {request.minutes!r}")
        if request.interval_bell is not None:
            finite(request.interval_bell, "interval bell (seconds)", MIN_BELL_INTERVAL, MAX_SESSION)
        for t in request.bells or ():
            finite(t, "bell time (seconds)", 0, MAX_SESSION)
        if request.delay is not None:
            finite(request.delay, "delay (seconds)", 0, 600)
        if request.strikes not in range(1, 10):
            raise ValueError(f"strikes: expected a whole number from 1 to 9, got {request.strikes!r}")
    except ValueError as e:
        raise ConfigError(str(e)) from None


def render(
    request: Request,
    output: Output,
    cache: SpeechCache | None = None,
    progress: Listener | None = None,
) -> Result:
    """Render the request to a finished, tagged MP3 at output.path, atomically, in one pass."""
    from . import loudness
    from .encode import Encoder
    from .output import Destination
    from .tags import check_cover, session_tags, write_tags

    timings = {}
    t0 = time.perf_counter()
    # Gather and check everything that can fail before speaking or writing.
    dest = Destination(output.path, _inputs(request, output))
    check_cover(output.cover)
    settings = request.mix
    check_levels(settings)
    cache = cache or SpeechCache()
    cache.check()
    p = plan(request, cache, progress)
    dest.check_inputs(sounds.find(name or sounds.DEFAULT_BELL, "bell") for name in p.bells)
    timings["plan"] = time.perf_counter() - t0

    # Every gain is known before the first sample: the voice is the anchor.
    t = time.perf_counter()
    bed = _bed(request)
    levels = _levels(p, bed, cache, encoded=True)
    mixer = Mixer(p.timeline, p.speech, bed, p.bells, settings, levels, room_layer(p, levels))
    timings["levels"] = time.perf_counter() - t

    # One pass: mix a block while ffmpeg encodes the last, measuring what goes in.
    t = time.perf_counter()
    meter = loudness.Meter(settings.sample_rate, settings.channels)
    with Encoder(dest, settings.sample_rate, settings.channels, settings.bitrate) as enc:
        for block in _reported(mixer, p, progress):
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
        enc.commit(lambda tmp: write_tags(tmp, session_tags(result, output), output.id3_version))
    timings["total"] = time.perf_counter() - t0
    _say_what_the_limiter_did(mixer)
    return result


def mix_audio(p: Plan, progress: Listener | None = None) -> pydub.AudioSegment:
    """Return a plan mixed into memory as a 16-bit pydub AudioSegment (no MP3 encoding)."""
    import numpy as np
    import pydub

    settings = p.request.mix
    check_levels(settings)
    bed = _bed(p.request)
    levels = _levels(p, bed, None)
    mixer = Mixer(p.timeline, p.speech, bed, p.bells, settings, levels, room_layer(p, levels))
    pcm = np.empty((p.timeline.length, settings.channels), np.int16)
    at = 0
    for block in _reported(mixer, p, progress):
        pcm[at : at + len(block)] = np.clip(np.round(block * 32767), -32768, 32767)
        at += len(block)
    _say_what_the_limiter_did(mixer)
    return pydub.AudioSegment(pcm.tobytes(), sample_width=2, frame_rate=settings.sample_rate,
                              channels=settings.channels)  # fmt: skip


def room_layer(p: Plan, levels: Levels) -> RoomLayer | None:
    """Return the room a recorded voice read in, to lay under the pauses between its clips."""
    from .mix import RoomTone
    from .model import Speech
    from .voices.recorded import FADE, RecordedVoice

    rooms = {v.name: v.folder.room for v in p.voices.values()
             if isinstance(v, RecordedVoice) and v.folder.room is not None}  # fmt: skip
    if not rooms:
        return None
    settings, rate = p.request.mix, p.request.mix.sample_rate
    name, room = next(iter(rooms.items()))
    clips = []
    said = [(e.start, e.segment) for e in p.timeline.events if isinstance(e.segment, Speech)]
    for (start, seg), u in zip(said, p.speech, strict=True):
        if u.voice == name:
            db = levels.gain_of(seg.role) + float(u.stats().get("levelling", 0.0))
            clips.append((start, start + u.length(rate), 10 ** (db / 20)))
    tone = RoomTone(room, rate, voice_chain(settings).highpass)
    return RoomLayer(tone, p.timeline.length, clips, round(FADE * rate), settings.fade_in,
                     settings.fade_out)  # fmt: skip


def _bed(request: Request) -> sounds.Sound | None:
    if not request.ambience:
        return None
    mix = request.mix
    return sounds.load(request.ambience, "ambience", mix.sample_rate, mix.channels)


def _levels(p: Plan, bed: sounds.Sound | None, cache: SpeechCache | None, *,
            encoded: bool = False) -> Levels:  # fmt: skip
    """Return every gain of the mix; for an MP3, with the encoder's own loss made up."""
    settings, codec, bed_codec = p.request.mix, None, None
    if encoded:
        from .encode import level_loss

        rate, folder = settings.sample_rate, cache.folder if cache else None
        sample = codec_sample(p.speech, bed, p.bells, settings)
        codec = level_loss(sample, settings.bitrate, rate, folder)
        if bed is not None and p.speech:
            # A bed loses its own share: noise with air above 16 kHz loses more than speech.
            bed_codec = level_loss(codec_sample([], bed, {}, settings), settings.bitrate, rate,
                                   folder)  # fmt: skip
    levels = anchor(p.timeline, p.speech, bed, p.bells, settings, codec, bed_codec)
    log.info(
        "voice %.1f LUFS as spoken, gain %+.1f dB; bed %+.1f dB",
        levels.voice_lufs, levels.voice_gain, levels.bed_gain,
    )  # fmt: skip
    return levels


def _reported(mixer: Mixer, p: Plan, progress: Listener | None) -> Iterator[np.ndarray]:
    """Yield the mixer's blocks, telling `progress` how many seconds are mixed."""
    rate, total, done = p.timeline.sample_rate, p.timeline.duration, 0
    for block in mixer.final():
        yield block
        done += len(block)
        if progress:
            progress(Progress(Stage.MIXING, done / rate, total))


def _say_what_the_limiter_did(mixer: Mixer) -> None:
    if mixer.limiter.frames_limited:
        # The voice chain holds the voice's peaks; what is left is a bell over speech, or a
        # bed asked to be nearly as loud as the voice.
        report = log.warning if mixer.limiter.most > LIMITER_WARNING else log.info
        report(
            "the safety limiter lowered %d frames, by at most %.1f dB%s",
            mixer.limiter.frames_limited, mixer.limiter.most,
            " (lower --bed-level or use a softer sound)" if report is log.warning else "",
        )  # fmt: skip


def _inputs(request: Request, output: Output) -> list[Path]:
    """Return the files a render reads, which its output must not be."""
    found = [find_practice(request.practice), output.cover, sounds.bell_file(request.bell),
             sounds.bell_file(request.end_bell)]  # fmt: skip
    if request.ambience:
        found.append(sounds.find(request.ambience, "ambience"))
    return [f for f in found if f is not None]
