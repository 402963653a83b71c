"""BS.1770 loudness and true peak: our meter against ffmpeg's, on both ffmpeg builds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calmcast import loudness
from calmcast.encode import write_audio
from calmcast.voices import open_voice
from conftest import ebur128, ffmpeg_builds


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(3)
    voice = open_voice("espeak:en-gb")
    speech = np.concatenate([
        voice.synthesize("Let your breath be easy, and notice the weight of your body."),
        np.zeros(30000, np.float32),
        voice.synthesize("Soften. Soothe. Allow."),
    ])  # fmt: skip
    t = np.arange(44100 * 5) / 44100
    return {
        "speech, mono, 22050 Hz": (speech[:, None], 22050),
        "noise, stereo, 48 kHz": ((rng.standard_normal((48000 * 7, 2)) * 0.05), 48000),
        "997 Hz at -20 dBFS, stereo": (np.repeat((0.1 * np.sin(2 * np.pi * 997 * t))[:, None], 2, 1), 44100),
        "a quiet bed, stereo, 44.1 kHz": ((rng.standard_normal((44100 * 6, 2)) * 0.003), 44100),
    }  # fmt: skip


@pytest.mark.parametrize("build", sorted(ffmpeg_builds()))
def test_meter_agrees_with_ffmpeg(signals, build, tmp_path):
    exe = ffmpeg_builds()[build]
    for name, (x, rate) in signals.items():
        path = tmp_path / "x.wav"
        write_audio(path, x.astype(np.float32), rate, ["-c:a", "pcm_f32le"])
        lufs, peak = ebur128(path, ffmpeg=exe)
        meter = loudness.Meter(rate, x.shape[1])
        for a in range(0, len(x), 12345):  # odd pieces, as blocks arrive
            meter.write(x[a : a + 12345])
        assert abs(meter.loudness - lufs) <= 0.15, (name, meter.loudness, lufs)
        assert abs(meter.true_peak_db - peak) <= 0.2, (name, meter.true_peak_db, peak)


def test_sine_reads_as_the_standard_says():
    t = np.arange(48000 * 4) / 48000
    sine = (10 ** (-20 / 20) * np.sin(2 * np.pi * 997 * t))[:, None]
    # BS.1770: a 997 Hz sine peaking at 0 dBFS in one channel reads -3.01 LUFS.
    assert loudness.integrated(sine, 48000) == pytest.approx(-23.01, abs=0.05)
    assert loudness.integrated(np.zeros((48000, 2)), 48000) == -math.inf


def test_true_peak_finds_peaks_between_samples():
    t = np.arange(44100) / 44100
    # A quarter-rate sine sampled 45 degrees off its crest: samples at 0.707, true peak 1.
    x = np.sin(2 * np.pi * 11025 * t + np.pi / 4)[:, None]
    assert np.abs(x).max() == pytest.approx(0.7071, abs=1e-3)
    # Away from its abrupt ends (which truly overshoot), the true peak is the sine's.
    assert loudness.true_peak(x, 1000, 40000) == pytest.approx(1.0, abs=0.002)
    meter = loudness.Meter(44100, 1)
    for a in range(0, len(x), 4321):
        meter.write(x[a : a + 4321] * np.hanning(len(x))[a : a + 4321, None])
    assert meter.true_peak == pytest.approx(1.0, abs=0.002)


def test_energies_placed_in_time_measure_like_the_placed_audio():
    rng = np.random.default_rng(9)
    rate = 44100
    clips = [rng.standard_normal(int(rate * s)) * 0.1 for s in (1.3, 0.4, 2.7)]
    starts = [0.5, 2.35, 4.0]
    timeline = np.zeros(int(rate * 8))
    pieces = []
    for start, clip in zip(starts, clips, strict=True):
        at = round(start * rate)
        timeline[at : at + len(clip)] += clip
        weighted = loudness.dsp.sosfilt(loudness.k_weighting(rate), clip)
        width = rate // 100
        bins = np.add.reduceat(weighted**2, np.arange(0, len(clip), width))
        pieces.append((at / rate, bins, width / rate))
    energy = loudness.sum_energies(pieces, len(timeline) / rate)
    placed = loudness.gated(energy, loudness.step_samples(rate))
    assert placed == pytest.approx(loudness.integrated(timeline, rate), abs=0.1)


def test_a_silent_file_reads_minus_infinity(tmp_path):
    path = tmp_path / "silence.wav"
    write_audio(path, np.zeros((44100 * 2, 2), np.float32), 44100, ["-c:a", "pcm_s16le"])
    lufs, peak = ebur128(path)  # the helper copes with ffmpeg's -inf
    assert lufs <= -70 and peak == -math.inf
