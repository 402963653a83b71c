"""Loudness and true peak after ITU-R BS.1770-4, in numpy: one meter for everything.

Beds, bells, each utterance, the voice as it sits on the timeline and the finished programme
are all measured here, the same way. Audio is K-weighted, its energy summed in 100 ms
sub-blocks, and loudness gated over 400 ms blocks every 100 ms (absolute gate -70 LUFS,
relative gate 10 LU below): the blocks ffmpeg's `ebur128` meter uses, which the tests read
the finished files back with. Sub-block energies can be added up from pieces placed anywhere
in time, which is how the voice is measured before a sample of the mix exists.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from . import dsp

#: BS.1770's absolute gate, LUFS, and its relative gate, LU below the absolutely gated level.
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
#: Sub-blocks per gating block: 400 ms blocks from 100 ms steps (75 % overlap).
BLOCK_STEPS = 4
#: Frames within this many dB of a block's highest sample are oversampled for its true peak:
#: a peak between samples stays well within 3 dB of the samples around it.
TRUE_PEAK_SEARCH_DB = 3.0
#: Audio is K-weighted this many seconds at a time.
PIECE_SECONDS = 2


@functools.cache
def k_weighting(rate: int) -> np.ndarray:
    """Return BS.1770's K-weighting for `rate` as second-order sections."""
    return dsp.k_weighting(rate)


def step_samples(rate: int) -> int:
    """Return the samples in one 100 ms sub-block."""
    return round(rate / 10)


def to_lufs(mean_square: float) -> float:
    """Return the loudness of a K-weighted mean square summed over channels."""
    return -0.691 + 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def gated(energy: np.ndarray, step: int) -> float:
    """Return the integrated loudness of 100 ms sub-block energies (sums of squares).

    `energy` holds, per sub-block of `step` samples, the K-weighted sum of squares over all
    channels. Blocks are four consecutive sub-blocks; a signal shorter than one block is
    measured as it is, ungated (BS.1770 leaves it undefined; this errs towards a number).
    """
    energy = np.asarray(energy, dtype=np.float64)
    if len(energy) < BLOCK_STEPS:
        return to_lufs(energy.sum() / (step * len(energy))) if len(energy) else -math.inf
    blocks = np.convolve(energy, np.ones(BLOCK_STEPS), mode="valid") / (BLOCK_STEPS * step)
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(blocks)
    loud = blocks[levels > ABSOLUTE_GATE]
    if len(loud) == 0:
        return -math.inf
    relative = to_lufs(loud.mean()) + RELATIVE_GATE
    loud = blocks[(levels > ABSOLUTE_GATE) & (levels > relative)]
    return to_lufs(loud.mean())


class Meter:
    """Integrated loudness and true peak of audio streamed in blocks of any size."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self.step = step_samples(rate)
        self._sos = k_weighting(rate)
        self._zi = np.zeros((len(self._sos), 2, channels))  # the meter starts from silence
        self._energy: list[float] = []
        self._partial = 0.0
        self._partial_n = 0
        self._peak = 0.0  # linear, over the frames whose neighbours have all been seen
        self._recent = np.zeros((0, channels))  # the last frames, for the next block's peaks

    def write(self, block: np.ndarray) -> None:
        """Measure the next frames (frames x channels, or mono frames)."""
        if block.ndim == 1:
            block = block[:, None]
        step = PIECE_SECONDS * self.rate
        if len(block) > step:  # in pieces: the filter's working memory stays small
            for a in range(0, len(block), step):
                self.write(block[a : a + step])
            return
        if len(block) == 0:
            return
        self._track_peak(block)
        weighted, self._zi = dsp.sosfilt(self._sos, block, self._zi)
        power = np.einsum("fc,fc->f", weighted, weighted)
        # Fill the sub-block left open by the last write, then whole sub-blocks.
        head = min(self.step - self._partial_n, len(power))
        self._partial += float(power[:head].sum())
        self._partial_n += head
        if self._partial_n == self.step:
            self._energy.append(self._partial)
            self._partial, self._partial_n = 0.0, 0
        rest = power[head:]
        whole = len(rest) // self.step * self.step
        if whole:
            self._energy.extend(rest[:whole].reshape(-1, self.step).sum(axis=1).tolist())
        if whole < len(rest):
            self._partial = float(rest[whole:].sum())
            self._partial_n = len(rest) - whole

    @property
    def energy(self) -> np.ndarray:
        """Return the sub-block energies so far (a trailing partial sub-block is left out)."""
        return np.array(self._energy)

    @property
    def loudness(self) -> float:
        """Return the integrated loudness so far, LUFS (-inf for silence)."""
        energy = self._energy
        if not energy and self._partial_n:  # shorter than one sub-block
            return to_lufs(self._partial / self._partial_n)
        return gated(np.array(energy), self.step)

    def _track_peak(self, block: np.ndarray) -> None:
        """Take the true peak of the frames whose neighbours on both sides are now known."""
        reach = _TAPS
        seen = np.concatenate([self._recent, block])
        first = max(len(self._recent) - reach, 0)
        last = len(seen) - reach
        if last > first:
            self._peak = max(self._peak, true_peak(seen, first, last))
        self._recent = seen[max(last - reach, 0) :]

    @property
    def true_peak(self) -> float:
        """Return the highest true peak so far (linear): the signal ends where writing stopped."""
        tail = self._recent
        pending = true_peak(tail, max(len(tail) - _TAPS, 0), len(tail)) if len(tail) else 0.0
        return max(self._peak, pending)

    @property
    def true_peak_db(self) -> float:
        """Return the highest true peak so far, dBTP."""
        peak = self.true_peak
        return 20 * math.log10(peak) if peak > 0 else -math.inf


def integrated(audio: np.ndarray, rate: int, scale: float = 1.0) -> float:
    """Return the integrated loudness of a whole clip (frames x channels, or mono), LUFS.

    `scale` turns integer samples into full scale at 1.
    """
    meter = Meter(rate, 1 if audio.ndim == 1 else audio.shape[1])
    step = PIECE_SECONDS * rate
    for a in range(0, len(audio), step):
        piece = audio[a : a + step]
        meter.write(piece * scale if scale != 1 else piece)
    return meter.loudness


def frame_peaks(x: np.ndarray) -> np.ndarray:
    """Return each frame's largest absolute sample over its channels."""
    if x.ndim == 1:
        return np.abs(x)
    peak = np.abs(x[:, 0])
    for c in range(1, x.shape[1]):
        np.maximum(peak, np.abs(x[:, c]), out=peak)
    return peak


def _interpolators(taps: int = 24, beta: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Return tap offsets and Kaiser-windowed sinc filters for the points 1/4, 2/4, 3/4 on.

    48 taps a phase interpolate any sine up to 0.45 of the rate within 0.1 % (BS.1770's own
    example filter has 12).
    """
    offsets = np.arange(-taps + 1, taps + 1)
    filters = []
    for frac in (0.25, 0.5, 0.75):
        t = offsets - frac
        window = np.i0(beta * np.sqrt(1 - (t / (taps + 0.5)) ** 2)) / np.i0(beta)
        h = np.sinc(t) * window
        filters.append(h / h.sum())
    return offsets, np.array(filters).T.astype(np.float32)


_TAPS = 24
_OFFSETS, _PHASES = _interpolators(_TAPS)


def true_peaks(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Return the true peak (4x oversampled, BS.1770 annex 2) at `frames`, over all channels.

    Only the given frames are interpolated, so this is cheap for the few frames near a peak.
    """
    if x.ndim == 1:
        x = x[:, None]
    idx = frames[:, None] + _OFFSETS[None, :]
    inside = (idx >= 0) & (idx < len(x))  # beyond either end is silence
    near = x[np.clip(idx, 0, len(x) - 1)] * inside[:, :, None]
    between = np.einsum("fkc,kp->fpc", near, _PHASES)
    return np.maximum(frame_peaks(x[frames]), np.abs(between).max(axis=(1, 2)))


def true_peak(x: np.ndarray, start: int = 0, stop: int | None = None) -> float:
    """Return the true peak (linear) of frames [start, stop) of x, silence beyond its ends.

    Only the frames within 3 dB of the highest sample are oversampled.
    """
    peaks = frame_peaks(x)[start:stop]
    if len(peaks) == 0:
        return 0.0
    top = float(peaks.max())
    if top == 0:
        return 0.0
    near = np.flatnonzero(peaks >= top * 10 ** (-TRUE_PEAK_SEARCH_DB / 20)) + start
    return max(top, float(true_peaks(x, near).max()))


def peak_need(x: np.ndarray, ceiling: float) -> np.ndarray | None:
    """Return the gain each frame needs for its true peak to stay at `ceiling` (None: all fine).

    Only frames whose sample peak comes within 3 dB of the ceiling are oversampled.
    """
    peaks = frame_peaks(x)
    near = np.flatnonzero(peaks > ceiling * 10 ** (-TRUE_PEAK_SEARCH_DB / 20))
    if len(near) == 0:
        return None
    true = true_peaks(x, near)
    over = true > ceiling
    if not over.any():
        return None
    need = np.ones(len(x), np.float64)
    need[near[over]] = ceiling / true[over]
    return need


def smooth_dip(need: np.ndarray, reach: int) -> np.ndarray:
    """Return a smooth gain at or below `need` everywhere, dipping over `reach` frames.

    The least need within `reach` is held, then smoothed by two box filters no wider than
    the hold (a triangle): the gain is below what every peak needs and has no corner.
    """
    held = dsp.running_min(need, 2 * reach + 1)
    return dsp.box(dsp.box(held, reach), reach)


def sum_energies(pieces: Sequence[tuple[float, np.ndarray, float]], seconds: float) -> np.ndarray:
    """Return 100 ms sub-block energies of pieces placed in time.

    Each piece is (start seconds, energies of consecutive bins, bin seconds); a bin's energy
    goes to the sub-block its middle falls in.
    """
    energy = np.zeros(max(math.ceil(seconds * 10), 0) + 1)
    for start, bins, width in pieces:
        if len(bins) == 0:
            continue
        middles = start + (np.arange(len(bins)) + 0.5) * width
        index = np.minimum((middles * 10).astype(np.int64), len(energy) - 1)
        np.add.at(energy, index, bins)
    return energy
