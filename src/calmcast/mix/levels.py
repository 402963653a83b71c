"""Where everything sits, known before the first sample is mixed: the voice is the anchor.

Speech programmes are measured on their dialogue (AES TD1008): `loudness` is the loudness of
the voice alone, measured as it lies on the timeline with BS.1770's gating, from each
utterance's cached energy profile. The bed sits `bed_level` LU below that target and the
bells `bell_level` LU from it, each from its own measured loudness, so a session with no
speech at all (a silent sit, a timer) puts them exactly where a guided session would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import loudness
from ..encode import Calibration
from ..errors import ConfigError
from ..model import Speech, Timeline
from ..sounds import Sound
from ..voices.chain import VoiceChain
from ..voices.speech import Utterance

#: MP3 encoding lifts true peaks, the more the fewer bits it has: measured on speech, once
#: its level loss is made up, 0.2 dB at 128 kbit/s stereo and 0.6 to 1.0 dB at 64k, more
#: where a limiter has packed peaks together. The mix (and the voice chain) is held this far
#: under the file's ceiling, by kbit/s of the whole stream, stereo and mono; and further if
#: the encoder is measured to add more (`encode.level_loss`), with PEAK_SLACK to spare.
ENCODE_MARGINS = {2: ((128, 0.6), (96, 0.9), (0, 1.3)), 1: ((96, 0.6), (64, 1.3), (0, 1.6))}
PEAK_SLACK = 0.3


def encode_margin(bitrate: str, channels: int) -> float:
    """Return how far under the file's ceiling the mix is held for this MP3 bitrate, dB."""
    kbits = int(bitrate.lower().rstrip("k"))
    return next(m for least, m in ENCODE_MARGINS[min(channels, 2)] if kbits >= least)


#: The least room a voice needs between its loudness per channel and the mix's ceiling, dB.
#: Below it the chain packs the voice so densely under the ceiling that LAME overshoots by
#: up to 1.1 dB (a -12 LUFS stereo render at 128k: PCM -1.6 dBTP, MP3 -0.5), so louder
#: targets are refused before any work: -14 LUFS stereo and -17 mono at 128k. At -13 the
#: wheel's newer LAME read -1.0 dBTP, and at -13.5 usually -1.5 but once in three test runs
#: -0.6 (a 5-minute session over rain), so the room is 14.5 dB.
MIN_PEAK_TO_LOUDNESS = 14.5
#: The voice chain leaves this much more, for the tenth of a dB or two by which the voice's
#: loudness on the timeline can differ from its utterances' own.
VOICE_MARGIN = 0.25
#: The most an encoder's level loss (`encode.level_loss`, 0.44 dB for LAME at 128k) is made
#: up inside the voice's peak budget; the voice chain does not depend on the bitrate.
CODEC_ALLOWANCE = 0.5


@dataclass(frozen=True)
class MixSettings:
    """How the voice, the bed and the bells are balanced, in LUFS, dB and seconds."""

    sample_rate: int = 44100
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
    bitrate: str = "128k"  # of the MP3 it is encoded to: fewer bits, more headroom
    block_seconds: float = 10.0

    @property
    def ceiling(self) -> float:
        """Return the true-peak ceiling of the mix before encoding, dBTP."""
        return self.true_peak - encode_margin(self.bitrate, self.channels)


def loudest(channels: int, true_peak: float = -1.0, bitrate: str = "128k") -> float:
    """Return the loudest voice target (LUFS, in half dB) a calm voice can be held to."""
    settings = MixSettings(channels=channels, true_peak=true_peak, bitrate=bitrate)
    room = settings.ceiling - VOICE_MARGIN - CODEC_ALLOWANCE + 10 * math.log10(channels)
    return math.floor((room - MIN_PEAK_TO_LOUDNESS) * 2) / 2


def check(settings: MixSettings) -> None:
    """Raise ConfigError for a target the voice cannot reach without being squashed."""
    from ..settings import MP3_BITRATES

    tp, rate = settings.true_peak, settings.bitrate
    kbits = rate.lower().removesuffix("k")
    if not kbits.isdigit() or int(kbits) not in MP3_BITRATES:
        raise ConfigError(f"bitrate {rate!r}: MP3 has {', '.join(f'{b}k' for b in MP3_BITRATES)}")
    if settings.sample_rate < 32000 and int(kbits) > 160:  # MPEG-2 Layer III below 32 kHz
        raise ConfigError(f"bitrate {rate}: at {settings.sample_rate} Hz an MP3 has at most 160k")
    most = loudest(settings.channels, tp, rate)
    if settings.loudness > most:
        kind = "mono" if settings.channels == 1 else "stereo"
        raise ConfigError(
            f"--loudness {settings.loudness:g}: a voice that loud cannot stay under {tp:g} "
            f"dBTP without being squashed; at most {most:g} LUFS in {kind} at {rate} "
            f"(at 128k: stereo {loudest(2, tp):g}, mono {loudest(1, tp):g})"
        )


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
    codec_gain: float = 0.0  # what the voice's gain includes to make up the encoder's loss
    ceiling: float = -1.6  # the mix's true-peak ceiling before encoding, dBTP
    overshoot: float = 0.0  # how far the encoder lifts true peaks, dB
    #: With several voices, each role's own gain (each voice alone at the target); then
    #: `voice_gain` is what they come to together.
    role_gains: dict[str, float] = field(default_factory=dict)

    def gain_of(self, role: str) -> float:
        """Return the gain of the voice that reads `role`, dB."""
        return self.role_gains.get(role, self.voice_gain)

    @property
    def has_voice(self) -> bool:
        return math.isfinite(self.voice_lufs)


def voice_loudness(
    timeline: Timeline,
    speech: Sequence[Utterance],
    channels: int,
    gains: Mapping[str, float] | None = None,
    role: str | None = None,
) -> float:
    """Return the integrated loudness of the voice alone as placed on the timeline, LUFS.

    With `gains` (dB by role), each role's voice as raised by its gain; with `role`, that
    role's voice alone.
    """
    rate = timeline.sample_rate
    said = [e.segment for e in timeline.events if isinstance(e.segment, Speech)]
    starts = [e.start for e in timeline.events if isinstance(e.segment, Speech)]
    pieces = []
    for seg, start, utterance in zip(said, starts, speech, strict=True):
        if role is not None and seg.role != role:
            continue
        per_second, width = utterance.energy()
        scale = 10 ** (gains[seg.role] / 10) if gains else 1.0
        pieces.append((start / rate, per_second * (rate * channels * scale), width))
    energy = loudness.sum_energies(pieces, timeline.duration)
    return loudness.gated(energy, loudness.step_samples(rate))


def speaking_roles(timeline: Timeline) -> list[str]:
    """Return the roles whose voices speak on the timeline, in order of first words."""
    return list(dict.fromkeys(e.segment.role for e in timeline.events
                              if isinstance(e.segment, Speech)))  # fmt: skip


def anchor(
    timeline: Timeline,
    speech: Sequence[Utterance],
    bed: Sound | None,
    bells: dict[str | None, Sound],
    settings: MixSettings,
    codec: Calibration | None = None,
    bed_codec: Calibration | None = None,
) -> Levels:
    """Return the gains that put the voice at the target and everything else beside it.

    `codec` is what the encoder does to the session's voice (and `bed_codec` to its bed):
    their level loss is made up so that the file, not only the PCM fed to the encoder, reads
    at the target, and the ceiling lowered by the peaks the encoder adds.
    """
    codec = codec or Calibration()
    bed_codec = bed_codec or codec
    target = settings.loudness + codec.loss
    measured = voice_loudness(timeline, speech, settings.channels)
    voice_gain = target - measured if math.isfinite(measured) else 0.0
    role_gains: dict[str, float] = {}
    roles = speaking_roles(timeline)
    if len(roles) > 1:
        # Each voice is anchored on its own: a voice that speaks little is as loud as the
        # one that speaks most, and together they sit at the target too.
        for role in roles:
            alone = voice_loudness(timeline, speech, settings.channels, role=role)
            role_gains[role] = target - alone if math.isfinite(alone) else voice_gain
        together = voice_loudness(timeline, speech, settings.channels, gains=role_gains)
        if math.isfinite(together) and math.isfinite(measured):
            voice_gain = together - measured
    bed_gain = 0.0
    if bed is not None:
        bed_gain = settings.loudness + bed_codec.loss + settings.bed_level - bed.lufs
    bell_gains = {name: target + settings.bell_level - s.lufs for name, s in bells.items()}
    overshoot = max(codec.overshoot, bed_codec.overshoot)
    margin = max(encode_margin(settings.bitrate, settings.channels), overshoot + PEAK_SLACK)
    return Levels(measured, voice_gain, bed_gain, bell_gains, codec.loss,
                  settings.true_peak - margin, overshoot, role_gains)  # fmt: skip


#: Seconds of the session's own material the encoder is calibrated on.
CALIBRATION_SECONDS = 8.0


def codec_sample(
    speech: Sequence[Utterance],
    bed: Sound | None,
    bells: dict[str | None, Sound],
    settings: MixSettings,
) -> np.ndarray:
    """Return a few seconds of what the session is made of, to measure the encoder's loss on.

    The voice is the anchor, so its first utterances; with no speech, the bed; else a bell.
    """
    rate, channels = settings.sample_rate, settings.channels
    want = int(CALIBRATION_SECONDS * rate)
    pieces, have = [], 0
    for utterance in speech:
        if have >= want:
            break
        clip = utterance.audio(rate)
        pieces += [clip, np.zeros(rate // 4, np.float32)]
        have += len(clip)
    if have:
        mono = np.concatenate(pieces)
        return np.repeat(mono[:, None], channels, axis=1)
    if bed is not None:
        return bed.samples(0, want)
    for bell in bells.values():
        return bell.samples(0, want)
    return np.zeros((rate, channels), np.float32)
