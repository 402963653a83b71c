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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VoiceError
from . import VoiceInfo

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
        except FileNotFoundError:
            raise VoiceError(f"{path}: no recorded voice here (no voice.json)") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise VoiceError(f"{where}: damaged, not as calmcast wrote it ({e}); import the "
                             "lines again, or remove the voice") from None  # fmt: skip
        # The folder's name is the voice's: a copy under another name is that voice.
        return cls(path, path.name, language, lines)

    def clip(self, line_id: str) -> Path | None:
        """Return the clip of a line, if the voice has it and it is there."""
        entry = self.lines.get(line_id)
        path = self.path / entry["clip"] if entry else None
        return path if path is not None and path.is_file() else None

    def save(self) -> None:
        from ..output import write_small

        data = {"format": FORMAT, "name": self.name, "language": self.language,
                "lines": dict(sorted(self.lines.items()))}  # fmt: skip
        write_small(self.path / "voice.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    def digest(self) -> str:
        """Return a hash of every clip: a retake changes it."""
        blob = json.dumps(sorted((k, v["sha256"]) for k, v in self.lines.items()))
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

    def __init__(self, folder: Folder) -> None:
        self.folder = folder
        self.name = f"recorded:{folder.name}"
        self.language = folder.language
        self._digest = folder.digest()

    def cache_key(self) -> str:
        return f"recorded|{self.folder.name}|{self._digest}"

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


def trimmed(samples: np.ndarray) -> np.ndarray:
    """Return a clip from a little before its first sound to a little after its last, faded."""
    hop = RATE // 100
    frames = len(samples) // hop
    if frames == 0:
        return samples[:0]
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1) + 1e-20)
    if rms.max() < SILENT:
        return samples[:0]  # nothing louder than -60 dBFS: no speech
    # Sound is what stands out: from the room (its quietest frames) by ABOVE_ROOM, and
    # within TRIM_BELOW_PEAK of the loudest, but never needing to be nearer it than 25 dB.
    room = float(np.percentile(rms, 5)) * 10 ** (ABOVE_ROOM / 20)
    floor = min(max(rms.max() * 10 ** (-TRIM_BELOW_PEAK / 20), room), rms.max() * 10 ** (-25 / 20))
    loud = np.flatnonzero(rms > floor)
    margin = int(MARGIN * RATE)
    a = max(int(loud[0]) * hop - margin, 0)
    b = min((int(loud[-1]) + 1) * hop + margin, len(samples))
    clip = samples[a:b].copy()
    n = min(int(FADE * RATE), len(clip) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        clip[:n] *= ramp
        clip[-n:] *= ramp[::-1]
    return clip


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
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
                 folder: Path | None = None) -> tuple[Folder, list[str], list[str]]:  # fmt: skip
    """Add the clips in `files`, each named by a line id of `practice`, to the voice `name`.

    Every file is checked and read before anything is written. Return the folder, the ids
    added and the ids recorded again (a retake replaces the clip).
    """
    from ..lines import script_lines
    from ..practice import load_practice

    check_name(name)
    lines = {line.id: line for line in script_lines(practice, values)}
    loaded = load_practice(practice)
    language = loaded.language
    defaults = {v.name: v.default for v in loaded.variables}
    chosen: dict[str, Path] = {}
    for f in files:
        ids = [i for i in dict.fromkeys(_ID.findall(f.stem.lower())) if i in lines]
        if not ids:
            raise VoiceError(f"{f}: its name holds no line id of {practice} (name each file by "
                             "the id `calmcast lines` prints, like 3f9a2c.m4a)")  # fmt: skip
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
    clips = {}
    for line_id, f in chosen.items():
        clip = trimmed(decode(f))
        if len(clip) < RATE // 10:
            raise VoiceError(f"{f}: no speech in it (silence, or too quiet)")
        clips[line_id] = clip
    path = (folder or voices_dir()) / name
    voice = Folder.open(path) if (path / "voice.json").is_file() else Folder(path, name, language, {})
    if voice.language != language:
        raise VoiceError(f"{name} speaks {voice.language}; {practice} is in {language}")
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
            "take": chosen[line_id].name, "seconds": round(len(clip) / RATE, 3),
        }  # fmt: skip
    voice.save()
    for old_clip in replaced:
        old_clip.unlink(missing_ok=True)
    return voice, [i for i in clips if i not in again], again


def remove(name: str, folder: Path | None = None) -> Path:
    path = (folder or voices_dir()) / check_name(name)
    if not (path / "voice.json").is_file():
        raise VoiceError(f"no recorded voice {name!r} in {path.parent}")
    shutil.rmtree(path)
    return path
