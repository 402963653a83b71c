"""The few filters a render needs, in numpy alone: biquads, a box filter, a running minimum.

scipy has all of these, but importing `scipy.signal` costs about 0.6 s and 80 MB on every
run, half of a render's memory budget. These are exact (the IIR runs block-recursively in
state-space form, not as an approximation) and the tests check them against scipy. A
long-lived process that has imported scipy.signal anyway (a course build's worker, which
makes many tracks) gets scipy's `sosfilt`, five times faster, for the same result.
"""

from __future__ import annotations

import math
import sys

import numpy as np

#: Samples per chunk of the block-recursive IIR: FFT convolution inside, state across.
_CHUNK = 1024


def highpass(hz: float, rate: int, q: float = 1 / math.sqrt(2)) -> np.ndarray:
    """Return a 2nd-order high-pass (Butterworth at the default Q) as one section."""
    k = math.tan(math.pi * hz / rate)
    a0 = 1 + k / q + k * k
    b = np.array([1.0, -2.0, 1.0]) / a0
    a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return np.concatenate([b, a])[None, :]


def lowpass(hz: float, rate: int, q: float = 1 / math.sqrt(2)) -> np.ndarray:
    """Return a 2nd-order low-pass (Butterworth at the default Q) as one section."""
    k = math.tan(math.pi * hz / rate)
    a0 = 1 + k / q + k * k
    b = np.array([k * k, 2 * k * k, k * k]) / a0
    a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return np.concatenate([b, a])[None, :]


def k_weighting(rate: int) -> np.ndarray:
    """Return BS.1770's K-weighting (high shelf, then RLB high-pass) for any rate.

    The analogue parameters are those libebur128 derives from the standard's 48 kHz
    coefficients, which they reproduce to eight decimals.
    """
    k = math.tan(math.pi * 1681.974450955533 / rate)
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    q = 0.7071752369554196
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / q + k * k) / a0,
    ]
    rlb = highpass(38.13547087602444, rate, 0.5003270373238773)[0]
    rlb[:3] = [1.0, -2.0, 1.0]  # the RLB filter has unit gain in its pass band, not 1/a0
    return np.array([shelf, rlb])


def sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None):
    """Filter x (frames, or frames x channels) through second-order sections, along axis 0.

    Returns (y, zf) when `zi` (sections x 2 x channels) is given, else y: the same contract
    as scipy.signal.sosfilt with axis=0, in transposed direct form II.
    """
    fast = sys.modules.get("scipy.signal")  # imported by a long-lived worker: use it
    if fast is not None:
        if zi is None:
            return fast.sosfilt(sos, np.asarray(x, np.float64), axis=0)
        return fast.sosfilt(sos, np.asarray(x, np.float64), axis=0, zi=zi)
    return sosfilt_numpy(sos, x, zi)


def sosfilt_numpy(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None):
    """Return what `sosfilt` does, always in numpy alone."""
    x = np.asarray(x, dtype=np.float64)
    mono = x.ndim == 1
    frames = x[:, None] if mono else x
    channels = frames.shape[1]
    order = 2 * len(sos)
    s0 = (
        np.zeros((order, channels))
        if zi is None
        else np.asarray(zi, np.float64).reshape(order, channels)
    )
    y, state = _filter(_state_space(sos), frames.T, s0)
    y = y[0] if mono else y.T
    return y if zi is None else (y, state.reshape(len(sos), 2, channels))


def _state_space(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Return (A, B, C, D) of the cascade: s' = A s + B x, y = C s + D x."""
    a = np.zeros((0, 0))
    b = np.zeros(0)
    c = np.zeros(0)
    d = 1.0
    for b0, b1, b2, _, a1, a2 in sos:
        # One section in transposed direct form II, fed by the cascade so far.
        sa = np.array([[-a1, 1.0], [-a2, 0.0]])
        sb = np.array([b1 - a1 * b0, b2 - a2 * b0])
        n = len(b)
        big = np.zeros((n + 2, n + 2))
        big[:n, :n] = a
        big[n:, :n] = np.outer(sb, c)
        big[n:, n:] = sa
        a = big
        b = np.concatenate([b, sb * d])
        c = np.concatenate([b0 * c, [1.0, 0.0]])
        d = b0 * d
    return a, b, c, d


def _filter(system, x: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a state-space system over channels x frames from state s0 (order x channels)."""
    a, b, c, d = system
    channels, n = x.shape
    if n == 0:
        return x.copy(), s0.copy()
    size = min(_CHUNK, n)
    powers = _powers(a, size + 1)  # A^0 .. A^size
    h = np.concatenate([[d], (c @ powers[: size - 1]) @ b])  # the impulse response
    into = powers[:size][::-1] @ b  # A^(size-1-j) B: how frame j reaches the next state
    out_of = c @ powers[:size]  # C A^j: how the state reaches output j
    whole = -(-n // size)
    flat = np.zeros((channels, whole * size))
    flat[:, :n] = x
    chunks = flat.reshape(channels, whole, size).transpose(1, 0, 2)  # chunk, channel, frame
    # Inside each chunk: FFT convolution from a zero state.
    fft = 1 << (2 * size - 1).bit_length()
    spectrum = np.fft.rfft(h, fft)
    y = np.fft.irfft(np.fft.rfft(chunks, fft, axis=-1) * spectrum, fft, axis=-1)[..., :size]
    # Across chunks: the state carried from one to the next, a short loop.
    pushed = chunks @ into  # chunk, channel, state
    step = powers[size]
    starts = np.empty((whole, channels, len(b)))
    state = s0.T
    for k in range(whole):
        starts[k] = state
        state = state @ step.T + pushed[k]
    y += starts @ out_of.T  # chunk, channel, frame
    out = y.transpose(1, 0, 2).reshape(channels, whole * size)[:, :n]
    if whole * size != n:
        # The padding's zeros moved the state on: take the state at the true end.
        last = n - (whole - 1) * size
        tail = chunks[-1, :, :last]
        state = starts[-1] @ powers[last].T + tail @ (powers[:last][::-1] @ b)
    return out, state.T


def _powers(a: np.ndarray, count: int) -> np.ndarray:
    """Return A^0 .. A^(count-1) of a square matrix, by doubling."""
    out = np.empty((count, *a.shape))
    out[0] = np.eye(len(a))
    filled = 1
    while filled < count:
        take = min(filled, count - filled)
        out[filled : filled + take] = out[:take] @ np.linalg.matrix_power(a, filled)
        filled += take
    return out


def box(x: np.ndarray, size: int) -> np.ndarray:
    """Return the moving average of `size` frames, centred, edges held (as scipy's nearest)."""
    x = np.asarray(x, dtype=np.float64)
    size = max(int(size), 1)
    if size == 1 or len(x) == 0:
        return x.copy()
    before = size // 2
    padded = np.concatenate([np.full(before, x[0]), x, np.full(size - before - 1, x[-1])])
    total = np.concatenate([[0.0], np.cumsum(padded)])
    return (total[size:] - total[:-size]) / size


def running_min(x: np.ndarray, size: int) -> np.ndarray:
    """Return the minimum over `size` frames centred on each, edges held (van Herk/Gil-Werman)."""
    x = np.asarray(x, dtype=np.float64)
    size = max(int(size), 1)
    n = len(x)
    if size == 1 or n == 0:
        return x.copy()
    before = size // 2
    padded = np.concatenate([np.full(before, x[0]), x, np.full(size - before - 1, x[-1])])
    blocks = -(-len(padded) // size)
    full = np.full(blocks * size, np.inf)
    full[: len(padded)] = padded
    grid = full.reshape(blocks, size)
    ahead = np.minimum.accumulate(grid, axis=1).ravel()  # min from each block's start
    behind = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()  # ... to its end
    # The window [i, i + size - 1] spans at most two blocks: the tail of one, head of the next.
    return np.minimum(behind[:n], ahead[size - 1 : size - 1 + n])
