"""The mix: voice over a looped, ducked ambience bed with bells, at broadcast loudness.

The mix is a pure function of the sample range asked for, so it is rendered in blocks and
streamed to the encoder: memory stays flat however long the session is. It is rendered
twice: once to measure its loudness (BS.1770), once with the fixed gain that brings it to the
target and a true-peak limiter that only touches the rare peaks above the ceiling.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .model import Bell, Speech, Timeline
from .sounds import Sound, make_loop

log = logging.getLogger(__name__)

CONTROL_HZ = 100  # the ducking and fade curves are computed at this rate, then interpolated


@dataclass(frozen=True)
class MixSettings:
    """How the voice, the bed and the bells are balanced, in dB and seconds."""

    rate: int = 44100
    channels: int = 2
    bed_level: float = -20.0  # bed loudness relative to the voice's, before ducking
    duck: float = 9.0  # how far the bed dips under speech
    attack: float = 0.5  # the dip starts this long before speech ...
    release: float = 1.5  # ... and the bed comes back over this long after it
    duck_hold: float = 3.0  # gaps in speech shorter than this stay ducked (no pumping)
    fade_in: float = 3.0
    fade_out: float = 6.0
    bell_level: float = -3.0  # bell loudness relative to the voice's
    loudness: float | None = -16.0  # LUFS target; None leaves the mix as it is
    true_peak: float = -1.0  # dBTP ceiling of the finished file
    block_seconds: float = 10.0


def db(x: float) -> float:
    return 10 ** (x / 20)


class Mixer:
    """Render any range of the finished session's samples."""

    def __init__(
        self,
        timeline: Timeline,
        speech: Sequence[np.ndarray],
        bed: Sound | None,
        bells: dict[str | None, Sound],
        settings: MixSettings,
        voice_lufs: float,
    ) -> None:
        self.timeline = timeline
        self.settings = s = settings
        self.length = timeline.length
        self.gain = 1.0  # the normalising gain, set after measuring
        self.capped = False
        peak = max((float(np.abs(c).max()) for c in speech if len(c)), default=0.0)
        self.voice_peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
        # Speech events and their clips, in time order.
        self.speech = [
            (e.start, clip)
            for e, clip in zip(
                (e for e in timeline.events if isinstance(e.segment, Speech)), speech, strict=True
            )
        ]
        self.speech_starts = [start for start, _ in self.speech]
        self.longest_speech = max((len(c) for _, c in self.speech), default=0)
        # Bells: each struck at its event, its ring overlapping what follows.
        self.bells = []
        self.fade_out_samples = int(s.fade_out * s.rate)
        for e in timeline.events:
            if isinstance(e.segment, Bell):
                sound = bells[e.segment.name]
                gain = db(voice_lufs + s.bell_level - sound.lufs)
                self.bells.append((e.start, sound.audio, gain))
        self.bed = None
        if bed is not None:
            # Our own beds loop exactly as they are; anyone else's gets a crossfaded seam.
            self.bed = bed.audio if bed.seamless else make_loop(bed.audio, s.rate)
            self.bed_gain = db(voice_lufs + s.bed_level - bed.lufs)
            self.bed_curve = self._bed_curve()
            self._control = np.arange(len(self.bed_curve), dtype=np.float64)

    # -- the bed's gain over time: ducking under speech, fades at both ends ---------------------

    def _bed_curve(self) -> np.ndarray:
        s = self.settings
        hop = s.rate / CONTROL_HZ
        n = math.ceil(self.length / hop) + 2
        t = np.arange(n) * hop / s.rate  # seconds
        duck_db = np.zeros(n)
        for start, end in self._speech_regions():
            a, b = start / s.rate, end / s.rate
            depth = np.zeros(n)
            depth[(t >= a) & (t <= b)] = 1.0
            rise = (t > a - s.attack) & (t < a)
            depth[rise] = np.maximum(depth[rise], _ease((t[rise] - (a - s.attack)) / s.attack))
            fall = (t > b) & (t < b + s.release)
            depth[fall] = np.maximum(depth[fall], _ease(1 - (t[fall] - b) / s.release))
            duck_db = np.minimum(duck_db, -s.duck * depth)
        gain = 10 ** (duck_db / 20)
        total = self.length / s.rate
        if s.fade_in > 0:
            gain *= np.sin(np.clip(t / s.fade_in, 0, 1) * np.pi / 2)
        if s.fade_out > 0:
            gain *= np.sin(np.clip((total - t) / s.fade_out, 0, 1) * np.pi / 2)
        return gain * self.bed_gain

    def _speech_regions(self) -> Iterator[tuple[int, int]]:
        hold = int(self.settings.duck_hold * self.settings.rate)
        region = None
        for start, clip in self.speech:
            end = start + len(clip)
            if region and start - region[1] <= hold:
                region = (region[0], end)
                continue
            if region:
                yield region
            region = (start, end)
        if region:
            yield region

    # -- rendering ------------------------------------------------------------------------------

    def stems(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the voice, bed and bells of [start, stop) as frames x 2, before the gain."""
        n = stop - start
        voice = np.zeros((n, 2), np.float32)
        bed = np.zeros((n, 2), np.float32)
        bell = np.zeros((n, 2), np.float32)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi <= lo:
            return voice, bed, bell
        i = bisect.bisect_left(self.speech_starts, lo - self.longest_speech)
        while i < len(self.speech) and self.speech[i][0] < hi:
            at, clip = self.speech[i]
            a, b = max(at, lo), min(at + len(clip), hi)
            if a < b:
                voice[a - start : b - start] += clip[a - at : b - at, None]
            i += 1
        for at, sound, gain in self.bells:
            a, b = max(at, lo), min(at + len(sound), hi)
            if a < b:
                bell[a - start : b - start] += sound[a - at : b - at] * gain
        if self.bells and hi > self.length - self.fade_out_samples:
            # The last whisper of a ring (40 dB down) fades with the file instead of stopping.
            tail = np.arange(lo, hi)
            left = (self.length - tail) / max(self.fade_out_samples, 1)
            bell[lo - start : hi - start] *= np.sin(np.clip(left, 0, 1) * np.pi / 2)[:, None]
        if self.bed is not None:
            hop = self.settings.rate / CONTROL_HZ
            pos = np.arange(lo, hi, dtype=np.float64) / hop
            curve = np.interp(pos, self._control, self.bed_curve).astype(np.float32)
            target = bed[lo - start : hi - start]
            _tile(self.bed, lo, target)
            target *= curve[:, None]
        return voice, bed, bell

    def raw(self, start: int, stop: int) -> np.ndarray:
        """Return the mix of [start, stop) before normalisation, in the output's channels."""
        voice, bed, bell = self.stems(start, stop)
        out = voice + bed + bell
        if self.settings.channels == 1:
            out = out.mean(axis=1, keepdims=True)
        return out

    def blocks(self) -> Iterator[tuple[int, int]]:
        step = int(self.settings.block_seconds * self.settings.rate)
        for a in range(0, self.length, step):
            yield a, min(a + step, self.length)

    def measure(self) -> float:
        """Return the integrated loudness of the unnormalised mix, streamed block by block."""
        from .encode import Meter

        with Meter(self.settings.rate, self.settings.channels) as meter:
            for a, b in self.blocks():
                meter.write(self.raw(a, b))
        return meter.loudness

    def normalise(self) -> tuple[float, float]:
        """Set the gain that brings the mix to the target loudness; return (measured, gain dB)."""
        target = self.settings.loudness
        if target is None:
            return math.nan, 0.0
        measured = self.measure()
        if not math.isfinite(measured):
            return measured, 0.0
        self._set_gain(target - measured, measured)
        return measured, 20 * math.log10(self.gain)

    def _set_gain(self, gain_db: float, measured: float) -> None:
        """Set the gain, but never so high that the limiter would squash the voice."""
        ceiling_db = self.settings.true_peak - LIMITER_HEADROOM
        limit_db = self.voice_peak_db + gain_db - ceiling_db
        self.capped = limit_db > MAX_VOICE_LIMITING
        if self.capped:
            allowed = ceiling_db + MAX_VOICE_LIMITING - self.voice_peak_db
            log.warning(
                "the voice would need %.1f dB of limiting to reach %.1f LUFS; the session is "
                "mostly silence under a quiet bed, so it stays %.1f dB quieter "
                "(raise --bed-level or lower --loudness to change this)",
                limit_db, self.settings.loudness, gain_db - allowed,
            )  # fmt: skip
            gain_db = allowed
        self.gain = db(gain_db)
        log.info("loudness %.1f LUFS measured, gain %+.1f dB", measured, gain_db)

    def final(self) -> Iterator[np.ndarray]:
        """Yield the finished mix in blocks: gain, then the true-peak limiter."""
        margin = LIMITER_MARGIN
        ceiling = db(self.settings.true_peak - LIMITER_HEADROOM)
        for a, b in self.blocks():
            x = self.raw(a - margin, b + margin) * np.float32(self.gain)
            yield limit(x, ceiling)[margin : margin + (b - a)]

    def correct(self, measured: float) -> bool:
        """Adjust the gain after a render measured `measured` LUFS; return True if it must be redone.

        The limiter takes a little loudness from peaky material (a formant voice has a high
        crest factor); the rare render that misses the target by more than this tolerance is
        made again with the gain corrected by what was missed.
        """
        target = self.settings.loudness
        if (
            target is None
            or self.capped
            or not math.isfinite(measured)
            or abs(measured - target) <= LOUDNESS_TOLERANCE
        ):
            return False
        before = self.gain
        self._set_gain(20 * math.log10(self.gain) + target - measured, measured)
        return self.gain != before


#: How far (LU) a render may land from the loudness target before it is made again.
LOUDNESS_TOLERANCE = 0.4
#: The most the limiter may take from the voice's highest peak, in dB: beyond this it would
#: be audibly compressing speech, so the session is left quieter instead.
MAX_VOICE_LIMITING = 4.0


# -- true-peak limiting --------------------------------------------------------------------------

#: The limiter aims this far below the ceiling: MP3 encoding lifts true peaks a little.
LIMITER_HEADROOM = 1.5
LIMITER_LOOKAHEAD = 255  # samples (~6 ms at 44.1 kHz)
LIMITER_MARGIN = 4 * LIMITER_LOOKAHEAD


def _interpolators(taps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return tap offsets and windowed-sinc filters for the points 1/4, 2/4, 3/4 between samples."""
    offsets = np.arange(-taps + 1, taps + 1)
    filters = []
    for frac in (0.25, 0.5, 0.75):
        t = offsets - frac
        h = np.sinc(t) * (0.5 + 0.5 * np.cos(np.pi * t / (taps + 1)))
        filters.append(h / h.sum())
    return offsets, np.array(filters).T.astype(np.float32)


_OFFSETS, _PHASES = _interpolators()


def _frame_peaks(x: np.ndarray) -> np.ndarray:
    """Return each frame's largest absolute sample (faster than a max over a short axis)."""
    peak = np.abs(x[:, 0])
    for c in range(1, x.shape[1]):
        np.maximum(peak, np.abs(x[:, c]), out=peak)
    return peak


def true_peaks(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Return the true peak (4x oversampled, BS.1770 annex 2) at `frames`, over all channels."""
    idx = np.clip(frames[:, None] + _OFFSETS[None, :], 0, len(x) - 1)
    between = np.einsum("fkc,kp->fpc", x[idx], _PHASES)
    return np.maximum(_frame_peaks(x[frames]), np.abs(between).max(axis=(1, 2)))


def limit(x: np.ndarray, ceiling: float) -> np.ndarray:
    """Return x with true peaks held at or below `ceiling` by a smooth, look-ahead gain dip.

    Only frames within 6 dB of the ceiling are oversampled: true peaks of real material stay
    within a few dB of the sample peaks, and most of a meditation is nowhere near the ceiling.
    """
    if len(x) == 0:
        return x
    hot = np.flatnonzero(_frame_peaks(x) > ceiling * 0.5)
    if len(hot) == 0:
        return x
    peaks = true_peaks(x, hot)
    over = peaks > ceiling
    if not over.any():
        return x
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    need = np.ones(len(x), np.float32)
    need[hot[over]] = ceiling / peaks[over]
    w = LIMITER_LOOKAHEAD
    held = minimum_filter1d(need, 2 * w + 1, mode="nearest")
    # Two centred box filters (a triangle) no wider than the hold keep the gain at or below
    # what every peak needs, with no corner anywhere.
    smooth = uniform_filter1d(uniform_filter1d(held, w, mode="nearest"), w, mode="nearest")
    return x * smooth[:, None]


def _tile(loop: np.ndarray, start: int, out: np.ndarray) -> None:
    """Fill `out` with the looped `loop` from position `start`, by contiguous copies."""
    n, filled = len(loop), 0
    at = start % n
    while filled < len(out):
        take = min(n - at, len(out) - filled)
        out[filled : filled + take] = loop[at : at + take]
        filled += take
        at = 0


def _ease(x: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp from 0 to 1: no corner at either end, so no audible step."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0, 1))
