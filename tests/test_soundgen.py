"""The ambience library: reproducible from its seeds, decodable, seamless as loops, plausible."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from scipy import signal

from calmcast.encode import decode
from conftest import load_script

soundgen = load_script("soundgen")

# A maintainer's tool and the committed sounds it made: checked in the full suite.
pytestmark = pytest.mark.slow

RATE = 44100
LIBRARY = Path(__file__).resolve().parents[1] / "ambience"
ALL = [*soundgen.BEDS, *soundgen.BELLS]

# Where each bed's spectral centroid (Hz) may fall: what the kind of sound is, not our exact mix.
CENTROIDS = {
    "brown-noise": (80, 400),
    "drone": (60, 300),
    "ocean": (200, 1000),
    "wind": (300, 1500),
    "stream": (800, 3000),
    "rain": (1800, 6000),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def decoded() -> dict[str, np.ndarray]:
    """Decode every committed sound once, as float32 frames x 2 at 44.1 kHz."""
    return {name: decode(soundgen.sound_path(LIBRARY, name), RATE, 2) for name in ALL}


def test_library_holds_every_sound_and_its_sources():
    for name in ALL:
        assert soundgen.sound_path(LIBRARY, name).is_file(), name
    sources = (LIBRARY / "SOURCES.md").read_text(encoding="utf-8")
    for name in ALL:
        assert f"{name}.ogg" in sources
        assert str(soundgen.SEEDS[name]) in sources
    assert "CC0 1.0" in sources
    assert "scripts/make-ambience" in sources


def _octaves(audio: np.ndarray, rate: int) -> np.ndarray:
    """Return the level per octave band, 31 Hz to 16 kHz, dB relative to the whole."""
    freqs, power = signal.welch(audio.mean(axis=1), rate, nperseg=8192)
    edges = 31.25 * 2.0 ** np.arange(11)
    bands = [power[(freqs >= a) & (freqs < b)].sum() for a, b in itertools.pairwise(edges)]
    return 10 * np.log10(np.array(bands) / sum(bands))


@pytest.mark.slow
def test_regenerating_gives_the_committed_sound(tmp_path):
    """The generator remakes the committed library: the same bytes with the same numpy,
    scipy and encoder builds, and otherwise the same sound (length, loudness, spectrum)."""
    # One bed and one bell keep this quick; scripts/make-ambience remakes them all.
    names = ["brown-noise", "chime"]
    paths = soundgen.write_library(tmp_path, names)
    for name, path in zip(names, paths, strict=True):
        committed = soundgen.sound_path(LIBRARY, name)
        if _sha256(path) == _sha256(committed):
            continue
        rate = soundgen.RATE
        new, old = decode(path, rate, 2), decode(committed, rate, 2)
        hint = f"{name}: the generator no longer makes {committed}; if on purpose, run scripts/make-ambience"
        assert len(new) == len(old), hint
        meter = pyloudnorm.Meter(rate)
        assert meter.integrated_loudness(new) == pytest.approx(
            meter.integrated_loudness(old), abs=0.1
        ), hint
        assert np.abs(_octaves(new, rate) - _octaves(old, rate)).max() < 0.3, hint


@pytest.mark.parametrize("name", ALL)
def test_sound_decodes_to_full_length_stereo_without_clipping(decoded, name):
    audio = decoded[name]
    seconds = soundgen.BED_SECONDS if name in soundgen.BEDS else soundgen.BELL_SECONDS[name]
    assert audio.shape == (seconds * RATE, 2)
    peak = np.abs(audio).max()
    rms = np.sqrt(np.mean(audio**2, dtype=np.float64))
    assert 20 * np.log10(rms) > -45, "silent"
    assert 20 * np.log10(peak) < -1.0, "clipping or too hot"
    assert np.abs(audio.mean(axis=0)).max() < 1e-3, "DC offset"
    # Real stereo, not dual mono: the channels differ audibly.
    side, mid = audio[:, 0] - audio[:, 1], audio[:, 0] + audio[:, 1]
    assert 10 * np.log10(np.mean(side**2, dtype=np.float64) / np.mean(mid**2)) > -20


@pytest.mark.parametrize("name", list(soundgen.BEDS))
def test_bed_loudness(decoded, name):
    lufs = pyloudnorm.Meter(RATE).integrated_loudness(decoded[name])
    assert abs(lufs - soundgen.BED_LUFS) < 0.75


@pytest.mark.parametrize("name", list(soundgen.BEDS))
def test_bed_loops_without_a_seam(decoded, name):
    audio = decoded[name]
    # Tiled end to start, the step across the seam is one the material itself takes anyway.
    steps = np.percentile(np.abs(np.diff(audio, axis=0)), 99.99, axis=0)
    seam = np.abs(audio[0] - audio[-1])
    assert np.all(seam <= steps), f"seam step {seam} > 99.99th percentile {steps}"
    # And the level does not dip (or swell) there.
    around = np.concatenate([audio[-RATE // 2 :], audio[: RATE // 2]])
    level = 10 * np.log10(np.mean(around**2) / np.mean(audio**2, dtype=np.float64))
    assert abs(level) < 1.5


def test_beds_have_distinct_plausible_spectra(decoded):
    centroids = {}
    for name in soundgen.BEDS:
        # A minute is plenty for the average spectrum, and much quicker than the whole bed.
        mono = decoded[name][: 60 * RATE].mean(axis=1, dtype=np.float64)
        f, power = signal.welch(mono, RATE, nperseg=8192)
        centroids[name] = float(np.sum(f * power) / np.sum(power))
    for name, (lo, hi) in CENTROIDS.items():
        assert lo < centroids[name] < hi, f"{name}: centroid {centroids[name]:.0f} Hz"
    assert max(centroids["ocean"], centroids["brown-noise"]) < centroids["rain"]
    assert centroids["ocean"] < centroids["stream"] < centroids["rain"]
    assert centroids["brown-noise"] < centroids["ocean"]
    ordered = sorted(centroids.values())
    assert all(b / a > 1.2 for a, b in itertools.pairwise(ordered)), centroids


def test_ocean_swells(decoded):
    # Waves come and go: the level over 1 s windows moves by several dB, slowly.
    mono = decoded["ocean"].mean(axis=1, dtype=np.float64)
    levels = 10 * np.log10(np.mean(mono.reshape(-1, RATE) ** 2, axis=1))
    assert np.percentile(levels, 95) - np.percentile(levels, 5) > 6


@pytest.mark.parametrize("name", list(soundgen.BELLS))
def test_bell_starts_with_the_strike_and_rings_out(decoded, name):
    audio = decoded[name]
    level = np.abs(audio).max(axis=1)
    assert np.flatnonzero(level > 10 ** (-40 / 20))[0] < 0.005 * RATE, "silence before the strike"
    assert abs(20 * np.log10(level.max()) - soundgen.BELL_PEAK_DB) < 0.75
    assert 20 * np.log10(level[-RATE // 100 :].max() + 1e-12) < -60, "does not end in silence"
    # It rings: still clearly sounding a quarter of the way through, then dying away.
    quarter = len(audio) // 4
    assert 20 * np.log10(level[quarter : quarter + RATE // 10].max() / level.max()) > -40


def test_bowl_partials_beat(decoded):
    # The bowl's fundamental is two close modes: its envelope swells and dips, below 2 Hz.
    audio = decoded["bowl"][: 10 * RATE, 0].astype(np.float64)
    sos = signal.butter(4, [150, 250], btype="band", fs=RATE, output="sos")
    env = np.abs(signal.hilbert(signal.sosfilt(sos, audio)))[RATE::441]  # 100 Hz, after 1 s
    t = np.arange(env.size)
    slope, offset = np.polyfit(t, np.log(env), 1)
    env = env / np.exp(slope * t + offset)  # take away the decay, keep the beating
    f, power = signal.periodogram(env - env.mean(), 100)
    assert 0.3 < f[np.argmax(power)] < 2.0


@pytest.mark.parametrize("name", list(soundgen.BEDS))
def test_bed_synthesis_is_repeatable_and_periodic(name):
    bed = soundgen.BEDS[name]
    first, second = bed(seconds=4), bed(seconds=4)
    assert first.dtype == np.float32 and first.shape == (4 * RATE, 2)
    assert np.array_equal(first, second)
    assert soundgen.seam_jump(first.astype(np.float64)) <= 1.0
    assert not np.array_equal(first[:, 0], first[:, 1])


def test_unknown_sound_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sound"):
        soundgen.write_library(tmp_path, ["thunder"])
