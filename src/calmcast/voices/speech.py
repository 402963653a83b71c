"""A practice's speech: each utterance spoken once, prepared by the voice chain, cached.

`speak()` returns light `Utterance` handles. Their lengths and checksums are known from the
cache (a warm plan loads no voice model); the mix reads each
utterance's audio only while it is playing, so memory stays flat however much is said.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from . import Voice
from .cache import Entry, SpeechCache
from .chain import BIN_SECONDS, VoiceChain

log = logging.getLogger(__name__)

#: Samples quieter than this (about -60 dBFS) at either end of an utterance are trimmed.
TRIM_LEVEL = 1e-3


@dataclass(frozen=True, eq=False)
class Utterance:
    """One prepared utterance: its text, and its audio on disk at the voice's own rate."""

    text: str
    entry: Entry
    voice: str = ""  # the name of the voice that said it

    @property
    def rate(self) -> int:
        return self.entry.rate

    @property
    def frames(self) -> int:
        return self.entry.frames

    def length(self, rate: int) -> int:
        """Return its length in samples at `rate` (resampled utterances are exactly this long)."""
        return round(self.frames * rate / self.entry.rate)

    def audio(self, rate: int) -> np.ndarray:
        """Return its samples as mono float32 at `rate`, exactly `length(rate)` long."""
        samples = self.entry.audio()
        if rate != self.entry.rate and len(samples):
            import soxr

            samples = soxr.resample(samples, self.entry.rate, rate, quality="HQ")
        return _exact(samples.astype(np.float32, copy=False), self.length(rate))

    def energy(self) -> tuple[np.ndarray, float]:
        """Return its K-weighted energy per bin, scaled to sums at 1 Hz, and the bin seconds.

        Energies are per-second sums so that pieces at different rates add up: multiply by
        the output rate for sums of squares there.
        """
        return self.entry.bins() / self.entry.rate, BIN_SECONDS

    def stats(self) -> dict:
        """Return what the voice chain did to it."""
        return self.entry.stats()


def speak(
    voice: Voice,
    texts: list[str],
    chain: VoiceChain,
    cache: SpeechCache,
    progress: Callable[[int, int], None] | None = None,
) -> list[Utterance]:
    """Return each text spoken and prepared: from the cache where it can, else synthesised.

    `progress(done, total)` is told after each text.
    """
    cache.check()
    voice_key = voice.cache_key()
    chain_key = chain.key()
    started = time.perf_counter()
    out = []
    for text in texts:
        key = cache.key(voice_key, text)
        prepared = cache.prepared_key(key, chain_key)
        entry = cache.get_prepared(prepared)
        if entry is None:
            got = cache.get(key)
            if got is None:
                # Prepared from the samples as stored, so a miss and a hit give the same.
                samples = cache.put(key, voice.synthesize(text), voice.sample_rate)
                got = (samples, voice.sample_rate)
                cache.misses += 1
            else:
                cache.hits += 1
            samples, rate = got
            # A recorded clip is cut and faded already: its room stays, to meet the room's tone.
            done = chain.process(samples if getattr(voice, "trimmed", False) else trim(samples), rate)
            entry = cache.put_prepared(prepared, done.audio, rate, done.bins, asdict(done.stats))
        else:
            cache.hits += 1
        out.append(Utterance(text, entry, voice.name))
        if progress:
            progress(len(out), len(texts))
    log.info(
        "speech: %d utterances, %d synthesised, %d from the cache, %.1f s",
        len(texts),
        cache.misses,
        cache.hits,
        time.perf_counter() - started,
    )
    return out


def unprepared(voice: Voice, texts: list[str], chain: VoiceChain, cache: SpeechCache) -> list[str]:
    """Return the texts `speak` would have to synthesise or prepare: not yet in the cache."""
    voice_key, chain_key = voice.cache_key(), chain.key()
    return [
        text for text in texts
        if cache.get_prepared(cache.prepared_key(cache.key(voice_key, text), chain_key)) is None
    ]  # fmt: skip


def trim(samples: np.ndarray) -> np.ndarray:
    """Return samples without the near-silence at either end."""
    loud = np.flatnonzero(np.abs(samples) > TRIM_LEVEL)
    if len(loud) == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def _exact(samples: np.ndarray, length: int) -> np.ndarray:
    if len(samples) == length:
        return samples
    if len(samples) > length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - len(samples), np.float32)])
