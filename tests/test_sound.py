"""Sound design: loops without clicks, ducking, bells, and loudness on every ambience."""

from __future__ import annotations

import numpy as np
import pytest

from calmcast import loudness, sounds
from calmcast.encode import write_audio
from calmcast.errors import AudioError
from calmcast.mix import Mixer, MixSettings, anchor
from calmcast.model import Bell, Speech
from calmcast.pipeline import Output, Request, plan, render
from conftest import FIXTURES, ebur128

DENSE = str(FIXTURES / "dense.j2")
RATE = 44100


def mixer_for(ambience: str, minutes: float, **mix) -> tuple[Mixer, object]:
    request = Request(DENSE, minutes=minutes, voice="espeak:en-gb", ambience=ambience,
                      bell="bowl", mix=MixSettings(**mix))  # fmt: skip
    p = plan(request)
    bed = sounds.load(ambience, "ambience", RATE)
    levels = anchor(p.timeline, p.speech, bed, p.bells, request.mix)
    return Mixer(p.timeline, p.speech, bed, p.bells, request.mix, levels), p


def test_library_lists_ambiences_and_bells():
    assert {"rain", "ocean", "stream", "wind", "brown-noise", "drone"} <= set(sounds.ambiences())
    assert {"bowl", "gong", "chime"} <= set(sounds.bells())


@pytest.mark.slow
@pytest.mark.parametrize("ambience", sorted(sounds.ambiences()))
def test_every_ambience_renders_at_broadcast_loudness(ambience, tmp_path):
    out = tmp_path / f"{ambience}.mp3"
    request = Request(DENSE, minutes=1.5, voice="espeak:en-gb", ambience=ambience, bell="chime")
    result = render(request, Output(out))
    lufs, peak = ebur128(out)
    # Mostly speech: the programme is as loud as its voice, which is at the target.
    assert -17 <= lufs <= -15.5, lufs
    assert peak <= -1.0, peak
    assert abs(result.voice_loudness + 16) < 0.05
    assert abs(result.loudness - lufs) < 0.3  # measured as encoded, read back by ffmpeg


@pytest.mark.parametrize("ambience", [
    pytest.param(name, marks=() if name == "rain" else pytest.mark.slow)  # the default bed
    for name in sorted(sounds.ambiences())
])  # fmt: skip
def test_no_click_at_any_loop_seam(ambience):
    bed = sounds.load(ambience, "ambience", RATE)
    assert bed.seamless  # the built-in beds are made to loop as they are
    loop = bed.samples()
    own = np.percentile(np.abs(np.diff(loop, axis=0)), 99.99)
    # Seams of the bed as the mixer plays it, from a session long enough to loop twice; with
    # ducking and fades off its gain is constant, so the loop's own samples can be compared.
    m, _ = mixer_for(
        ambience, minutes=2 * len(loop) / RATE / 60 + 0.5, duck=0, fade_in=0, fade_out=0
    )
    for k in (1, 2):
        seam = k * len(loop)
        _, stem, _ = m.stems(seam - 2000, seam + 2000)
        played = stem / np.float32(10 ** (m.levels.bed_gain / 20))
        assert np.allclose(played[:2000], loop[-2000:], atol=1e-5)
        jump = np.abs(played[2000] - played[1999]).max()  # the step across the seam itself
        assert jump <= own, (ambience, k, jump, own)


def test_bed_ducks_under_speech_and_the_voice_stays_15_db_clear():
    m, p = mixer_for("rain", minutes=2)
    voice, bed, _ = (
        np.concatenate(x) for x in zip(*[m.stems(a, b) for a, b in m.blocks()], strict=True)
    )
    speaking = np.zeros(p.timeline.length, bool)
    for e in p.timeline.events:
        if isinstance(e.segment, Speech):
            speaking[e.start : e.end] = True
    v = np.mean(voice[speaking] ** 2)
    during = np.mean(bed[speaking] ** 2)
    quiet = ~speaking
    quiet[: 5 * RATE] = False  # the fade-in
    quiet[-8 * RATE :] = False  # the fade-out
    between = np.mean(bed[quiet] ** 2)
    margin = 10 * np.log10(v / during)
    dip = 10 * np.log10(between / during)
    assert margin >= 15, margin
    assert 6 <= dip <= 12, dip  # about 9 dB by default, ramps included


def test_ducking_curve_has_no_steps():
    m, _ = mixer_for("rain", minutes=2)
    steps = np.abs(np.diff(20 * np.log10(np.maximum(m.bed_curve, 1e-9))))
    # 10 ms control points: ramps of 0.5 s and more change by well under 1 dB a step.
    assert steps[300:-800].max() < 1.0


def test_voice_is_never_faded():
    m, p = mixer_for("rain", minutes=1.5, fade_in=10, fade_out=10)
    first = next(e for e in p.timeline.events if isinstance(e.segment, Speech))
    voice, _, _ = m.stems(first.start, first.end)
    gain = 10 ** (m.levels.voice_gain / 20)
    assert np.allclose(voice[:, 0], p.speech[0].audio(RATE) * gain, atol=1e-6)


def test_closing_bell_rings_out_before_the_end():
    _, p = mixer_for("rain", minutes=1.5)
    bells = [e for e in p.timeline.events if isinstance(e.segment, Bell)]
    last = bells[-1]
    assert last.start + p.bells["bowl"].ring * RATE <= p.timeline.length


def test_interval_bells_every_five_minutes():
    request = Request(str(FIXTURES / "sample.j2"), minutes=16, voice="espeak:en-gb",
                      bell="chime", interval_bell=300)  # fmt: skip
    p = plan(request)
    starts = [
        e.start / RATE
        for e in p.timeline.events
        if isinstance(e.segment, Bell) and e.segment.name == "chime"
    ]
    # Counted from the opening bell, after the lead-in.
    opening = starts[0]
    assert opening == p.practice.timing.lead_in
    assert {300.0, 600.0, 900.0} <= {round(t - opening, 3) for t in starts}


def test_limiter_holds_true_peaks():
    t = np.arange(RATE) / RATE
    x = np.stack([np.sin(2 * np.pi * 5512.5 * t + np.pi / 4)] * 2, axis=1).astype(np.float32) * 1.5
    y = x * loudness.smooth_dip(loudness.peak_need(x, 0.8), 220)[:, None]
    peaks = loudness.true_peaks(y, np.arange(len(y)))
    assert peaks.max() <= 0.8 * 1.001
    assert np.abs(y).max() > 0.5  # limited, not silenced


# -- users' own files ---------------------------------------------------------------------------


def test_8khz_mono_ambience_is_resampled_and_works(tmp_path):
    rng = np.random.default_rng(7)
    noise = np.convolve(rng.normal(0, 0.2, 8000 * 20), np.ones(4) / 4, mode="same").astype(
        np.float32
    )
    path = tmp_path / "phone.wav"
    write_audio(path, noise, 8000, ["-c:a", "pcm_s16le"])
    bed = sounds.load(str(path), "ambience", RATE)
    assert bed.audio.shape == (20 * RATE, 2)
    out = tmp_path / "out.mp3"
    render(Request(DENSE, minutes=1, voice="espeak:en-gb", ambience=str(path)), Output(out))
    lufs, peak = ebur128(out)
    assert -17 <= lufs <= -15.5 and peak <= -1.0


def test_silent_ambience_is_refused(tmp_path):
    path = tmp_path / "silence.flac"
    write_audio(path, np.zeros((RATE * 5, 2), np.float32), RATE, ["-c:a", "flac"])
    with pytest.raises(AudioError, match=r"silence\.flac: the ambience is silent"):
        sounds.load(str(path), "ambience", RATE)


def test_too_short_ambience_is_refused(tmp_path):
    path = tmp_path / "blip.wav"
    write_audio(path, np.full((400, 2), 0.1, np.float32), RATE, ["-c:a", "pcm_s16le"])
    with pytest.raises(AudioError, match="at least 1 s is needed"):
        sounds.load(str(path), "ambience", RATE)
