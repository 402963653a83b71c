"""What a course's folder holds of it: the records of each file built, and what is up to date.

Each file a build makes is recorded in `.calmcast/NAME.json` with the fingerprint of its
inputs and the hashes of what was written, so a build remakes only what changed and
`--check --stale` can say what would change without making anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .course import Checked, Course, check, fingerprint

#: The folder of records inside a course's output folder.
RECORDS = ".calmcast"
RECORD_VERSION = 2
#: The files beside each MP3, by suffix.
SIDECARS = (".vtt", ".srt", ".chapters.json", ".chapters.vtt")


def stale(course: Course, folder: str | Path) -> list[str]:
    """Return what a build would change in `folder`: missing or out-of-date files, by name."""
    from . import publish

    folder = Path(folder)
    _, _, records, fresh = look(course, folder)
    out = [t.file for t in course.tracks if t.file not in fresh]
    if out:
        return out + [f"{name} (written from the tracks)" for name in publish.NAMES]
    wanted = publish.contents(course, folder, {t.file: records[t.file] for t in course.tracks})
    for name, body in wanted.items():
        path = folder / name
        if not path.is_file() or path.read_bytes() != body:
            out.append(name)
    return out


def outputs(course: Course) -> list[str]:
    """Return every name a build writes in its folder, records aside."""
    from . import publish

    names = [*publish.NAMES]
    cover = publish.cover_name(course)
    if cover:
        names.append(cover)
    for t in course.tracks:
        names += [t.file, *(t.stem + suffix for suffix in SIDECARS)]
    return names


def check_folder(course: Course, folder: Path, found: dict[str, Checked]) -> None:
    """Refuse, before any work, a folder whose files a build must not write.

    A build writes only plain files inside its folder: never through a symbolic link (a
    shard's folder may come from elsewhere), never over a folder or a device, and never over
    one of the course's own inputs (a folder that is also the manifest's).
    """
    from . import sounds
    from .errors import OutputError

    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: not a folder; a course is built into a folder")
    inputs = {course.path.resolve()}
    if course.cover:
        inputs.add(course.cover.resolve())
    for t in course.tracks:
        inputs |= {Path(f).resolve() for f in found[t.file].sources}
        r = t.request
        for sound in (sounds.find(r.ambience, "ambience") if r.ambience else None,
                      sounds.bell_file(r.bell)):  # fmt: skip
            if sound is not None:
                inputs.add(sound.resolve())
        if t.tags.get("cover"):
            inputs.add(Path(t.tags["cover"]).resolve())
    for name in [RECORDS, *outputs(course)]:
        path = folder / name
        if path.is_symlink():
            raise OutputError(
                f"{path}: a symbolic link; a course build writes only plain files inside its "
                "folder (remove the link)"
            )
        if path.exists() and not (path.is_dir() if name == RECORDS else path.is_file()):
            raise OutputError(f"{path}: in the way: not a plain file")
        if path.resolve() in inputs:
            raise OutputError(
                f"{path}: is one of the course's own inputs; build into another folder"
            )


def look(course: Course, folder: Path, check_output: bool = False):
    """Check the course and see what `folder` holds of it.

    Return what checking found, each file's fingerprint, the folder's records, and the
    files that are whole and made from the same inputs.
    """
    found = check(course)
    if check_output:
        check_folder(course, folder, found)
    stamps = {t.file: fingerprint(course, t, found[t.file].sources) for t in course.tracks}
    records = read_records(folder)
    fresh = {
        t.file for t in course.tracks
        if up_to_date(folder, t.file, stamps[t.file], records.get(t.file))
    }  # fmt: skip
    return found, stamps, records, fresh


def read_records(folder: Path) -> dict[str, dict]:
    """Return the records of the files built in `folder`, by file name."""
    out: dict[str, dict] = {}
    place = folder / RECORDS
    if not place.is_dir():
        return out
    for path in sorted(place.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(record, dict) and record.get("version") == RECORD_VERSION
            and record.get("file") == path.stem
        ):  # fmt: skip
            out[record["file"]] = record
    return out


def up_to_date(folder: Path, file: str, stamp: str, record: dict | None) -> bool:
    """Return whether `file` and its sidecars are whole and made from the same inputs."""
    if not isinstance(record, dict) or record.get("build") != stamp:
        return False
    wanted = {file: record.get("sha256"), **(record.get("sidecars") or {})}
    for name, digest in wanted.items():
        path = folder / name
        if not path.is_file() or (name == file and path.stat().st_size != record.get("size")):
            return False
        if file_hash(path) != digest:  # damaged or changed since
            return False
    return True


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
