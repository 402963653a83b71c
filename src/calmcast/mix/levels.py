"""Where everything sits, known before the first sample is mixed: the voice is the anchor.

Speech programmes are measured on their dialogue (AES TD1008): `loudness` is the loudness of
the voice alone, measured as it lies on the timeline with BS.1770's gating, from each
utterance's cached energy profile. The bed sits `bed_level` LU below that target and the
bells `bell_level` LU from it, each from its own measured loudness, so a session with no
speech at all (a silent sit, a timer) puts them exactly where a guided session would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .. import loudness
from ..model import Speech, Timeline
from ..sounds import Sound
from ..voices.chain import VoiceChain
from ..voices.speech import Utterance

#: MP3 encoding lifts true peaks a little: measured up to 0.4 dB on speech at 64 kbit/s, and
#: below the input at 128 kbit/s. The mix is held this far under the file's ceiling.
ENCODE_MARGIN = 0.6
#: The voice chain leaves this much more, for the tenth of a dB or two by which the voice's
#: loudness on the timeline can differ from its utterances' own.
VOICE_MARGIN = 0.25
#: The most an encoder's level loss (`encode.level_loss`, 0.44 dB for LAME at 128k) is made
#: up inside the voice's peak budget; the voice chain does not depend on the bitrate.
CODEC_ALLOWANCE = 0.5


@dataclass(frozen=True)
class MixSettings:
    """How the voice, the bed and the bells are balanced, in LUFS, dB and seconds."""

    rate: int = 44100
    channels: int = 2
    loudness: float = -16.0  # LUFS of the voice, measured on the speech alone
    true_peak: float = -1.0  # dBTP ceiling of the finished file
    bed_level: float = -20.0  # the bed's loudness relative to the voice, LU, before ducking
    duck: float = 9.0  # how far the bed dips under speech, dB
    attack: float = 0.5  # the dip starts this long before speech ...
    release: float = 1.5  # ... and the bed comes back over this long after it
    duck_hold: float = 3.0  # gaps in speech shorter than this stay ducked (no pumping)
    fade_in: float = 3.0
    fade_out: float = 6.0
    bell_level: float = -3.0  # bell strike loudness relative to the voice, LU
    block_seconds: float = 10.0

    @property
    def ceiling(self) -> float:
        """Return the true-peak ceiling of the mix before encoding, dBTP."""
        return self.true_peak - ENCODE_MARGIN


def voice_chain(settings: MixSettings) -> VoiceChain:
    """Return the voice chain that prepares speech for a mix with these settings.

    A mono voice in both channels of a stereo file counts twice in BS.1770, so its own
    loudness is 3 dB below the target and it may peak 3 dB further above it.
    """
    per_channel = settings.loudness + CODEC_ALLOWANCE - 10 * math.log10(settings.channels)
    return VoiceChain.for_target(per_channel, settings.ceiling - VOICE_MARGIN)


@dataclass(frozen=True)
class Levels:
    """Every gain of the mix, in dB, and the voice's loudness they were set from."""

    voice_lufs: float  # the speech alone as it lies on the timeline, before its gain
    voice_gain: float
    bed_gain: float
    bell_gains: dict[str | None, float]
    codec_gain: float = 0.0  # what every gain includes to make up the encoder's level loss

    @property
    def has_voice(self) -> bool:
        return math.isfinite(self.voice_lufs)


def voice_loudness(timeline: Timeline, speech: Sequence[Utterance], channels: int) -> float:
    """Return the integrated loudness of the voice alone as placed on the timeline, LUFS."""
    rate = timeline.rate
    starts = [e.start for e in timeline.events if isinstance(e.segment, Speech)]
    pieces = []
    for start, utterance in zip(starts, speech, strict=True):
        per_second, width = utterance.energy()
        pieces.append((start / rate, per_second * rate * channels, width))
    energy = loudness.sum_energies(pieces, timeline.duration)
    return loudness.gated(energy, loudness.step_samples(rate))


def anchor(
    timeline: Timeline,
    speech: Sequence[Utterance],
    bed: Sound | None,
    bells: dict[str | None, Sound],
    settings: MixSettings,
    codec_gain: float = 0.0,
) -> Levels:
    """Return the gains that put the voice at the target and everything else beside it.

    `codec_gain` is the encoder's level loss, made up in every gain so that the file, not
    only the PCM fed to the encoder, reads at the target.
    """
    target = settings.loudness + codec_gain
    measured = voice_loudness(timeline, speech, settings.channels)
    voice_gain = target - measured if math.isfinite(measured) else 0.0
    bed_gain = target + settings.bed_level - bed.lufs if bed is not None else 0.0
    bell_gains = {name: target + settings.bell_level - s.lufs for name, s in bells.items()}
    return Levels(measured, voice_gain, bed_gain, bell_gains, codec_gain)
