"""A teacher's own voice: a folder of clips, one per line of a practice, spoken as recorded.

A voice folder holds `voice.json` (its name, language, and each line's id, text, clip, the
clip's hash and the file it came from) and `clips/ID-HASH.wav` (mono, 16-bit, 48 kHz, trimmed to
the words with a margin and faded at both edges). `calmcast voices import NAME FILE...
--practice P` makes or adds to one from files named by the ids `calmcast lines P` prints.

Voices live in $CALMCAST_VOICES, else the user's data folder; `--voice recorded:NAME` or a
folder's path speaks with one. A recording has no rate or pitch to set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VoiceError
from . import VoiceInfo, room

log = logging.getLogger(__name__)

#: The rate clips are stored at, Hz.
RATE = 48000
#: Kept before the first and after the last sound of a clip, seconds: a breath that leads
#: into a line stays with it, and a word's soft end is not cut.
MARGIN = 0.15
#: Each clip fades in and out over this long, seconds, so no edge clicks.
FADE = 0.01
#: What counts as sound when trimming: this far below the clip's loudest 10 ms, dB.
TRIM_BELOW_PEAK = 45.0
#: A take whose loudest 10 ms is below this (-60 dBFS) holds no speech.
SILENT = 1e-3
#: ... and this far above the room's own level (its quietest moments), dB.
ABOVE_ROOM = 12.0
#: The longest clip calmcast takes, seconds (a line is a few sentences).
MAX_CLIP = 300.0
FORMAT = 1
_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{6})(?![0-9a-f])")


def voices_dir() -> Path:
    """Return $CALMCAST_VOICES, or the user's data folder's `voices`."""
    env = os.environ.get("CALMCAST_VOICES")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("calmcast")) / "voices"


def check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
        raise VoiceError(f"{name[:40]!r}: a voice's name is one word of lower-case letters, "
                         "digits, - or _ (at most 40 characters)")  # fmt: skip
    return name


@dataclass
class Folder:
    """A voice folder and what its voice.json says."""

    path: Path
    name: str
    language: str
    lines: dict[str, dict]
    room: room.Room | None = None  # the room's tone, as measured in the takes' gaps

    @classmethod
    def open(cls, path: Path) -> Folder:
        where = path / "voice.json"
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
            language, lines = data["language"], dict(data["lines"])
            if not isinstance(language, str):
                raise TypeError("language is not text")
            for key, entry in lines.items():
                clip = entry["clip"]
                if not (isinstance(entry["text"], str) and isinstance(entry["sha256"], str)
                        and isinstance(clip, str) and re.fullmatch(r"clips/[\w.-]+\.wav", clip)):
                    raise TypeError(f"line {key} is not a text, a clip in clips/ and its hash")
            heard = room.Room.from_json(data["room"]) if data.get("room") else None
        except FileNotFoundError:
            raise VoiceError(f"{path}: no recorded voice here (no voice.json)") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise VoiceError(f"{where}: damaged, not as calmcast wrote it ({e}); import the "
                             "lines again, or remove the voice") from None  # fmt: skip
        # The folder's name is the voice's: a copy under another name is that voice.
        return cls(path, path.name, language, lines, heard)

    def clip(self, line_id: str) -> Path | None:
        """Return the clip of a line, if the voice has it and it is there."""
        entry = self.lines.get(line_id)
        path = self.path / entry["clip"] if entry else None
        return path if path is not None and path.is_file() else None

    def save(self) -> None:
        from ..output import write_small

        data = {"format": FORMAT, "name": self.name, "language": self.language,
                "lines": dict(sorted(self.lines.items()))}  # fmt: skip
        if self.room is not None:
            data["room"] = self.room.as_json()
        write_small(self.path / "voice.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    def digest(self, clips_only: bool = False) -> str:
        """Return a hash of every clip and of the room's tone: a retake changes it."""
        clips = sorted((k, v["sha256"]) for k, v in self.lines.items())
        blob = json.dumps(clips if clips_only else [clips, self.room and self.room.as_json()])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def find(ref: str, folder: Path | None = None) -> Path:
    """Return the folder of the recorded voice `ref`: a name among the voices, or a path."""
    path = Path(ref).expanduser()
    if (path / "voice.json").is_file():
        return path
    return (folder or voices_dir()) / check_name(ref)


class RecordedVoice:
    """A voice that speaks a line from its clip."""

    sample_rate = RATE
    trimmed = True  # its clips are cut and faded as stored

    def __init__(self, folder: Folder) -> None:
        self.folder = folder
        self.name = f"recorded:{folder.name}"
        self.language = folder.language
        self._digest = folder.digest(clips_only=True)

    def cache_key(self) -> str:
        return f"recorded|2|{self.folder.name}|{self._digest}"

    def has(self, text: str) -> bool:
        from ..lines import line_id

        return self.folder.clip(line_id(text)) is not None

    def synthesize(self, text: str) -> np.ndarray:
        from ..lines import line_id

        clip = self.folder.clip(line_id(text))
        if clip is None:
            raise VoiceError(f"{self.name} has no clip of {text[:60]!r}")
        return read_wav(clip)


class RecordedBackend:
    prefix = "recorded"

    def available(self) -> bool:
        return voices_dir().is_dir()

    def voices(self) -> list[VoiceInfo]:
        out = []
        for path in sorted(voices_dir().glob("*/voice.json")):
            try:
                f = Folder.open(path.parent)
            except VoiceError as e:
                log.warning("%s", e.format_message())
                continue
            out.append(VoiceInfo(f"recorded:{f.name}", f.language,
                                 f"{len(f.lines)} lines recorded", neural=False))  # fmt: skip
        return out

    def open(self, voice_id: str, wpm: float | None, pitch: float | None) -> RecordedVoice:
        if wpm is not None or pitch is not None:
            raise VoiceError("--wpm and --pitch do not apply to a recorded voice: it speaks as "
                             "it was read")  # fmt: skip
        path = find(voice_id)
        if not (path / "voice.json").is_file():
            raise VoiceError(f"no recorded voice {voice_id!r} in {path.parent} "
                             "(`calmcast voices` lists them; `calmcast voices import` makes one)")  # fmt: skip
        return RecordedVoice(Folder.open(path))


BACKEND = RecordedBackend()


# -- clips -------------------------------------------------------------------------------------


def decode(path: Path) -> np.ndarray:
    """Return any file ffmpeg reads as mono float32 at RATE, or raise VoiceError."""
    from ..encode import ffmpeg_exe

    most = int(MAX_CLIP * RATE) * 4
    if not path.is_file():
        raise VoiceError(f"{path}: not a regular file")
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0",
             "-ac", "1", "-ar", str(RATE), "-f", "f32le", "-t", str(MAX_CLIP + 1), "-"],
            capture_output=True, timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise VoiceError(f"{path}: ffmpeg took too long to read it") from None
    if proc.returncode != 0 or not proc.stdout:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = said[-1] if said else "no audio in it"
        if "matches no streams" in why:
            why = "it has no sound"
        raise VoiceError(f"{path}: not audio calmcast can read ({why[:120]})")
    if len(proc.stdout) > most:
        raise VoiceError(f"{path}: longer than {MAX_CLIP:g} s, more than a line")
    return np.frombuffer(proc.stdout, "<f4").astype(np.float32)


def trimmed(samples: np.ndarray, rooms: list[np.ndarray] | None = None) -> np.ndarray:
    """Return a clip from a little before its first sound to a little after its last, faded;
    what lies beyond the margin, the room alone, is added to `rooms`."""
    hop = RATE // 100
    frames = len(samples) // hop
    if frames == 0:
        return samples[:0]
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-20)
    if rms.max() < SILENT:
        return samples[:0]  # nothing louder than -60 dBFS: no speech
    # Sound is what stands out: from the room (its quietest frames) by ABOVE_ROOM, and
    # within TRIM_BELOW_PEAK of the loudest, but never needing to be nearer it than 25 dB.
    quiet = float(np.percentile(rms, 5)) * 10 ** (ABOVE_ROOM / 20)
    floor = min(max(rms.max() * 10 ** (-TRIM_BELOW_PEAK / 20), quiet), rms.max() * 10 ** (-25 / 20))
    loud = np.flatnonzero(rms > floor)
    margin = int(MARGIN * RATE)
    a = max(int(loud[0]) * hop - margin, 0)
    b = min((int(loud[-1]) + 1) * hop + margin, len(samples))
    if rooms is not None:
        rooms += [part for part in (samples[:a], samples[b:]) if len(part)]
    return faded(samples[a:b])


def faded(samples: np.ndarray) -> np.ndarray:
    """Return a copy of `samples` faded in and out over FADE, linearly."""
    clip = samples.copy()
    n = min(int(FADE * RATE), len(clip) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        clip[:n] *= ramp
        clip[-n:] *= ramp[::-1]
    return clip


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Return float samples as the 16-bit PCM a clip is stored as."""
    return np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")


def write_wav(path: Path, samples: np.ndarray) -> None:
    """Write a clip: float samples, or 16-bit PCM as `pcm16` makes (kept so, a take's clips
    take half the memory while they wait to be stored)."""
    pcm = samples if samples.dtype == np.dtype("<i2") else pcm16(samples)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def read_wav(path: Path) -> np.ndarray:
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
                raise VoiceError(f"{path}: not a clip calmcast stored")
            data = w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError) as e:
        raise VoiceError(f"{path}: cannot read the clip ({e})") from None
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768


def import_files(name: str, files: list[Path], practice: str, values: dict[str, str] | None = None,
                 folder: Path | None = None, numbers: set[int] | None = None,
                 said: Callable[[str], None] | None = None) -> tuple[Folder, list[str], list[str]]:  # fmt: skip
    """Add recordings of `practice`'s lines to the voice `name`: files each named by a line's
    id, or one continuous take of the lines in the script's order (`numbers`: of just those).

    Every file is checked and read, and a take cut, before anything is written. Return the
    folder, the ids added and the ids recorded again (a retake replaces the clip). `said` is
    told what is worth knowing (the room's noise floor, the reader's pace).
    """
    from ..lines import script_lines
    from ..practice import load_practice

    check_name(name)
    listing = script_lines(practice, values)
    if numbers and max(numbers) > len(listing):
        raise VoiceError(f"--lines: {practice} has {len(listing)} lines, not {max(numbers)}")
    lines = {line.id: line for line in listing}
    loaded = load_practice(practice)
    language = loaded.language
    defaults = {v.name: v.default for v in loaded.variables}
    clips: dict[str, np.ndarray] = {}
    where: dict[str, tuple[str, float | None]] = {}  # the file each clip came from, and when
    rooms: list[np.ndarray] = []
    named = [f for f in files if [i for i in _ID.findall(f.stem.lower()) if i in lines]]
    if len(files) == 1 and not named:
        chosen = [(n, line) for n, line in enumerate(listing, 1)
                  if (not numbers or n in numbers)
                  and all(defaults.get(v) for v in line.holds)]  # fmt: skip
        if not chosen:
            raise VoiceError(f"{practice}: no line to read (each holds a listener's value)")
        for line_id, (clip, at) in _cut_take(files[0], chosen, language, rooms, said).items():
            clips[line_id] = clip
            where[line_id] = (files[0].name, round(at, 3))
    else:
        if numbers:
            raise VoiceError("--lines picks the lines of one continuous take; files named by "
                             "their line ids say which lines they are")  # fmt: skip
        for line_id, f in _named(files, lines, defaults, practice).items():
            clip = trimmed(decode(f), rooms)
            if len(clip) < RATE // 10:
                raise VoiceError(f"{f}: no speech in it (silence, or too quiet)")
            clips[line_id] = clip
            where[line_id] = (f.name, None)
    path = (folder or voices_dir()) / name
    voice = Folder.open(path) if (path / "voice.json").is_file() else Folder(path, name, language, {})
    if voice.language != language:
        raise VoiceError(f"{name} speaks {voice.language}; {practice} is in {language}")
    heard = room.measure(rooms, RATE)
    if heard is not None:
        if heard.level > room.NOISY and said:
            said(f"warning: the room's noise floor is {heard.level:.0f} dBFS, above "
                 f"{room.NOISY:.0f}: it will be heard under every pause (record somewhere "
                 "quieter, or away from a fan or a window)")  # fmt: skip
        if voice.room is None or heard.seconds >= min(voice.room.seconds, room.ENOUGH):
            voice.room = heard
    (path / "clips").mkdir(parents=True, exist_ok=True)
    again = [line_id for line_id in clips if line_id in voice.lines]
    replaced = []
    for line_id, clip in clips.items():
        # Named by their content, so voice.json, saved last, is the one moment the voice
        # changes: a clip it does not name yet is not heard, one it names is never rewritten.
        tmp = path / "clips" / f".{line_id}.{os.getpid()}.part"
        write_wav(tmp, clip)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        name_of = f"clips/{line_id}-{digest[:12]}.wav"
        os.replace(tmp, path / name_of)
        old = voice.lines.get(line_id, {}).get("clip")
        if old and old != name_of:
            replaced.append(path / old)
        voice.lines[line_id] = {
            "text": lines[line_id].text, "clip": name_of, "sha256": digest,
            "take": where[line_id][0], "seconds": round(len(clip) / RATE, 3),
        }  # fmt: skip
        if where[line_id][1] is not None:
            voice.lines[line_id]["at"] = where[line_id][1]
    voice.save()
    for old_clip in replaced:
        old_clip.unlink(missing_ok=True)
    return voice, [i for i in clips if i not in again], again


def _named(files: list[Path], lines: dict, defaults: dict, practice: str) -> dict[str, Path]:
    """Return the file of each line id, from files named by the ids."""
    chosen: dict[str, Path] = {}
    for f in files:
        ids = [i for i in dict.fromkeys(_ID.findall(f.stem.lower())) if i in lines]
        if not ids:
            raise VoiceError(f"{f}: its name holds no line id of {practice} (name each file by "
                             "the id `calmcast lines` prints, like 3f9a2c.m4a; one continuous "
                             "take is imported alone)")  # fmt: skip
        if len(ids) > 1:
            raise VoiceError(f"{f}: its name holds two line ids, {ids[0]} and {ids[1]}: one "
                             "file a line")  # fmt: skip
        found = ids[0]
        if found in chosen:
            raise VoiceError(f"{f}: line {found} is also in {chosen[found]}")
        if any(not defaults.get(name) for name in lines[found].holds):
            raise VoiceError(f"{f}: line {found} holds the listener's "
                             f"{', '.join(lines[found].holds)}, which the fallback voice says: "
                             "leave it unread")  # fmt: skip
        chosen[found] = f
    return chosen


def _cut_take(path: Path, chosen: list, language: str, rooms: list[np.ndarray],
              said: Callable[[str], None] | None) -> dict[str, tuple[np.ndarray, float]]:  # fmt: skip
    """Return each line's clip cut from the continuous take at `path`, and where it began."""
    from .take import HOP, Expected, Take, cut, pieces

    texts = [line.text for _, line in chosen]
    expected = [
        Expected(n, line.id, line.text, seconds, bool(line.holds), marks)
        for (n, line), (seconds, marks) in zip(chosen, expected_readings(texts, language),
                                               strict=True)
    ]  # fmt: skip
    with Take.read(path, RATE) as take:
        cuts = cut(take, expected)
        sounds = pieces(take.levels)
        out: dict[str, tuple[np.ndarray, float]] = {}
        for c in cuts:
            # The margin, but never into another sound (a breath left out stays out).
            before = max((p.end for p in sounds if p.end <= c.start + HOP / 2), default=0.0)
            after = min((p.start for p in sounds if p.start >= c.end - HOP / 2), default=take.seconds)
            a = max(c.start - MARGIN, (before + c.start) / 2)
            b = min(c.end + MARGIN, (c.end + after) / 2)
            clip = faded(take.samples(a, b))
            if len(clip) > MAX_CLIP * RATE:
                raise VoiceError(f"{path}: line {c.line.number} would last {len(clip) / RATE:.0f} s,"
                                 f" longer than the {MAX_CLIP:g} s a line may")  # fmt: skip
            out[c.line.id] = (pcm16(clip), a)
        rooms.extend(room.gaps(take, sounds))
    return out


def expected_readings(texts: list[str], language: str) -> list[tuple[float, tuple[float, ...]]]:
    """Return how long each text speaks in calmcast's synthetic voice of `language`, and
    where it pauses (shares of that time); the speech is cached."""
    from . import MEDITATION_WPM, espeak_voice_name, open_voice
    from .cache import SpeechCache
    from .take import spoken

    voice = open_voice(espeak_voice_name(language), MEDITATION_WPM)
    cache = SpeechCache()
    cache.check()
    out = []
    for text in texts:
        key = cache.key(voice.cache_key(), text)
        got = cache.get(key)
        if got is None:
            got = (cache.put(key, voice.synthesize(text), voice.sample_rate), voice.sample_rate)
        samples, rate = got
        out.append(spoken(samples, rate))
    return out


def remove(name: str, folder: Path | None = None) -> Path:
    path = (folder or voices_dir()) / check_name(name)
    if not (path / "voice.json").is_file():
        raise VoiceError(f"no recorded voice {name!r} in {path.parent}")
    shutil.rmtree(path)
    return path
