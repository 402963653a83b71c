"""The numpy filters a render uses, checked against scipy's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from calmcast import dsp


def test_k_weighting_reproduces_the_standard_at_48k():
    # ITU-R BS.1770-4, table 1 and table 2.
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1, -1.69065929318241,
             0.73248077421585]  # fmt: skip
    rlb = [1.0, -2.0, 1.0, 1, -1.99004745483398, 0.99007225036621]
    assert np.allclose(dsp.k_weighting(48000), [shelf, rlb], atol=1e-8)


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_butterworth_sections_match_scipy(rate):
    assert np.allclose(dsp.highpass(80, rate), ss.butter(2, 80, "highpass", fs=rate, output="sos"))
    assert np.allclose(dsp.lowpass(900, rate), ss.butter(2, 900, "lowpass", fs=rate, output="sos"))


SECTIONS = [
    dsp.k_weighting(44100),
    dsp.highpass(80, 22050),
    np.vstack([dsp.lowpass(500, 44100), dsp.highpass(60, 44100), dsp.k_weighting(48000)]),
]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 9000),
    channels=st.integers(1, 3),
    which=st.integers(0, len(SECTIONS) - 1),
    seed=st.integers(0, 2**16),
)
def test_sosfilt_equals_scipy_with_state(n, channels, which, seed):
    rng = np.random.default_rng(seed)
    sos = SECTIONS[which]
    x = rng.standard_normal((n, channels))
    zi = rng.standard_normal((len(sos), 2, channels)) * 0.1
    want, want_zf = ss.sosfilt(sos, x, axis=0, zi=zi)
    got, got_zf = dsp.sosfilt_numpy(sos, x, zi)
    assert np.allclose(got, want, atol=1e-8)
    assert np.allclose(got_zf, want_zf, atol=1e-8)
    # With scipy.signal imported (as here, and in a course build's workers) sosfilt is scipy's.
    fast, fast_zf = dsp.sosfilt(sos, x, zi)
    assert np.array_equal(fast, want) and np.array_equal(fast_zf, want_zf)


def test_sosfilt_in_pieces_equals_one_pass():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30000, 2))
    sos = dsp.k_weighting(44100)
    whole = dsp.sosfilt_numpy(sos, x)
    state = np.zeros((2, 2, 2))
    pieces = []
    for a in range(0, len(x), 7001):
        y, state = dsp.sosfilt_numpy(sos, x[a : a + 7001], state)
        pieces.append(y)
    assert np.allclose(np.concatenate(pieces), whole, atol=1e-9)
    assert np.allclose(dsp.sosfilt_numpy(sos, x[:, 0]), ss.sosfilt(sos, x[:, 0]))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3000), size=st.integers(1, 700), seed=st.integers(0, 2**16))
def test_box_and_running_min_equal_scipy(n, size, seed):
    x = np.random.default_rng(seed).standard_normal(n)
    if n == 0:
        assert len(dsp.box(x, size)) == len(dsp.running_min(x, size)) == 0
        return
    assert np.allclose(dsp.box(x, size), uniform_filter1d(x, size, mode="nearest"))
    assert np.array_equal(dsp.running_min(x, size), minimum_filter1d(x, size, mode="nearest"))
