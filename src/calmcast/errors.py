"""The one error hierarchy: every failure a user can cause is a CalmcastError.

An error says where it happened as fields (`file`, `line`, `column`, each None when unknown)
as well as in its message, so a program can point at the place without parsing text:

    try:
        calmcast.plan("my-practice.j2")
    except calmcast.ScriptError as e:
        print(e.file, e.line, e.column, e.reason)

A calmcast error exits the CLI with status 1 (what it was given cannot be made); click's own
usage errors (an unknown option, a value out of its range) with 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import click

E = TypeVar("E", bound="CalmcastError")


class CalmcastError(click.ClickException):
    """A problem the user can fix, reported as one line without a traceback.

    `message` is the whole line; `reason` is what is wrong without the place; `problems`
    holds every problem when several were found at once, else only the reason.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        reason: str | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason if reason is not None else message
        #: Every problem found, when several were gathered at once (a course manifest's).
        self.problems = tuple(problems) or (self.reason,)

    @classmethod
    def at(
        cls: type[E], file: str, line: int | None, column: int | None, reason: str,
        problems: Sequence[str] = (),
    ) -> E:
        """Return the error `reason` at a place, its message led by file:line:column."""
        where = file + (f":{line}" if line else "") + (f":{column}" if line and column else "")
        return cls(f"{where}: {reason}", file=file, line=line or None,
                   column=(column or None) if line else None, reason=reason,
                   problems=problems)  # fmt: skip

    def format_message(self) -> str:
        return self.message

    def __reduce__(self):  # errors cross process boundaries in a parallel build
        fields = ("file", "line", "column", "reason", "problems")
        return (_rebuild, (type(self), self.message, {f: getattr(self, f) for f in fields}))


def _rebuild(cls, message, fields):
    return cls(message, **fields)


class ScriptError(CalmcastError):
    """A practice script that cannot be read, rendered or parsed."""


class LengthError(CalmcastError):
    """A length the practice cannot reach."""


class VoiceError(CalmcastError):
    """A voice that is unknown, missing or failed to speak."""


class AudioError(CalmcastError):
    """An ambience or bell file that is missing, empty or cannot be decoded."""


class OutputError(CalmcastError):
    """An output that cannot be written."""


class ConfigError(CalmcastError):
    """A course manifest or a setting's value that is invalid."""
