"""The session in time: framed with its lead-in, bells and lead-out, fitted to its length.

`frame()` puts a script's segments in a session (lead-in and lead-out, the opening and
closing bells, a ring-out long enough for the last bell); `fit()` shares the spare time
among the elastic pauses by weight. Everything is counted in whole samples so the finished
file is exactly as long as asked.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence

from .durations import format_duration
from .errors import LengthError
from .model import Bell, Event, Pause, PauseKind, Segment, Speech, Timeline, Timing


def reach(
    segments: Sequence[Segment], speech_samples: Sequence[int], rate: int
) -> tuple[int, float]:
    """Return the shortest and longest length in samples (inf: no limit) the segments allow."""
    lo = sum(speech_samples)
    hi: float = lo
    for seg in segments:
        if isinstance(seg, Pause):
            lo += _samples(seg.minimum, rate)
            hi += math.inf if seg.unbounded else _samples(seg.maximum, rate)
    return lo, (hi if math.isinf(hi) else int(hi))


def _samples(seconds: float, rate: int) -> int:
    return round(seconds * rate)


def share(pauses: Sequence[Pause], spare: int, rate: int) -> list[int]:
    """Return extra samples for each pause: `spare` shared by weight, clamped to each range.

    Water-filling: every elastic pause gets spare * weight / total weight; a pause whose
    share would pass its maximum is clamped there and the rest is shared again among the
    others. Fractions are settled by largest remainder so the total is exact.
    """
    room = [
        0.0
        if not p.elastic
        else (math.inf if p.unbounded else _samples(p.maximum, rate) - _samples(p.minimum, rate))
        for p in pauses
    ]
    extra = [0.0] * len(pauses)
    active = [i for i, r in enumerate(room) if r > 0]
    left = float(spare)
    while left > 1e-9 and active:
        total_weight = sum(pauses[i].weight for i in active)
        full = [i for i in active if left * pauses[i].weight / total_weight >= room[i] - extra[i]]
        if not full:
            for i in active:
                extra[i] += left * pauses[i].weight / total_weight
            left = 0.0
            break
        for i in full:
            left -= room[i] - extra[i]
            extra[i] = room[i]
            active.remove(i)
    whole = [math.floor(x) for x in extra]
    short = spare - sum(whole)
    order = sorted(
        (i for i in range(len(pauses)) if whole[i] < room[i]),
        key=lambda i: (extra[i] - whole[i], pauses[i].weight),
        reverse=True,
    )
    for i in order[:short]:
        whole[i] += 1
    return whole


def fit(
    segments: Sequence[Segment],
    speech_samples: Sequence[int],
    rate: int,
    target: int | None = None,
    name: str = "practice",
    file: str | None = None,
) -> Timeline:
    """Return the timeline of `segments` lasting exactly `target` samples (or its shortest)."""
    lo, hi = reach(segments, speech_samples, rate)
    if target is None:
        target = lo
    if not lo <= target <= hi:
        longest = "any length" if math.isinf(hi) else format_duration(hi / rate)
        reason = (
            f"{format_duration(target / rate)} is out of reach: with this voice it can last "
            f"from {format_duration(lo / rate)} to {longest}"
        )
        raise LengthError(f"{name}: {reason}", file=file, reason=reason)
    pauses = [seg for seg in segments if isinstance(seg, Pause)]
    extra = iter(share(pauses, target - lo, rate))
    speech = iter(speech_samples)
    events = []
    t = 0
    for seg in segments:
        if isinstance(seg, Speech):
            n = next(speech)
        elif isinstance(seg, Pause):
            n = _samples(seg.minimum, rate) + next(extra)
        else:
            n = 0
        events.append(Event(seg, t, n))
        t += n
    assert t == target, (t, target)
    return Timeline(tuple(events), t, rate)


def ring_out(segments: Sequence[Segment], bell_seconds: dict[str | None, float]) -> list[Segment]:
    """Return segments with a closing silence long enough for the last bells to ring out."""
    need = 0.0
    after = 0.0
    for seg in reversed(segments):
        if isinstance(seg, Speech):
            break
        if isinstance(seg, Pause):
            after += seg.minimum
        elif isinstance(seg, Bell):
            need = max(need, bell_seconds.get(seg.name, 0.0) - after)
    if need <= 0:
        return list(segments)
    return [*segments, Pause(need, need, kind=PauseKind.RING_OUT)]


#: The bell that is not struck: `[bell none]` keeps a place silent where a bell would go.
NO_BELL = "none"

#: Seconds between two strikes of one bell (`--strikes 3`).
STRIKE_SPACING = 4.0


def frame(
    body: Sequence[Segment],
    timing: Timing,
    bell: str,
    ring: Callable[[str | None], float],
    *,
    open_and_close: bool = False,
    end_bell: str | None = None,
    strikes: int = 1,
    delay: float | None = None,
) -> list[Segment]:
    """Return a script's segments framed for a session: lead-in, bells, lead-out, ring-out.

    A bare `[bell]` is struck as `bell`. With `open_and_close` the session opens and closes
    with `bell`: a script that already opens or closes with a bell gets it there, not a
    second bell struck at the same moment. `end_bell` is struck instead at the close (the
    script's closing bell, or one added). Every bell is struck `strikes` times,
    STRIKE_SPACING apart. `delay` is the silence before the first sound (default: the
    script's lead-in). `ring(name)` is how long a bell rings, seconds.
    """
    body = [Bell(seg.name or bell, seg.place) if isinstance(seg, Bell) else seg for seg in body]
    opens = closes = False
    if open_and_close:
        body, opens = _strike_first_bell(body, bell)
        body, closes = _strike_first_bell(body[::-1], bell)
        body = body[::-1]
    # `[bell none]` is a place where a bell is meant not to ring (the bedtime ending's close).
    body = [seg for seg in body if not (isinstance(seg, Bell) and seg.name == NO_BELL)]
    lead_in = timing.lead_in if delay is None else delay
    segments: list[Segment] = [Pause(lead_in, lead_in, kind=PauseKind.LEAD_IN)]
    if open_and_close and not opens:
        segments.append(Bell(bell))
    segments += body
    if open_and_close and not closes:
        segments.append(Bell(bell))
    if end_bell:
        segments = _with_end_bell(segments, end_bell)
    if strikes > 1:
        segments = _struck(segments, strikes)
    segments.append(Pause(timing.lead_out, timing.lead_out, kind=PauseKind.LEAD_OUT))
    names = {seg.name for seg in segments if isinstance(seg, Bell)}
    return ring_out(segments, {name: ring(name) for name in names})


def _with_end_bell(segments: list[Segment], name: str) -> list[Segment]:
    """Return segments whose closing bell is `name`: the last bell after the last words
    (never the opening bell of a session without words), or a bell added at the end."""
    bells = [i for i, seg in enumerate(segments) if isinstance(seg, Bell)]
    spoken = [i for i, seg in enumerate(segments) if isinstance(seg, Speech)]
    last = bells[-1] if bells else None
    out = list(segments)
    if last is not None and (last > (spoken[-1] if spoken else bells[0])):
        old = out[last]
        assert isinstance(old, Bell)
        out[last] = Bell(name, old.place)
    else:
        out.append(Bell(name))
    return out


def _struck(segments: list[Segment], strikes: int) -> list[Segment]:
    """Return segments with every bell struck `strikes` times, STRIKE_SPACING apart."""
    gap = Pause(STRIKE_SPACING, STRIKE_SPACING, kind=PauseKind.STRIKE)
    out: list[Segment] = []
    for seg in segments:
        out.append(seg)
        if isinstance(seg, Bell):
            for _ in range(strikes - 1):
                out += [gap, seg]
    return out


def _strike_first_bell(segments: list[Segment], name: str) -> tuple[list[Segment], bool]:
    """Return segments with their first bell before any speech struck as `name`, and whether
    there is one (a `[bell none]` there stays silent, and counts)."""
    out = list(segments)
    for i, seg in enumerate(out):
        if isinstance(seg, Speech):
            break
        if isinstance(seg, Bell):
            if seg.name != NO_BELL:
                out[i] = Bell(name, seg.place)
            return out, True
    return out, False


def bell_names(body: Sequence[Segment], bell: str, *, session_bell: bool) -> set[str]:
    """Return the names of every bell a framed session strikes (a bare [bell] is `bell`)."""
    names = {seg.name or bell for seg in body if isinstance(seg, Bell)} - {NO_BELL}
    return names | {bell} if session_bell else names


#: An interval bell falling this near another bell (seconds) is not struck: never two at once.
BELL_CLEARANCE = 10.0


#: No timer bell is struck in the last this many seconds: the closing bell's place.
TIMER_END_CLEARANCE = 30.0


def timer_origin(timeline: Timeline) -> int:
    """Return where a timer counts from: the first bell struck before any speech, else 0."""
    struck = [e.start for e in timeline.events if isinstance(e.segment, Bell)]
    first_speech = next((e.start for e in timeline.events if isinstance(e.segment, Speech)),
                        timeline.length)  # fmt: skip
    return struck[0] if struck and struck[0] <= first_speech else 0


def with_interval_bells(
    timeline: Timeline, every: float, name: str | None, strikes: int = 1
) -> Timeline:
    """Return the timeline with a bell every `every` seconds from the opening bell.

    Counted from timer_origin(), none in the last TIMER_END_CLEARANCE seconds, and none
    within BELL_CLEARANCE of a bell the session already strikes there.
    """
    rate = timeline.sample_rate
    step = round(every * rate)
    origin = timer_origin(timeline)
    stop = timeline.length - TIMER_END_CLEARANCE * rate
    marks = range(origin + step, round(stop), step) if step > 0 else range(0)
    return with_timer_bells(timeline, [(t - origin) / rate for t in marks], name, strikes)


def with_timer_bells(
    timeline: Timeline, times: Sequence[float], name: str | None, strikes: int = 1
) -> Timeline:
    """Return the timeline with a bell at each of `times` (seconds from timer_origin()).

    A time within BELL_CLEARANCE of a bell already struck (the opening bell at 0, a
    script's own bells, another timer bell) is not struck again: never two bells at once.
    Each is struck `strikes` times, STRIKE_SPACING apart.
    """
    rate = timeline.sample_rate
    origin = timer_origin(timeline)
    struck = sorted(e.start for e in timeline.events if isinstance(e.segment, Bell))
    clear = BELL_CLEARANCE * rate
    bells = []
    for seconds in times:
        t = origin + round(seconds * rate)
        i = bisect.bisect(struck, t)  # only the neighbours can be too near
        if all(abs(t - s) >= clear for s in struck[max(i - 1, 0) : i + 1]):
            struck.insert(i, t)
            for k in range(strikes):
                at = t + round(k * STRIKE_SPACING * rate)
                if at < timeline.length:
                    bells.append(Event(Bell(name), at, 0))
    events = sorted([*timeline.events, *bells], key=lambda e: e.start)
    return Timeline(tuple(events), timeline.length, rate)


_ENDS_PARAGRAPH = (PauseKind.PARAGRAPH, PauseKind.PAUSE)


def paragraphs(timeline: Timeline) -> list[list[Event]]:
    """Return the spoken events in paragraphs: a pause, a paragraph break or another voice
    ends one."""
    out: list[list[Event]] = [[]]
    for e in timeline.events:
        seg = e.segment
        if isinstance(seg, Speech):
            if out[-1] and out[-1][-1].segment.role != seg.role:  # type: ignore[union-attr]
                out.append([])
            out[-1].append(e)
        elif isinstance(seg, Pause) and seg.kind in _ENDS_PARAGRAPH and out[-1]:
            out.append([])
    return [para for para in out if para]


def turns(paras: list[list[Event]], speakers: Mapping[str, str]) -> list[str]:
    """Return, for each paragraph, its speaker's name where another speaker had the last
    one, else "" (everywhere "" without `speakers`: one voice reads)."""
    out, last = [], None
    for para in paras:
        role = para[0].segment.role  # type: ignore[union-attr]
        out.append(speakers.get(role, "") if speakers and role != last else "")
        last = role
    return out
