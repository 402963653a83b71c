"""Synthesise calmcast's ambience beds and bells, deterministically, from fixed seeds.

Every sound is a pure function of its seed: the same call gives the same samples, and
`write_library` turns them into the same Ogg Vorbis bytes. Beds are built to be exactly
periodic (noise shaped in the frequency domain over the whole loop, control curves and events
placed on a circle), so the last sample flows into the first as any two neighbours do.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyloudnorm
from scipy import fft as sfft
from scipy import signal

from calmcast.encode import decode, write_audio

log = logging.getLogger(__name__)

RATE = 44100
CTRL_RATE = 100  # control curves (envelopes, rates, pitches) are drawn at 100 Hz
BED_SECONDS = 160
BED_LUFS = -20.0
BED_KNEE_DB = -6.0
BED_CEILING_DB = -3.0
BELL_PEAK_DB = -3.0
BELL_SECONDS = {"bowl": 40, "gong": 45, "chime": 10}
BELL_FADE = 0.5

SEEDS = {
    "rain": 20101,
    "ocean": 20102,
    "stream": 20103,
    "wind": 20104,
    "brown-noise": 20105,
    "drone": 20106,
    "bowl": 20201,
    "gong": 20202,
    "chime": 20203,
}

# Vorbis -q per sound (default 4). The drone is smooth and small: a finer quantiser keeps the
# codec's error below its own sample-to-sample steps, so the loop seam stays clean.
VORBIS_QUALITY = {"drone": 6}

_FFT_WORKERS = 2
_SEAM_TRIES = 12
_SEAM_MARGIN = 0.75  # of the 99.99th-percentile step; the test allows 1.0
_LN1000 = np.log(1000.0)  # 60 dB of amplitude decay, for T60 times


# --- small building blocks ------------------------------------------------------------------


def _hp(f: np.ndarray, fc: float, order: int = 2) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (fc / np.maximum(f, 1e-3)) ** (2 * order))


def _lp(f: np.ndarray, fc: float, order: int = 2) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order))


def _tilt(f: np.ndarray, db_per_octave: float, ref: float = 1000.0) -> np.ndarray:
    return (np.maximum(f, 1.0) / ref) ** (db_per_octave / (20 * np.log10(2)))


def _white_spectrum(rng: np.random.Generator, rows: int, bins: int) -> np.ndarray:
    spec = np.empty((rows, bins), dtype=np.complex64)
    spec.real = rng.standard_normal((rows, bins), dtype=np.float32)
    spec.imag = rng.standard_normal((rows, bins), dtype=np.float32)
    spec[:, 0] = 0.0  # no DC, ever
    spec[:, -1] = 0.0
    return spec


Shape = Callable[[np.ndarray], np.ndarray]


def _noise(
    rng: np.random.Generator,
    n: int,
    rate: float,
    *layers: tuple[float, Shape],
    channels: int = 2,
    corr: float = 0.0,
) -> np.ndarray:
    """Return channels x n periodic noise: independent layers of RMS `gain`, spectrum `shape(f)`.

    The noise is drawn directly as a spectrum over the whole loop, so it is exactly periodic.
    """
    bins = n // 2 + 1
    f = np.fft.rfftfreq(n, 1 / rate).astype(np.float32)
    total = np.zeros((channels, bins), dtype=np.complex64)
    for gain, shape in layers:
        spec = _white_spectrum(rng, channels, bins)
        if corr:
            # A shared component narrows the image a little: fully independent channels of
            # a low, dense noise feel like pressure on the ears rather than a space.
            common = _white_spectrum(rng, 1, bins)
            spec = np.float32(np.sqrt(1 - corr)) * spec + np.float32(np.sqrt(corr)) * common
        h = shape(f).astype(np.float32)
        # An irfft of unit complex noise has RMS 2 * sqrt(sum h^2) / n: scale to `gain`.
        total += spec * (h * np.float32(gain * n / (2 * np.sqrt(np.sum(h.astype(float) ** 2)))))
    return sfft.irfft(total, n, axis=-1, workers=_FFT_WORKERS)


def _upsample(x: np.ndarray, n_out: int) -> np.ndarray:
    """Band-limited periodic resampling of channels x n to n_out samples, by spectrum padding."""
    n_in = x.shape[-1]
    spec = sfft.rfft(x.astype(np.float32), axis=-1, workers=_FFT_WORKERS)
    out = np.zeros((x.shape[0], n_out // 2 + 1), dtype=np.complex64)
    out[:, : spec.shape[-1] - 1] = spec[:, :-1] * np.float32(n_out / n_in)
    return sfft.irfft(out, n_out, axis=-1, workers=_FFT_WORKERS)


def _control(
    rng: np.random.Generator,
    n_ctrl: int,
    min_period: float,
    max_period: float = np.inf,
    slope: float = 1.0,
) -> np.ndarray:
    """Return a smooth periodic random curve at CTRL_RATE, zero mean, unit std."""
    k = np.arange(n_ctrl // 2 + 1)
    period = np.full(k.shape, np.inf)
    period[1:] = n_ctrl / CTRL_RATE / k[1:]
    weight = ((period >= min_period) & (period <= max_period)) / np.maximum(k, 1) ** slope
    if not weight.any():  # a loop shorter than the slowest wanted period: use its slowest
        weight[1] = 1.0
    spec = _white_spectrum(rng, 1, k.size)[0] * weight
    c = np.fft.irfft(spec, n_ctrl)
    return c / c.std()


def _at_rate(ctrl: np.ndarray, n: int) -> np.ndarray:
    """Interpolate a periodic control curve to n samples, wrapping at the end."""
    pos = np.arange(n) * (ctrl.size / n)
    return np.interp(pos, np.arange(ctrl.size + 1), np.append(ctrl, ctrl[0]))


def _pan(pan: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Return equal-power (left, right) gains for pan positions in -1..1."""
    angle = (np.asarray(pan) + 1) * np.pi / 4
    return np.cos(angle) * np.sqrt(2), np.sin(angle) * np.sqrt(2)


def _events(rng: np.random.Generator, density: np.ndarray, seconds: float) -> np.ndarray:
    """Return sorted Poisson event times (s) whose rate follows `density` (events/s at CTRL_RATE)."""
    peak = float(density.max())
    cand = np.sort(rng.uniform(0, seconds, rng.poisson(peak * seconds)))
    keep = rng.uniform(0, peak, cand.size) < density[(cand * CTRL_RATE).astype(int) % density.size]
    return cand[keep]


def _amplitudes(rng: np.random.Generator, k: int, scale: float, sigma: float) -> np.ndarray:
    """Return k log-normal amplitudes of random sign, the rare huge ones capped (no spikes, no DC)."""
    amp = np.minimum(rng.lognormal(0, sigma, k), np.exp(2 * sigma))
    return scale * amp * rng.choice([-1.0, 1.0], k)


def _impulses(n: int, start: np.ndarray, amp: np.ndarray, pan: np.ndarray) -> np.ndarray:
    """Return a 2 x n buffer with panned impulses at the sample offsets `start`."""
    gl, gr = _pan(pan)
    return np.stack(
        [
            np.bincount(start % n, amp * gl, minlength=n),
            np.bincount(start % n, amp * gr, minlength=n),
        ]
    )


def _ring_grains(
    n: int,
    rate: float,
    start: np.ndarray,
    amp: np.ndarray,
    freq: np.ndarray,
    tau: np.ndarray,
    chirp: np.ndarray,
    pan: np.ndarray,
) -> np.ndarray:
    """Add damped, upward-gliding sine grains (bubbles, drops) onto a circular 2 x n buffer."""
    out = np.zeros((2, n))
    gl, gr = _pan(pan)
    order = np.argsort(tau)
    for chunk in np.array_split(order, max(1, order.size // 1500)):
        # Each chunk is as long as its slowest grain needs: short grains cost little.
        m = int(4.5 * tau[chunk].max() * rate) + 2
        t = (np.arange(m) / rate).astype(np.float32)
        f0 = freq[chunk, None].astype(np.float32)
        # A forming bubble's resonance rises as it shrinks and nears the surface.
        phase = (2 * np.pi) * f0 * (t + 0.5 * chirp[chunk, None].astype(np.float32) * f0 * t**2)
        taper = np.minimum(1.0, (m - np.arange(m)) / (0.25 * m)).astype(np.float32)
        decay = np.exp(-t / tau[chunk, None].astype(np.float32))
        grain = (amp[chunk, None].astype(np.float32) * taper) * decay * np.sin(phase)
        idx = ((start[chunk, None] + np.arange(m)) % n).ravel()
        out[0] += np.bincount(idx, (grain * gl[chunk, None]).ravel(), minlength=n)
        out[1] += np.bincount(idx, (grain * gr[chunk, None]).ravel(), minlength=n)
    return out


def _tick_grains(
    rng: np.random.Generator,
    n: int,
    start: np.ndarray,
    amp: np.ndarray,
    tau: np.ndarray,
    pan: np.ndarray,
    length: int,
) -> np.ndarray:
    """Add short decaying noise bursts (impacts) onto a circular 2 x n buffer."""
    t = np.arange(length) / RATE
    noise = rng.standard_normal((start.size, length + 1))
    # A first difference tilts the burst up: a hard, small impact is bright.
    grain = amp[:, None] * np.diff(noise, axis=1) * np.exp(-t / tau[:, None])
    grain[:, :8] *= np.linspace(0.2, 1, 8)  # soften the very first edge
    idx = ((start[:, None] + np.arange(length)) % n).ravel()
    gl, gr = _pan(pan)
    return np.stack(
        [
            np.bincount(idx, (grain * gl[:, None]).ravel(), minlength=n),
            np.bincount(idx, (grain * gr[:, None]).ravel(), minlength=n),
        ]
    )


def _circular_filter(sos: np.ndarray, x: np.ndarray, warmup: int) -> np.ndarray:
    """Filter a periodic 2 x n signal as if it had always been looping (warm up on its tail)."""
    _, zi = signal.sosfilt(sos, x[:, -warmup:], axis=-1, zi=np.zeros((sos.shape[0], 2, 2)))
    return signal.sosfilt(sos, x, axis=-1, zi=zi)[0]


def _seam_candidates(x: np.ndarray) -> np.ndarray:
    """Return cut points for a periodic 2 x n bed, best first: level near average, no transient."""
    n = x.shape[-1]
    power = np.mean(x**2, axis=0)
    half = RATE // 2
    padded = np.concatenate([power[-half:], power, power[:half]])
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    cand = np.arange(0, n, RATE // 20)
    local = (csum[cand + 2 * half] - csum[cand]) / (2 * half)
    level_db = np.abs(10 * np.log10(local / power.mean()))
    # Steer clear of a drop or a click: the 5 ms around the cut must be unremarkable.
    win = (cand[:, None] + np.arange(-110, 111)) % n
    jump = np.abs(x[:, win] - x[:, win - 1]).max(axis=(0, 2))
    calm = jump < np.percentile(np.abs(np.diff(x[:, ::7], axis=-1)), 90)
    return cand[np.argsort(level_db + 100.0 * ~calm, kind="stable")]


def seam_jump(frames: np.ndarray) -> float:
    """Return the end-to-start jump of a loop relative to its own 99.99th-percentile step."""
    step = np.percentile(np.abs(np.diff(frames, axis=0)), 99.99, axis=0)
    return float(np.max(np.abs(frames[0] - frames[-1]) / step))


def _finish_bed(x: np.ndarray) -> np.ndarray:
    """Cut the loop at a calm point, set -20 LUFS, soften rare peaks, return float32 frames x 2."""
    x = np.roll(x, -_seam_candidates(x)[0], axis=-1)
    gain = 10 ** ((BED_LUFS - pyloudnorm.Meter(RATE).integrated_loudness(x.T)) / 20)
    frames = np.ascontiguousarray(x.T * gain, dtype=np.float32)
    # Noise and crests of waves have rare tall peaks: round off the few samples above -6 dBFS
    # with a smooth knee that never reaches -3 dBFS (far under 0.1% of samples, inaudible).
    knee = np.float32(10 ** (BED_KNEE_DB / 20))
    room = np.float32(10 ** (BED_CEILING_DB / 20)) - knee
    over = np.abs(frames) > knee
    frames[over] = np.sign(frames[over]) * (
        knee + room * np.tanh((np.abs(frames[over]) - knee) / room)
    )
    return np.ascontiguousarray(frames, dtype=np.float32)


def _decaying_sine(n: int, freq: float, t60: float, bloom: float = 0.0) -> np.ndarray:
    """Return sin(2 pi f t), decaying 60 dB in t60 s, rising over `bloom` s, in n samples.

    Built as an outer product of two short complex exponentials: no per-sample exp or sin.
    """
    block = 1024
    blocks = np.arange(-(-n // block))

    def expo(s: complex) -> np.ndarray:
        return np.outer(np.exp(s * block * blocks), np.exp(s * np.arange(block))).ravel()[:n]

    s = complex(-_LN1000 / t60, 2 * np.pi * freq) / RATE
    z = expo(s)
    if bloom > 0:
        z -= expo(s - 1 / (bloom * RATE))  # times (1 - exp(-t / bloom))
    return z.imag


def _modes(n: int, modes: Iterable[tuple[float, float, float, float, float]]) -> np.ndarray:
    """Sum (freq, amp, t60, pan, bloom) modes into 2 x n; bloom is the rise time of the mode."""
    out = np.zeros((2, n))
    for freq, amp, t60, pan, bloom in modes:
        # Only compute a mode until it is 90 dB down: high modes die fast.
        m = min(n, int(1.5 * t60 * RATE))
        tone = amp * _decaying_sine(m, freq, t60, bloom)
        gl, gr = _pan(pan)
        out[0, :m] += gl * tone
        out[1, :m] += gr * tone
    return out


def _reverb(rng: np.random.Generator, x: np.ndarray, t60: float, wet: float) -> np.ndarray:
    """Add a small decorrelated room (exponential noise tail) to a 2 x n sound."""
    m = int(t60 * RATE)
    t = np.arange(m) / RATE
    ir = rng.standard_normal((2, m)) * np.exp(-_LN1000 * t / t60)
    # Air and walls absorb highs first: soften the tail with a one-pole low-pass.
    ir = signal.lfilter([0.35], [1, -0.65], ir, axis=-1)
    ir[:, : int(0.012 * RATE)] = 0.0  # the first reflections arrive a little after the sound
    ir /= np.sqrt(np.sum(ir**2, axis=-1, keepdims=True))
    tail = signal.fftconvolve(x, ir, axes=-1)[:, : x.shape[-1]]
    return x + wet * tail


def _finish_bell(x: np.ndarray) -> np.ndarray:
    """Fade the last half second to exact zero, peak at -3 dBFS, return float32 frames x 2."""
    fade = int(BELL_FADE * RATE)
    x[:, -fade:] *= 0.5 * (1 + np.cos(np.linspace(0, np.pi, fade)))
    x[:, -1] = 0.0
    x *= 10 ** (BELL_PEAK_DB / 20) / np.abs(x).max()
    return np.ascontiguousarray(x.T, dtype=np.float32)


def _strike(n: int, ramp: float) -> np.ndarray:
    """Return the onset envelope of a mallet: a raised-cosine rise over `ramp` seconds."""
    env = np.ones(n)
    r = max(2, int(ramp * RATE))
    env[:r] = 0.5 * (1 - np.cos(np.linspace(0, np.pi, r)))
    return env


def _thud(
    rng: np.random.Generator, n: int, seconds: float, band: float | tuple[float, float]
) -> np.ndarray:
    """Return a 2 x n soft noise burst, low- or band-passed: the mallet meeting the metal."""
    m = int(seconds * RATE)
    burst = rng.standard_normal((2, m)) * np.sin(np.linspace(0, np.pi, m)) ** 2
    kind = "lowpass" if np.isscalar(band) else "bandpass"
    sos = signal.butter(2, band, btype=kind, fs=RATE, output="sos")
    out = np.zeros((2, n))
    out[:, :m] = signal.sosfilt(sos, burst, axis=-1)
    return out / np.abs(out).max()


# --- beds -----------------------------------------------------------------------------------


def rain(seconds: int = BED_SECONDS, seed: int = SEEDS["rain"]) -> np.ndarray:
    """Synthesise steady rain: pinkish hiss, a dense crackle of tiny impacts, and near drops."""
    rng = np.random.default_rng(seed)
    n = seconds * RATE
    nc = seconds * CTRL_RATE
    # The hiss is the sum of countless distant drops: broadband, falling a little per octave.
    bed = _noise(
        rng,
        n,
        RATE,
        (0.6, lambda f: _hp(f, 300, 2) * _lp(f, 9000, 2) * _tilt(f, -3.0)),
        (0.2, lambda f: _hp(f, 40, 2) * _lp(f, 220, 2)),  # the low roar of rain on everything
        corr=0.15,
    )
    bed *= np.exp(_at_rate(0.12 * _control(rng, nc, 12, 60) + 0.05 * _control(rng, nc, 0.5, 4), n))

    # Nearer drops stand out of the hiss as a crackle of clicks: impulses through a band-pass.
    density = 1400 * np.exp(0.25 * _control(rng, nc, 8, 60))
    times = _events(rng, density, seconds)
    k = times.size
    clicks = _impulses(
        n, (times * RATE).astype(int), _amplitudes(rng, k, 1.6, 0.8), rng.uniform(-0.9, 0.9, k)
    )
    sos = signal.butter(2, [1800, 7000], btype="band", fs=RATE, output="sos")
    crackle = _circular_filter(sos, clicks, RATE // 10)

    # Drops into puddles ring briefly, their pitch gliding up as the bubble forms.
    density = 9 * np.exp(0.35 * _control(rng, nc, 6, 60))
    times = _events(rng, density, seconds)
    k = times.size
    plinks = _ring_grains(
        n,
        RATE,
        (times * RATE).astype(int),
        _amplitudes(rng, k, 1.2, 0.6),
        np.exp(rng.uniform(np.log(1400), np.log(4800), k)),
        rng.uniform(1.5e-3, 5e-3, k),
        rng.uniform(0.01, 0.05, k),
        rng.uniform(-0.8, 0.8, k),
    )
    # Drops on leaves and stone: short bright taps.
    density = 22 * np.exp(0.3 * _control(rng, nc, 6, 60))
    times = _events(rng, density, seconds)
    k = times.size
    taps = _tick_grains(
        rng,
        n,
        (times * RATE).astype(int),
        _amplitudes(rng, k, 0.4, 0.6),
        rng.uniform(0.5e-3, 2.5e-3, k),
        rng.uniform(-0.9, 0.9, k),
        512,
    )
    return _finish_bed(bed + crackle + plinks + taps)


def _wave_envelope(
    t: np.ndarray, t0: float, period: float, rise: float, decay: float
) -> np.ndarray:
    """Return a swell peaking at t0 on a circle: a Gaussian build-up, an exponential fall."""
    d = (t - t0 + period / 2) % period - period / 2
    return np.where(d < 0, np.exp(-0.5 * (d / rise) ** 2), np.exp(-np.maximum(d, 0) / decay))


def _up(c: np.ndarray, n: int) -> np.ndarray:
    """Interpolate each row of a control array to n samples."""
    return np.stack([_at_rate(row, n) for row in np.atleast_2d(c)])


def ocean(seconds: int = BED_SECONDS, seed: int = SEEDS["ocean"]) -> np.ndarray:
    """Synthesise waves on a beach: slow irregular swells of low surf, crash and foam."""
    rng = np.random.default_rng(seed)
    rate = RATE / 2  # nothing of the surf needs more than 11 kHz
    n = seconds * RATE // 2
    nc = seconds * CTRL_RATE
    tc = np.arange(nc) / CTRL_RATE

    # Waves arrive every 7-14 s, never quite regularly; the gaps are scaled to fill the loop.
    gaps = rng.uniform(7, 14, max(1, round(seconds / 10.5)))
    arrivals = np.cumsum(gaps * seconds / gaps.sum()) - gaps[0] / 2
    body, crash, wash = np.zeros((3, 2, nc))
    for t0 in arrivals:
        size = rng.uniform(0.45, 1.0)
        gl, gr = _pan(rng.uniform(-0.45, 0.45))
        gains = np.array([[gl], [gr]]) * size
        body += gains * _wave_envelope(tc, t0, seconds, rng.uniform(1.5, 3), rng.uniform(1.8, 3))
        crash += gains * _wave_envelope(tc, t0 + 0.3, seconds, 0.35, rng.uniform(1.0, 1.8))
        wash += gains * _wave_envelope(
            tc, t0 + rng.uniform(0.6, 1.2), seconds, 0.6, rng.uniform(3.0, 5.0)
        )
    # Foam fizzes: the wash flickers quickly as bubbles burst.
    wash *= np.exp(0.35 * _control(rng, nc, 0.06, 0.6))
    total = body.mean(axis=0)
    surf = 0.3 + 0.7 * total / total.max()  # the sea never falls quite silent

    def band(gain: float, shape: Shape, corr: float = 0.0) -> np.ndarray:
        return _noise(rng, n, rate, (gain, shape), corr=corr)

    # Long waves reach both ears alike; the higher the sound, the more each ear hears its own.
    x = band(0.55, lambda f: _hp(f, 30, 2) * _lp(f, 160, 2), 0.5) * _up(surf, n)
    x += band(1.0, lambda f: _hp(f, 90, 2) * _lp(f, 700, 2) * _tilt(f, -2, 300), 0.25) * _up(
        body, n
    )
    x += band(0.7, lambda f: _hp(f, 200, 2) * _lp(f, 2200, 2) * _tilt(f, -3, 600)) * _up(crash, n)
    x += band(0.2, lambda f: _hp(f, 600, 2) * _lp(f, 3500, 3) * _tilt(f, -3, 1500)) * _up(wash, n)
    return _finish_bed(_upsample(x, seconds * RATE))


def stream(seconds: int = BED_SECONDS, seed: int = SEEDS["stream"]) -> np.ndarray:
    """Synthesise a brook: babbling band-passed water noise full of small resonant bubbles."""
    rng = np.random.default_rng(seed)
    rate = RATE / 2  # bubbles and flow live below 6 kHz
    n = seconds * RATE // 2
    nc = seconds * CTRL_RATE
    # Water over stones babbles: the flow's level flickers a few times a second.
    babble = _control(rng, nc, 0.08, 1.5, slope=0.5)
    slow = 0.1 * _control(rng, nc, 10, 60)
    flow = _noise(rng, n, rate, (0.5, lambda f: _hp(f, 350, 2) * _lp(f, 3500, 2) * _tilt(f, -1)))
    low = _noise(rng, n, rate, (0.2, lambda f: _hp(f, 70, 2) * _lp(f, 350, 2)))
    x = flow * np.exp(_at_rate(0.3 * babble + slow, n)) + low * np.exp(_at_rate(slow, n))

    density = 200 * np.exp(0.7 * babble)
    times = _events(rng, density, seconds)
    k = times.size
    # Small bubbles sing high and die fast; a few big ones gulp lower (Minnaert resonance).
    freq = np.exp(rng.normal(np.log(1100), 0.5, k)).clip(300, 4500)
    q = rng.uniform(6, 18, k)
    x += _ring_grains(
        n,
        rate,
        (times * rate).astype(int),
        _amplitudes(rng, k, 0.45, 0.5) * (1100 / freq) ** 0.2,
        freq,
        q / (np.pi * freq),
        rng.uniform(0.02, 0.08, k) * (1100 / freq) ** 0.5,
        rng.uniform(-0.85, 0.85, k),
    )
    return _finish_bed(_upsample(x, seconds * RATE))


def wind(seconds: int = BED_SECONDS, seed: int = SEEDS["wind"]) -> np.ndarray:
    """Synthesise wind: gusts of band-passed noise with a resonance that rises as they blow."""
    rng = np.random.default_rng(seed)
    rate = RATE / 2
    n = seconds * RATE // 2
    nc = seconds * CTRL_RATE
    # Gusts: a slow weather curve plus quicker puffs, squashed into 0..1.
    g = 1.0 * _control(rng, nc, 18, 80) + 0.45 * _control(rng, nc, 4, 12, slope=0.5)
    gust = 1 / (1 + np.exp(-1.3 * g))
    wander = _control(rng, nc, 6, 40)

    # The moving resonance: a bank of fixed band-passes over one noise, weighted around the
    # current centre, is what a swept filter does, without a per-sample loop.
    bank_rate = RATE / 8
    nb = seconds * RATE // 8
    f = np.fft.rfftfreq(nb, 1 / bank_rate).astype(np.float32)
    spec = np.float32(np.sqrt(0.7)) * _white_spectrum(rng, 2, f.size)
    spec += np.float32(np.sqrt(0.3)) * _white_spectrum(rng, 1, f.size)  # partly shared, too
    fc = 230 * 2 ** (1.7 * gust + 0.25 * wander)  # stronger gusts whistle higher
    whistle = np.zeros((2, nb))
    for c in 180 * 2 ** (np.arange(17) / 5):  # 180 Hz .. 1.6 kHz in fifths of an octave
        q = 6.0
        h = _lp(f, 2000, 4) / np.sqrt(1 + q**2 * (f / c - c / np.maximum(f, 1e-3)) ** 2)
        band = sfft.irfft(spec * h.astype(np.float32), nb, axis=-1, workers=_FFT_WORKERS)
        whistle += band * _at_rate(np.exp(-0.5 * (np.log2(c / fc) / 0.3) ** 2), nb)
    whistle *= 0.8 / np.sqrt(np.mean(whistle**2))

    x = _noise(
        rng,
        n,
        rate,
        (0.5, lambda f: _hp(f, 60, 2) * _lp(f, 900, 1) * _tilt(f, -3, 200)),
        (0.12, lambda f: _hp(f, 1500, 2) * _lp(f, 6000, 2)),  # the air's hiss
        corr=0.3,
    )
    x = (x + _upsample(whistle, n)) * _at_rate(10 ** ((-14 + 14 * gust) / 20), n)
    return _finish_bed(_upsample(x, seconds * RATE))


def brown_noise(seconds: int = BED_SECONDS, seed: int = SEEDS["brown-noise"]) -> np.ndarray:
    """Synthesise brown (1/f^2) noise, rolled off below 30 Hz so it rumbles without DC drift."""
    rng = np.random.default_rng(seed)
    n = seconds * RATE
    x = _noise(rng, n, RATE, (1.0, lambda f: _hp(f, 30, 2) / np.maximum(f, 1.0)), corr=0.3)
    return _finish_bed(x)


def drone(seconds: int = BED_SECONDS, seed: int = SEEDS["drone"]) -> np.ndarray:
    """Synthesise a soft drone: detuned low partials of one warm chord, slowly breathing."""
    rng = np.random.default_rng(seed)
    nb = seconds * RATE // 8  # the highest partial is ~400 Hz: a 5.5 kHz rate is plenty
    i = np.arange(nb)
    root = 68.05  # an octave below 136.1 Hz, a customary meditation pitch
    voices = [(1, 0.6), (1.5, 0.25), (2, 0.7), (3, 0.3), (4, 0.16), (6, 0.05)]
    x = np.zeros((2, nb))
    for ratio, amp in voices:
        # Three copies a fraction of a hertz apart beat slowly (every few seconds, never a
        # tremolo); each leans to its own side.
        breath = 1 + 0.3 * np.sin(2 * np.pi * rng.integers(4, 11) * i / nb + rng.uniform(0, 6.3))
        weights = rng.permutation([1.0, 0.7, 0.5])  # unequal, so the beats never cancel fully
        for detune, pan, w in zip(
            rng.uniform(-0.2, 0.2, 3), (-0.6, 0.0, 0.6), weights, strict=True
        ):
            freq = root * ratio + detune
            # Whole cycles per loop, computed in integers, make the loop exactly periodic.
            k = round(freq * seconds)
            phase = 2 * np.pi * ((k * i) % nb) / nb + rng.uniform(0, 2 * np.pi)
            gl, gr = _pan(pan + rng.uniform(-0.2, 0.2))
            tone = w * amp * breath * np.sin(phase)
            x[0] += gl * tone
            x[1] += gr * tone
    swell = 1 + 0.15 * np.sin(2 * np.pi * 6 * i / nb)
    air = _noise(rng, nb, RATE / 8, (0.12, lambda f: _hp(f, 60, 2) * _lp(f, 500, 3)), corr=0.2)
    return _finish_bed(_upsample((x + air) * swell, seconds * RATE))


# --- bells ----------------------------------------------------------------------------------


def bowl(seconds: int = BELL_SECONDS["bowl"], seed: int = SEEDS["bowl"]) -> np.ndarray:
    """Synthesise a singing bowl struck softly: split inharmonic partials, long decays."""
    rng = np.random.default_rng(seed)
    n = seconds * RATE
    f0 = 196.0
    ratios = [1.0, 2.72, 5.12, 8.21, 11.9]
    amps = [1.0, 0.55, 0.28, 0.12, 0.05]
    t60s = [38.0, 27.0, 16.0, 9.0, 5.0]
    beats = [0.8, 1.7, 3.1, 4.4, 5.9]
    modes = []
    for r, a, t60, beat in zip(ratios, amps, t60s, beats, strict=True):
        # The bowl is not perfectly round: each mode is two close ones, which beat.
        f = f0 * r * rng.uniform(0.997, 1.003)
        modes.append((f - beat / 2, a, t60, rng.uniform(-0.35, 0.0), 0.0))
        modes.append(
            (f + beat / 2, a * rng.uniform(0.45, 0.7), t60 * 0.93, rng.uniform(0, 0.35), 0)
        )
    x = _modes(n, modes) * _strike(n, 0.006) + 0.06 * _thud(rng, n, 0.03, 400)
    return _finish_bell(_reverb(rng, x, 1.8, 0.25))


def gong(seconds: int = BELL_SECONDS["gong"], seed: int = SEEDS["gong"]) -> np.ndarray:
    """Synthesise a temple gong: dense inharmonic low modes whose upper ones bloom late."""
    rng = np.random.default_rng(seed)
    n = seconds * RATE
    f0 = 62.0
    # A few strong low modes at irregular ratios make the hum; above them a dense random field.
    hum = f0 * np.array([1.0, 1.52, 2.17, 2.61, 3.04, 3.6, 4.25, 4.93])
    field = np.exp(rng.uniform(np.log(250), np.log(4000), 40))
    freq = np.concatenate([hum * rng.uniform(0.99, 1.01, hum.size), np.sort(field)])
    amp = (freq / f0) ** -0.55 * rng.lognormal(0, 0.35, freq.size)
    amp[0] *= 1.5
    t60 = 42 * (freq / f0) ** -0.45
    # Energy spreads upward from the struck low modes: higher modes take longer to rise.
    spread = np.clip(np.log(freq / 150) / np.log(3000 / 150), 0, 1)
    bloom = 0.01 + 1.2 * spread
    modes = []
    for j, (f, a, t, b) in enumerate(zip(freq, amp, t60, bloom, strict=True)):
        modes.append((f, a, t, rng.uniform(-0.5, 0.5), b))
        if j < hum.size:  # the low modes are split and beat; higher up they are dense enough
            beat = rng.uniform(0.2, 1.5)
            modes.append((f + beat, a * rng.uniform(0.4, 0.8), t * 0.9, rng.uniform(-0.5, 0.5), b))
    x = _modes(n, modes) * _strike(n, 0.012) + 0.25 * _thud(rng, n, 0.05, 250)
    return _finish_bell(_reverb(rng, x, 2.5, 0.3))


def chime(seconds: int = BELL_SECONDS["chime"], seed: int = SEEDS["chime"]) -> np.ndarray:
    """Synthesise a small bright chime: a struck free bar's partials, ringing for ~9 s."""
    rng = np.random.default_rng(seed)
    n = seconds * RATE
    f0 = 1396.9
    ratios = [1.0, 2.756, 5.404, 8.933]  # the modes of a free-free bar
    amps = [1.0, 0.4, 0.18, 0.06]
    t60s = [9.0, 5.0, 2.8, 1.5]
    modes = []
    for r, a, t60 in zip(ratios, amps, t60s, strict=True):
        beat = rng.uniform(0.4, 1.5) * r**0.5
        f = f0 * r
        modes.append((f, a, t60, rng.uniform(-0.3, 0.1), 0.0))
        modes.append((f + beat, a * rng.uniform(0.3, 0.6), t60 * 0.9, rng.uniform(-0.1, 0.3), 0))
    click = _thud(rng, n, 0.002, (2500, 9000))  # a hard, light striker
    x = _modes(n, modes) * _strike(n, 0.0006) + 0.05 * click
    return _finish_bell(_reverb(rng, x, 2.2, 0.35))


BEDS: dict[str, Callable[..., np.ndarray]] = {
    "rain": rain,
    "ocean": ocean,
    "stream": stream,
    "wind": wind,
    "brown-noise": brown_noise,
    "drone": drone,
}
BELLS: dict[str, Callable[..., np.ndarray]] = {"bowl": bowl, "gong": gong, "chime": chime}


def sound_path(outdir: str | Path, name: str) -> Path:
    """Return where the sound `name` lives under the library folder `outdir`."""
    outdir = Path(outdir)
    return outdir / "bells" / f"{name}.ogg" if name in BELLS else outdir / f"{name}.ogg"


def synthesise(name: str) -> np.ndarray:
    """Return the finished sound `name` as float32 frames x 2 at 44.1 kHz."""
    if name in BEDS:
        return BEDS[name]()
    if name in BELLS:
        return BELLS[name]()
    raise ValueError(f"unknown sound: {name}")


def _encoder() -> str:
    """Return the ffmpeg that encodes the library: the imageio-ffmpeg wheel's.

    The Vorbis bytes depend on the encoder build, so the library is always made by the one
    ffmpeg every installation has, not by whatever the system provides.
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _make(name: str, outdir: Path) -> tuple[Path, float, float, float]:
    """Synthesise and write one sound; return its path, seconds, peak dBFS and time taken."""
    start = time.perf_counter()
    audio = synthesise(name)
    path = sound_path(outdir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["-c:a", "libvorbis", "-q:a", str(VORBIS_QUALITY.get(name, 4))]
    exe = _encoder()
    if name in BELLS:
        write_audio(path, audio, RATE, args, exe)
    else:
        # The loop is seamless, but the codec's error is not: it differs at the two ends and
        # shows as a step when a smooth bed (the drone) is tiled. Try the next-best cut points
        # until the decoded seam is well inside the material's own sample-to-sample steps.
        cuts = _seam_candidates(audio.T)
        cuts = [0, *cuts[cuts != 0][: _SEAM_TRIES - 1]]  # first the cut synthesis chose
        tried = []
        for cut in cuts:
            write_audio(path, np.roll(audio, -cut, axis=0), RATE, args, exe)
            jump = seam_jump(decode(path, RATE, 2, exe=exe))  # the seam as that build reads it
            tried.append((jump, cut))
            if jump <= _SEAM_MARGIN:
                break
            log.debug("%s: decoded seam at %d is %.2f of a large step, recutting", name, cut, jump)
        else:
            jump, cut = min(tried)
            log.warning("%s: no cut gives a clean decoded seam; the best is %.2f", name, jump)
            write_audio(path, np.roll(audio, -cut, axis=0), RATE, args, exe)
    peak = 20 * np.log10(np.abs(audio).max())
    return path, len(audio) / RATE, peak, time.perf_counter() - start


def write_library(
    outdir: str | Path, names: Iterable[str] | None = None, jobs: int = 2
) -> list[Path]:
    """Synthesise the named sounds (default: all) and write them as Ogg Vorbis under `outdir`."""
    names = list(names) if names else [*BEDS, *BELLS]
    unknown = [name for name in names if name not in BEDS and name not in BELLS]
    if unknown:
        raise ValueError(f"unknown sound(s): {', '.join(unknown)}")
    outdir = Path(outdir)
    # Each sound depends on its own seed only, so they can be made side by side and still
    # come out byte for byte the same. Spawned, not forked: the FFTs leave threads behind.
    jobs = max(1, min(jobs, len(names)))
    if jobs == 1:
        results = [_make(name, outdir) for name in names]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            results = list(pool.map(_make, names, [outdir] * len(names)))
    for name, (_, seconds, peak, took) in zip(names, results, strict=True):
        log.info("%s: %.0f s, peak %.1f dBFS, made in %.1f s", name, seconds, peak, took)
    return [path for path, *_ in results]


def main(argv: list[str] | None = None) -> int:
    """Write the ambience library: beds to OUTDIR/NAME.ogg, bells to OUTDIR/bells/NAME.ogg."""
    parser = argparse.ArgumentParser(
        prog="scripts/make-ambience",
        description="Synthesise calmcast's ambience beds and bells (CC0) as Ogg Vorbis.",
    )
    parser.add_argument("outdir", type=Path, help="library folder, e.g. ambience/")
    parser.add_argument(
        "names", nargs="*", help=f"sounds to make (default: all of {', '.join([*BEDS, *BELLS])})"
    )
    parser.add_argument("-j", "--jobs", type=int, default=2, help="sounds to make at once")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each sound")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    start = time.perf_counter()
    try:
        paths = write_library(args.outdir, args.names, args.jobs)
    except ValueError as e:
        parser.error(str(e))
    for path in paths:
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")
    print(f"{len(paths)} sound(s) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
