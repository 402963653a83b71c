"""The mix: the voice over a looped, ducked ambience bed with bells, in one pass.

Every gain is known before the first sample (`levels.anchor`), so the session is rendered
once, block by block, straight into the encoder: memory stays flat however long it is. A
true-peak safety limiter guards the ceiling; the voice chain has already held the voice's
peaks, so it engages only where a bell meets speech, and only blocks that come within 3 dB
of the ceiling are looked at closely.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .. import loudness
from ..model import Bell, Speech, Timeline
from ..sounds import Sound, make_loop
from ..voices.speech import Utterance
from . import bed as beds
from .levels import Levels, MixSettings, anchor, check, codec_sample, loudest, voice_chain
from .room import RoomLayer, RoomTone

__all__ = [
    "Levels", "LimiterStats", "MixSettings", "Mixer", "RoomLayer", "RoomTone", "anchor", "check", "codec_sample", "loudest",
    "voice_chain",
]  # fmt: skip

log = logging.getLogger(__name__)

#: The safety limiter's dip reaches this far either side of a peak, seconds.
LIMITER_REACH = 0.005


def from_db(x: float) -> float:
    """Return the amplitude factor of a gain of `x` dB."""
    return 10 ** (x / 20)


@dataclass
class LimiterStats:
    """What the safety limiter did over a whole render."""

    blocks_checked: int = 0
    frames_limited: int = 0  # frames whose gain it lowered by more than 0.1 dB
    most: float = 0.0  # the deepest dip, dB


class Mixer:
    """Render any range of the finished session's samples."""

    def __init__(
        self,
        timeline: Timeline,
        speech: Sequence[Utterance],
        bed: Sound | None,
        bells: dict[str | None, Sound],
        settings: MixSettings,
        levels: Levels,
        room: RoomLayer | None = None,
    ) -> None:
        self.timeline = timeline
        self.settings = s = settings
        self.levels = levels
        self.length = timeline.length
        self.channels = s.channels
        said = [(e.start, e.segment) for e in timeline.events if isinstance(e.segment, Speech)]
        starts = [start for start, _ in said]
        self.speech = list(zip(starts, speech, strict=True))
        # Each voice at its own gain (one gain for all when one voice reads).
        self.voice_gains = [np.float32(from_db(levels.gain_of(seg.role))) for _, seg in said]
        self.speech_starts = starts
        self.longest_speech = max((u.length(s.sample_rate) for u in speech), default=0)
        self._clips: dict[int, np.ndarray] = {}
        # Bells: each struck at its event, its ring overlapping what follows.
        self.bells = [
            (
                e.start,
                bells[e.segment.name].audio,
                np.float32(from_db(levels.bell_gains[e.segment.name])),
            )
            for e in timeline.events
            if isinstance(e.segment, Bell)
        ]
        self.fade_out_samples = int(s.fade_out * s.sample_rate)
        self.bed = None
        if bed is not None:
            # Our own beds loop exactly as they are; anyone else's gets a crossfaded seam.
            self.bed = bed.audio if bed.seamless else make_loop(bed.audio, s.sample_rate)
            spans = ((start, start + u.length(s.sample_rate)) for start, u in self.speech)
            regions = beds.speech_regions(spans, int(s.duck_hold * s.sample_rate))
            shape = beds.curve(self.length, s.sample_rate, regions, s.duck, s.attack, s.release,
                               s.fade_in, s.fade_out)  # fmt: skip
            self.bed_curve = shape * from_db(levels.bed_gain) * bed.scale
            self._control = np.arange(len(self.bed_curve), dtype=np.float64)
        self.ceiling = from_db(levels.ceiling)
        self.limiter = LimiterStats()
        self.room = room

    # -- rendering ------------------------------------------------------------------------------

    def stems(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the voice, bed and bells of [start, stop) as frames x channels, gains applied."""
        shape = (stop - start, self.channels)
        voice, bed, bell = (np.zeros(shape, np.float32) for _ in range(3))
        self._add_voice(voice, start, stop)
        if self.room:
            self.room.add(voice, start, stop)
        self._add_bed(bed, start, stop)
        self._add_bells(bell, start, stop)
        return voice, bed, bell

    def mix(self, start: int, stop: int) -> np.ndarray:
        """Return the mix of [start, stop) before the safety limiter, frames x channels."""
        out = np.zeros((stop - start, self.channels), np.float32)
        self._add_bed(out, start, stop)
        self._add_voice(out, start, stop)
        if self.room:
            self.room.add(out, start, stop)
        self._add_bells(out, start, stop)
        return out

    def blocks(self) -> Iterator[tuple[int, int]]:
        step = int(self.settings.block_seconds * self.settings.sample_rate)
        for a in range(0, self.length, step):
            yield a, min(a + step, self.length)

    def final(self) -> Iterator[np.ndarray]:
        """Yield the finished mix in blocks, true peaks held under the ceiling."""
        reach = max(int(LIMITER_REACH * self.settings.sample_rate), 1)
        margin = 3 * reach + 16  # the frames outside a block that its limiting depends on
        for a, b in self.blocks():
            x = self.mix(a - margin, b + margin)
            yield self._limit(x, reach)[margin : margin + (b - a)]

    def _limit(self, x: np.ndarray, reach: int) -> np.ndarray:
        peaks = loudness.frame_peaks(x)
        if len(peaks) == 0 or peaks.max() < self.ceiling * from_db(-loudness.TRUE_PEAK_SEARCH_DB):
            return x
        self.limiter.blocks_checked += 1
        need = loudness.peak_need(x, self.ceiling)
        if need is None:
            return x
        gain = loudness.smooth_dip(need, reach).astype(np.float32)
        dipped = np.flatnonzero(gain < from_db(-0.1))
        self.limiter.frames_limited += len(dipped)
        self.limiter.most = max(self.limiter.most, -20 * math.log10(float(gain.min())))
        return x * gain[:, None]

    def _add_voice(self, out: np.ndarray, start: int, stop: int) -> None:
        lo, hi = max(start, 0), min(stop, self.length)
        if hi <= lo:
            return
        rate = self.settings.sample_rate
        first = bisect.bisect_left(self.speech_starts, lo - self.longest_speech)
        # Utterances are read from the cache as they come due and dropped once played.
        for i in [i for i in self._clips if i < first]:
            del self._clips[i]
        i = first
        while i < len(self.speech) and self.speech[i][0] < hi:
            at, utterance = self.speech[i]
            end = at + utterance.length(rate)
            a, b = max(at, lo), min(end, hi)
            if a < b:
                if i not in self._clips:
                    self._clips[i] = utterance.audio(rate) * self.voice_gains[i]
                clip = self._clips[i]
                out[a - start : b - start] += clip[a - at : b - at, None]
            i += 1

    def _add_bells(self, out: np.ndarray, start: int, stop: int) -> None:
        lo, hi = max(start, 0), min(stop, self.length)
        if hi <= lo or not self.bells:
            return
        # The last whisper of a ring (40 dB down) fades with the file instead of stopping;
        # only the bells are faded here: the bed has its own fade and the voice none.
        tail = self.length - self.fade_out_samples
        target = out if hi <= tail else np.zeros_like(out)
        for at, sound, gain in self.bells:
            a, b = max(at, lo), min(at + len(sound), hi)
            if a < b:
                target[a - start : b - start] += sound[a - at : b - at] * gain
        if target is not out:
            first = max(lo, tail)
            left = (self.length - np.arange(first, hi)) / max(self.fade_out_samples, 1)
            fade = np.sin(np.clip(left, 0, 1) * np.pi / 2).astype(np.float32)
            target[first - start : hi - start] *= fade[:, None]
            out += target

    def _add_bed(self, out: np.ndarray, start: int, stop: int) -> None:
        lo, hi = max(start, 0), min(stop, self.length)
        if hi <= lo or self.bed is None:
            return
        hop = self.settings.sample_rate / beds.CONTROL_HZ
        pos = np.arange(lo, hi, dtype=np.float64) / hop
        gain = np.interp(pos, self._control, self.bed_curve).astype(np.float32)
        target = out[lo - start : hi - start]  # silent until now: the bed goes in first
        beds.tile(self.bed, lo, target)
        target *= gain[:, None]
