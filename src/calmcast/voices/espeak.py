"""espeak-ng through pyttsx3, made dependable.

pyttsx3's espeak driver synthesises on espeak's own thread and its `runAndWait()` can return
before the WAV exists, so every utterance here is waited for on the `finished-utterance`
event, with a watchdog that cancels a synthesis that never ends. pyttsx3 tells espeak that
each text is ten times as long as it is, and espeak copies that many bytes: a read past the
end of the text that crashes the process now and then (always, past ~18k characters), so the
call is made with the text's true size. Utterances are bounded in size (the driver's callback
joins audio in quadratic time), the driver's "Audio saved" line never reaches stdout, and one
lock keeps the single engine on one utterance at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import difflib
import functools
import io
import logging
import os
import re
import sys
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np

from ..errors import VoiceError
from . import MEDITATION_WPM, VoiceInfo

log = logging.getLogger(__name__)

#: espeak's own volume (pyttsx3's 0-1 scale; 1 is espeak's 100). At full volume its formant
#: pulses reach 0 dBFS and can clip; half leaves 6 dB of headroom at the source.
VOLUME = 0.5
#: espeak-ng's own range of speeds (espeakRATE_MINIMUM and espeakRATE_MAXIMUM): it quietly
#: clamps anything outside it, so 40 and 80 words a minute sounded the same.
MIN_WPM, MAX_WPM = 80, 450
#: Longest text handed to espeak in one call; longer text is spoken in pieces and joined.
MAX_CHARS = 1200
_lock = threading.RLock()


def _load_library() -> None:
    """Make libespeak-ng loadable: the system's, else the espeakng-loader wheel's."""
    if not sys.platform.startswith("linux"):
        return
    if ctypes.util.find_library("espeak-ng") or ctypes.util.find_library("espeak"):
        return
    try:
        import espeakng_loader
    except ImportError as e:
        raise VoiceError("espeak-ng not found: install libespeak-ng or espeakng-loader") from e
    # The wheel's compiled-in data path is its builder's; without this the C library exit()s.
    os.environ.setdefault("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
    # dlopen ignores LD_LIBRARY_PATH changed at run time, but matches an already loaded
    # soname, so load it by absolute path before pyttsx3 asks for libespeak-ng.so.1.
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)


class _Engine:
    """The process's one pyttsx3 engine, with events to wait on."""

    def __init__(self) -> None:
        _load_library()
        try:
            import pyttsx3
        except (ImportError, RuntimeError, OSError) as e:
            raise VoiceError(f"espeak-ng could not be loaded: {e}") from e
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                # A strong reference: pyttsx3 caches engines in a weak dictionary.
                self.engine = pyttsx3.init("espeak" if sys.platform.startswith("linux") else None)
            except (RuntimeError, OSError) as e:
                raise VoiceError(f"espeak-ng could not be started: {e}") from e
        lib = sys.modules.get("pyttsx3.drivers._espeak")
        if lib is not None:
            lib.Synth = _exact_synth(lib)  # type: ignore[attr-defined]  # called as lib.Synth
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.engine.connect("finished-utterance", self._finished)
        self.engine.connect("error", self._error)
        self.settings: tuple | None = None
        self.voices = self._list_voices()

    def _finished(self, name=None, completed=True) -> None:
        self.done.set()

    def _error(self, name=None, exception=None) -> None:
        self.errors.append(exception)
        self.done.set()

    def _list_voices(self) -> dict[str, VoiceInfo]:
        found = {}
        for v in self.engine.getProperty("voices"):
            short = v.id.rsplit("/", 1)[-1]
            lang = (v.languages[0] if v.languages else short) or short
            if isinstance(lang, bytes):
                lang = lang.decode("utf-8", "ignore")
            found[v.id] = VoiceInfo(f"espeak:{short}", str(lang).lower(), v.name, neural=False)
        return found

    def resolve(self, voice_id: str) -> str:
        """Return the engine's id for what the user typed: `en-gb`, `gmw/en-gb` or a name."""
        want = voice_id.strip().lower()
        for vid, info in self.voices.items():
            if want in (vid.lower(), info.name.split(":", 1)[1].lower(), info.description.lower()):
                return vid
        for vid, info in self.voices.items():
            if want == info.language:
                return vid
        names = [info.name.split(":", 1)[1] for info in self.voices.values()]
        close = difflib.get_close_matches(want, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise VoiceError(f"unknown voice 'espeak:{voice_id}'{hint}; `calmcast voices` lists them")

    def speak(self, text: str, settings: tuple) -> tuple[np.ndarray, int]:
        """Return (samples, rate) of one utterance, waiting until espeak has finished."""
        engine = self.engine
        if settings != self.settings:
            self.settings = None
            self._apply(settings)
            self.settings = settings
        fd, tmp = tempfile.mkstemp(prefix="calmcast-", suffix=".wav")
        os.close(fd)
        os.unlink(tmp)  # the driver creates it; its existence marks a finished utterance
        timeout = 30.0 + len(text) / 20
        self.done.clear()
        self.errors.clear()
        watchdog = threading.Timer(timeout, self._cancel)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                engine.save_to_file(text, tmp)
                watchdog.start()
                engine.runAndWait()
                finished = self.done.wait(timeout)
            if self.errors:
                self.settings = None
                raise VoiceError(f"espeak failed: {self.errors[0]}")
            if not finished or not Path(tmp).exists():
                self.settings = None
                raise VoiceError(f"espeak did not finish speaking within {timeout:.0f} s")
            with wave.open(tmp, "rb") as w:
                rate = w.getframerate()
                pcm = w.readframes(w.getnframes())
            return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, rate
        finally:
            watchdog.cancel()
            Path(tmp).unlink(missing_ok=True)

    def _apply(self, settings: tuple) -> None:
        """Set voice, rate, volume and pitch, and know that espeak has taken them.

        Through pyttsx3's queue, espeak-ng's asynchronous parameter commands could lose to
        the driver's own defaults: about one process in forty spoke its first utterance at
        200 words a minute. So they are set on the driver directly, espeak's command queue
        is drained, and the rate is read back.
        """
        voice_id, rate, pitch = settings
        values = {"voice": voice_id, "rate": round(rate), "volume": VOLUME}
        if pitch is not None:
            values["pitch"] = round(pitch)
        lib = sys.modules.get("pyttsx3.drivers._espeak")
        if lib is None:  # another platform's driver: its queue applies them in order
            for name, value in values.items():
                self.engine.setProperty(name, value)
            return
        driver = self.engine.proxy._driver
        for name, value in values.items():
            driver.setProperty(name, value)
        lib.Synchronize()
        rate_now = lib.dll.espeak_GetParameter(lib.RATE, 1)
        volume_now = lib.dll.espeak_GetParameter(lib.VOLUME, 1)
        if (rate_now, volume_now) != (values["rate"], round(VOLUME * 100)):
            raise VoiceError(
                f"espeak kept rate {rate_now} and volume {volume_now} where "
                f"{values['rate']} and {round(VOLUME * 100)} were set"
            )

    def _cancel(self) -> None:
        log.warning("espeak hung; cancelling the utterance")
        with contextlib.suppress(Exception):
            self.engine.stop()
            self.engine.proxy._driver.endLoop()


def _exact_synth(lib):
    """Return pyttsx3's `Synth`, giving espeak_Synth the text's true size (with its zero byte).

    pyttsx3 passes `len(text) * 10`, and espeak-ng copies that many bytes from the text: nine
    times its length read from whatever memory follows it. A Python bytes object always ends
    in a zero byte, so `len + 1` bytes are its own.
    """

    def synth(text, position=0, position_type=lib.POS_CHARACTER, end_position=0, flags=0,
              user_data=None):  # fmt: skip
        if isinstance(text, str):
            text = text.encode("utf-8")
        return lib.cSynth(text, len(text) + 1, position, position_type, end_position, flags,
                          None, user_data)  # fmt: skip

    return synth


@functools.cache
def engine() -> _Engine:
    """Return the process's engine, started on first use."""
    return _Engine()


def split_text(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Split text into pieces of at most `limit` characters at the gentlest boundary."""
    text = text.strip()
    pieces = []
    while len(text) > limit:
        window = text[:limit]
        for pattern in (r"[.!?;:]\s", r",\s", r"\s"):
            cuts = [m.end() for m in re.finditer(pattern, window)]
            if cuts:
                cut = cuts[-1]
                break
        else:
            cut = limit
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


class EspeakVoice:
    """An espeak-ng voice with fixed rate and pitch."""

    def __init__(self, voice_id: str, wpm: float | None, pitch: float | None) -> None:
        with _lock:
            eng = engine()
            self.voice_id = eng.resolve(voice_id)
        info = eng.voices[self.voice_id]
        self.name = info.name
        self.language = info.language
        self.wpm = float(wpm) if wpm else float(MEDITATION_WPM)
        if not MIN_WPM <= self.wpm <= MAX_WPM:
            raise VoiceError(
                f"--wpm {self.wpm:g}: espeak speaks {MIN_WPM} to {MAX_WPM} words a minute"
            )
        self.pitch = pitch
        if pitch is not None and not 0 <= pitch <= 100:
            raise VoiceError(f"--pitch {pitch:g}: espeak's pitch runs from 0 to 100")
        self.sample_rate = 22050

    def cache_key(self) -> str:
        return (
            f"espeak|{self.voice_id}|rate={self.wpm:g}|pitch={self.pitch}|volume={VOLUME:g}"
            f"|{_version()}|checked"  # clips from before the rate was checked are remade
        )

    def synthesize(self, text: str) -> np.ndarray:
        """Return `text` spoken, as mono float32 at 22050 Hz."""
        parts = []
        with _lock:
            for piece in split_text(text):
                samples, rate = engine().speak(piece, (self.voice_id, self.wpm, self.pitch))
                if rate != self.sample_rate:
                    raise VoiceError(f"espeak returned {rate} Hz, expected {self.sample_rate}")
                parts.append(samples)
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return f"pyttsx3-{version('pyttsx3')}"
    except Exception:
        return "pyttsx3"


class EspeakBackend:
    prefix = "espeak"

    def available(self) -> bool:
        try:
            engine()
        except VoiceError as e:
            log.debug("espeak unavailable: %s", e)
            return False
        return True

    def voices(self) -> list[VoiceInfo]:
        return sorted(engine().voices.values(), key=lambda v: v.name)

    def open(self, voice_id: str, wpm: float | None, pitch: float | None) -> EspeakVoice:
        return EspeakVoice(voice_id or "en-gb", wpm, pitch)


BACKEND = EspeakBackend()
