"""Fit a practice to a length: share the spare time among elastic pauses by weight.

Everything is counted in whole samples so the finished file is exactly as long as asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .durations import format_duration
from .errors import LengthError
from .model import Bell, Event, Pause, Segment, Speech, Timeline


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
) -> Timeline:
    """Return the timeline of `segments` lasting exactly `target` samples (or its shortest)."""
    lo, hi = reach(segments, speech_samples, rate)
    if target is None:
        target = lo
    if not lo <= target <= hi:
        longest = "any length" if math.isinf(hi) else format_duration(hi / rate)
        raise LengthError(
            f"{name}: {format_duration(target / rate)} is out of reach: with this voice it "
            f"can last from {format_duration(lo / rate)} to {longest}"
        )
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
    return [*segments, Pause(need, need, kind="ring-out")]
