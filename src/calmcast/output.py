"""Where a finished file goes: one writer for `render` and `build`.

A render writes its file beside the destination under a name a later run recognises, and
moves it into place only when it is whole. The destination is checked before any work: it
must be a regular file or nothing (not a folder, a device, a FIFO), and never one of the
render's own inputs. A symlink is written through (the link stays and its target is
replaced), an existing file keeps its permissions, and `-` streams the file to stdout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import OutputError

#: The containers calmcast writes, by suffix.
SUFFIXES = (".mp3",)
STDOUT = "-"
_PART = re.compile(r"^\.(?P<stem>.+)\.calmcast-(?P<pid>\d+)-[0-9a-z_]+\.part(?P<suffix>\.\w+)$")


class Destination:
    """A checked output path, and the temporary file that becomes it."""

    def __init__(self, path: str | Path, inputs: Iterable[str | Path | None] = (), *,
                 suffixes: tuple[str, ...] = SUFFIXES, what: str = "MP3") -> None:  # fmt: skip
        self.path = Path(path)
        self.stdout = str(path) == STDOUT
        self.tmp: Path | None = None
        if self.stdout:
            self.real = self.path
            self.folder = Path(tempfile.gettempdir())
            self.suffix = ".mp3"
            return
        self.suffix = self.path.suffix.lower()
        if self.suffix not in suffixes:
            shown = f"'{self.path.suffix}'" if self.path.suffix else "no suffix"
            raise OutputError(
                f"{self.path}: calmcast writes {what} ({', '.join(suffixes)}), and this name "
                f"has {shown}; name it {self.path.with_suffix(suffixes[0]).name}"
            )
        self.real = _resolve(self.path)
        self.folder = self.real.parent
        self._check(inputs)

    def _check(self, inputs: Iterable[str | Path | None]) -> None:
        path, real = self.path, self.real
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            mode = real.stat().st_mode
            if stat.S_ISDIR(mode):
                raise OutputError(
                    f"{path}: is a folder; give a file name like {path / 'session.mp3'}"
                )
            if not stat.S_ISREG(mode):
                kind = _kind(mode)
                raise OutputError(f"{path}: is {kind}, not a file; calmcast writes only files")
        if not self.folder.is_dir():
            raise OutputError(f"{path}: the folder {self.folder} does not exist")
        if not os.access(self.folder, os.W_OK):
            raise OutputError(f"{path}: the folder {self.folder} is not writable")
        self.check_inputs(inputs)

    def check_inputs(self, inputs: Iterable[str | Path | None]) -> None:
        """Raise OutputError if the destination is one of these files."""
        if self.stdout:
            return
        for item in inputs:
            if item is not None and _same(Path(item), self.real):
                raise OutputError(
                    f"{self.path}: is one of this render's inputs ({item}); write elsewhere"
                )

    def create(self) -> Path:
        """Make the temporary file (private, empty) and return its path.

        Its name is known before it exists: an interrupt can come as the file is made (the
        mask on signals holds only this thread, and another may take the signal for the
        process), and `discard` must then know what to remove.
        """
        self.sweep()
        name = f".{self.real.stem}.calmcast-{os.getpid()}-"
        with held_signals():
            for _ in range(100):
                self.tmp = self.folder / f"{name}{secrets.token_hex(4)}.part{self.suffix}"
                try:
                    os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                    return self.tmp
                except FileExistsError:
                    continue
                except OSError as e:
                    self.tmp = None
                    raise OutputError(
                        f"{self.path}: cannot write in {self.folder}: {describe(e)}"
                    ) from e
        self.tmp = None
        raise OutputError(f"{self.path}: cannot find a free temporary name in {self.folder}")

    def sweep(self) -> None:
        """Remove this destination's part files left by runs that were killed."""
        if not self.stdout:
            _sweep(self.folder, lambda stem, pid: stem == self.real.stem)

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)

    def commit(self) -> None:
        """Move the finished temporary file into place (or copy it to stdout)."""
        tmp = self.tmp
        assert tmp is not None, "commit() after the temporary file was made"
        try:
            if self.stdout:
                with open(tmp, "rb") as f:
                    shutil.copyfileobj(f, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                tmp.unlink(missing_ok=True)
                return
            try:
                mode = stat.S_IMODE(self.real.stat().st_mode)  # keep what the file had
            except (FileNotFoundError, NotADirectoryError):
                mode = 0o666 & ~_umask()
            os.chmod(tmp, mode)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.real)
        except OSError as e:
            self.discard()
            raise OutputError(f"{self.path}: {describe(e)}") from e
        except BaseException:
            self.discard()
            raise


def describe(e: OSError) -> str:
    """Return an OSError as a short phrase, saying plainly when the disk is full."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if e.errno == errno.EROFS:
        return "the file system is read-only"
    return e.strerror or str(e)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then act on any that came.

    Python runs its signal handlers in the main thread, between two steps of its code: while
    the block runs, a handler that only notes the signal stands in (masking the signal
    would hold it for this thread alone, and another thread may take it for the process).
    Outside the main thread the block runs as it is.
    """
    import threading

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    kinds = [getattr(signal, n) for n in names if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    before = {k: signal.signal(k, lambda signum, _frame: came.append(signum)) for k in kinds}
    try:
        yield
    finally:
        for k, handler in before.items():
            signal.signal(k, handler)
        for signum in dict.fromkeys(came):
            handler = before[signum]
            if callable(handler):
                handler(signum, None)  # Ctrl-C: KeyboardInterrupt, here
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def _resolve(path: Path) -> Path:
    """Return the path with every symlink followed (a dangling link: the file it names)."""
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise OutputError(f"{path}: cannot be resolved: {e}") from e


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b or (b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError):
        return False


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def sweep_parts(folder: str | Path, pids: set[int]) -> None:
    """Remove the part files in `folder` that the processes `pids`, now stopped, left."""
    _sweep(folder, lambda stem, pid: pid in pids)


def _sweep(folder: str | Path, which: Callable[[str, int], bool]) -> None:
    """Remove the part files in `folder` that `which(stem, pid)` picks, of processes gone."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _PART.match(entry.name)
            if m and which(m["stem"], int(m["pid"])) and not _alive(int(m["pid"])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_small(path: Path, data: str | bytes) -> bool:
    """Write a small file whole or not at all, only when its content changes; return whether.

    It goes beside its place first and is renamed over it, so a link there is replaced, never
    written through.
    """
    body = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.is_file() and not path.is_symlink() and path.read_bytes() == body:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(body)
        tmp.replace(path)
    except OSError as e:
        raise OutputError(f"{path}: {describe(e)}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return True
