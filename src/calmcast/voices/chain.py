"""The voice chain: each utterance made ready for the mix once, then cached with it.

Synthetic voices come out uneven: espeak's formant pulses and Piper's per-sentence peak
normalisation give a peak-to-loudness ratio (PLR) of 17-22 dB and sentences up to 5 dB
apart. The mix anchors its loudness on the voice, so every utterance is prepared here, in
order:

1. a high-pass (2nd-order Butterworth, 80 Hz) against rumble and DC;
2. a leveller: the utterance is brought to a reference loudness (-20 LUFS), so every
   sentence sits at the same level;
3. a gentle compressor: 2:1 with a 6 dB soft knee on a 30 ms RMS detector, its threshold a
   little above the reference, smoothed over 10 ms (no pumping, no click), then levelled
   again;
4. a look-ahead peak leveller that holds true peaks (4x oversampled) at the PLR the target
   needs, with a smooth gain dip of a few milliseconds around each peak it touches.

The PLR comes from the session's target: a -16 LUFS voice under a -1 dBTP ceiling, less the
encoder's margin, may peak about 14 dB above its loudness. The result is measured as it is
made: its K-weighted energy in 10 ms bins (so the mix can measure the voice on the timeline
without reading a sample), and the statistics of what each stage did.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import dsp, loudness

#: Bump when the chain's processing changes, so cached utterances are prepared again.
CHAIN_VERSION = 3
#: The compressor's threshold sits this far below the allowed peak, clamped to the range below.
THRESHOLD_BELOW_PEAK = 11.0
THRESHOLD_RANGE = (0.0, 6.0)
#: The most the peak leveller should take off the highest peaks, dB; the compressor comes down
#: in steps of THRESHOLD_STEP, at most MAX_THRESHOLD_DROP, until this is all that is left.
LIMITER_ALLOWANCE = 2.0
THRESHOLD_STEP = 1.5
MAX_THRESHOLD_DROP = 9.0
#: Bins of the cached energy profile, in seconds.
BIN_SECONDS = 0.01
#: Samples more than 50 dB below an utterance's peak do not count as speech in the statistics.
ACTIVE_BELOW_PEAK = 10 ** (-50 / 20)


@dataclass(frozen=True)
class VoiceChain:
    """The settings of the voice chain; two chains with equal settings make equal audio."""

    peak_to_loudness: float = 14.0  # dB: highest true peak allowed above the utterance loudness
    highpass: float = 80.0  # Hz
    reference: float = -20.0  # LUFS: the loudness every utterance is levelled to
    max_levelling: float = 12.0  # dB: the most the leveller moves one utterance up or down
    ratio: float = 2.0
    knee: float = 6.0  # dB
    detector: float = 0.010  # s: the compressor's RMS window
    smoothing: float = 0.005  # s: the compressor's gain hold and smoothing
    peak_hold: float = 0.004  # s: the peak leveller's dip reaches this far either side

    @classmethod
    def for_target(cls, loudness_lufs: float, ceiling_dbtp: float) -> VoiceChain:
        """Return the chain for a voice at `loudness_lufs` peaking at most at `ceiling_dbtp`."""
        return cls(peak_to_loudness=round(ceiling_dbtp - loudness_lufs, 1))

    @property
    def threshold(self) -> float:
        """Return the compressor threshold, dB above the reference loudness (RMS)."""
        lo, hi = THRESHOLD_RANGE
        return min(max(self.peak_to_loudness - THRESHOLD_BELOW_PEAK, lo), hi)

    def key(self) -> str:
        """Return a short stable name for these settings (the speech cache keys by it)."""
        blob = json.dumps([CHAIN_VERSION, asdict(self)], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def process(self, samples: np.ndarray, rate: int) -> Prepared:
        """Return the utterance prepared for the mix, with its energy profile and statistics."""
        x = np.asarray(samples, dtype=np.float64)
        if len(x) == 0:
            return Prepared(np.zeros(0, np.float32), rate, np.zeros(0), ChainStats())
        before_peak = loudness.true_peak(x)
        before = clip_loudness(x, rate)
        x = _highpass(x, rate, self.highpass)
        level = clip_loudness(x, rate)
        if not math.isfinite(level):  # nothing audible: leave it alone
            return Prepared(x.astype(np.float32), rate, energy_bins(x, rate), ChainStats())
        levelling = min(max(self.reference - level, -self.max_levelling), self.max_levelling)
        x *= 10 ** (levelling / 20)
        x, squeeze = self._compress(x, rate)
        x, held = self._hold_peaks(x, rate)
        active = _active(x)
        after = clip_loudness(x, rate)
        stats = ChainStats(
            levelling=levelling,
            compressed=_fraction(squeeze, active, 1.0),
            compression_max=float(squeeze.max(initial=0.0)),
            limited=_fraction(held, active, 0.5),
            limiting_max=float(held.max(initial=0.0)),
            plr_before=_db(before_peak) - before,
            plr_after=_db(loudness.true_peak(x)) - after,
            crest_before=_crest(np.asarray(samples, dtype=np.float64)),
            crest_after=_crest(x),
        )
        return Prepared(x.astype(np.float32), rate, energy_bins(x, rate), stats)

    def _compress(self, x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Return x compressed as gently as will do, levelled again, and its gain reduction (dB).

        The threshold starts high and comes down in steps only while the utterance would
        still leave the peak leveller more than LIMITER_ALLOWANCE dB to take off its peaks.
        """
        allowed = self.peak_to_loudness + LIMITER_ALLOWANCE
        threshold = self.threshold
        while True:
            y, reduction = self._compress_at(x, rate, threshold)
            y *= 10 ** ((self.reference - clip_loudness(y, rate)) / 20)
            plr = _db(loudness.true_peak(y)) - self.reference
            if plr <= allowed or threshold <= self.threshold - MAX_THRESHOLD_DROP:
                return y, reduction
            threshold -= THRESHOLD_STEP

    def _compress_at(
        self, x: np.ndarray, rate: int, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        window = max(int(self.detector * rate), 1)
        rms_db = 10 * np.log10(np.maximum(dsp.box(x * x, window), 1e-12))
        over = rms_db - (self.reference + threshold)
        knee = self.knee
        slope = 1 - 1 / self.ratio
        reduction = np.where(
            over <= -knee / 2,
            0.0,
            np.where(over >= knee / 2, slope * over, slope * (over + knee / 2) ** 2 / (2 * knee)),
        )
        hold = max(int(self.smoothing * rate), 1)
        gain_db = dsp.box(dsp.box(dsp.running_min(-reduction, 2 * hold + 1), hold), hold)
        return x * 10 ** (gain_db / 20), -gain_db

    def _hold_peaks(self, x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Return x with true peaks at most `peak_to_loudness` above its loudness.

        Holding peaks takes a little loudness with it, so the peaks are held that much lower
        and the loss made up: the utterance stays at the reference and peaks where allowed.
        """
        reach = max(int(self.peak_hold * rate), 1)
        ceiling = 10 ** ((self.reference + self.peak_to_loudness) / 20)
        need = loudness.peak_need(x, ceiling)
        if need is None:
            return x, np.zeros(len(x))
        gain = loudness.smooth_dip(need, reach)
        loss = self.reference - clip_loudness(x * gain, rate)
        if loss > 0.01:
            again = loudness.peak_need(x, ceiling * 10 ** (-loss / 20))
            gain = loudness.smooth_dip(again, reach) if again is not None else gain
        made_up = 10 ** ((self.reference - clip_loudness(x * gain, rate)) / 20)
        y = x * gain * made_up
        # Making up the loss can lift a peak a hair over: hold those once more, as they are.
        over = loudness.peak_need(y, ceiling)
        if over is not None:
            again = loudness.smooth_dip(over, reach)
            y *= again
            gain *= again
        return y, -20 * np.log10(gain)


@dataclass(frozen=True)
class ChainStats:
    """What the chain did to one utterance (dB, and fractions of its audible samples)."""

    levelling: float = 0.0  # gain the leveller applied
    compressed: float = 0.0  # share of speech compressed by more than 1 dB
    compression_max: float = 0.0
    limited: float = 0.0  # share of speech the peak leveller lowered by more than 0.5 dB
    limiting_max: float = 0.0
    plr_before: float = math.nan  # true peak above loudness, as synthesised
    plr_after: float = math.nan
    crest_before: float = math.nan  # sample peak above RMS of the audible part
    crest_after: float = math.nan


@dataclass(frozen=True)
class Prepared:
    """An utterance after the chain: mono float32 at the voice's rate, and how loud it is."""

    audio: np.ndarray
    rate: int
    bins: np.ndarray  # K-weighted sums of squares, one per BIN_SECONDS
    stats: ChainStats


def clip_loudness(x: np.ndarray, rate: int) -> float:
    """Return an utterance's loudness as it measures on a timeline, between silences.

    Gating blocks that straddle its start and end count as they would in a session, so the
    utterance is measured with a block of silence either side.
    """
    pad = np.zeros(loudness.BLOCK_STEPS - 1)
    bins = np.concatenate([pad, energy_bins(x, rate, 0.1), pad])
    return loudness.gated(bins, loudness.step_samples(rate))


def energy_bins(x: np.ndarray, rate: int, seconds: float = BIN_SECONDS) -> np.ndarray:
    """Return the K-weighted sum of squares of mono x in consecutive bins of `seconds`."""
    weighted = dsp.sosfilt(loudness.k_weighting(rate), np.asarray(x, dtype=np.float64))
    edges = np.floor(np.arange(0, len(x) / rate + seconds, seconds) * rate).astype(np.int64)
    edges = np.unique(np.clip(edges, 0, len(x)))
    if len(edges) < 2:
        return np.zeros(0)
    total = np.concatenate([[0.0], np.cumsum(weighted * weighted)])
    return np.diff(total[edges])


def _highpass(x: np.ndarray, rate: int, hz: float) -> np.ndarray:
    if hz <= 0 or hz >= rate / 2:
        return x.copy()
    return dsp.sosfilt(dsp.highpass(hz, rate), x)


def _fraction(reduction: np.ndarray, active: np.ndarray, over_db: float) -> float:
    count = int(active.sum())
    return float(np.count_nonzero(reduction[active] > over_db)) / count if count else 0.0


def _active(x: np.ndarray) -> np.ndarray:
    """Return which samples are speech: within 50 dB of the utterance's peak."""
    level = np.abs(x)
    return level > level.max(initial=0.0) * ACTIVE_BELOW_PEAK


def _crest(x: np.ndarray) -> float:
    active = _active(x)
    if not active.any():
        return math.nan
    return _db(float(np.abs(x).max())) - _db(float(np.sqrt(np.mean(x[active] ** 2))))


def _db(x: float) -> float:
    return 20 * math.log10(x) if x > 0 else -math.inf


def summarise(done: list[Prepared]) -> dict[str, float]:
    """Return what the chain did over many utterances, weighted by their length."""
    stats = [d.stats for d in done if len(d.audio)]
    if not stats:
        return {}
    weights = np.array([len(d.audio) for d in done if len(d.audio)], float)
    weights /= weights.sum()

    def each(name: str) -> np.ndarray:
        return np.array([getattr(s, name) for s in stats])

    return {
        "utterances": len(stats),
        "seconds": sum(len(d.audio) / d.rate for d in done),
        "plr_before": float(np.median(each("plr_before"))),
        "plr_after": float(np.median(each("plr_after"))),
        "plr_after_highest": float(each("plr_after").max()),
        "compressed": float(weights @ each("compressed")),
        "limited": float(weights @ each("limited")),
        "limiting_max": float(each("limiting_max").max()),
        "crest_before": float(np.median(each("crest_before"))),
        "crest_after": float(np.median(each("crest_after"))),
    }
