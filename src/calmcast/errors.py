"""The one error hierarchy: every failure a user can cause is a CalmcastError.

A calmcast error exits with status 1 (what it was given cannot be made); click's own usage
errors (an unknown option, a value out of its range) with 2. The message says which kind.
"""

from __future__ import annotations

import click


class CalmcastError(click.ClickException):
    """A problem the user can fix, reported as one line without a traceback."""

    exit_code = 1

    def format_message(self) -> str:
        return self.message


class ScriptError(CalmcastError):
    """A practice script that cannot be read, rendered or parsed."""

    exit_code = 1


class LengthError(CalmcastError):
    """A length the practice cannot reach."""

    exit_code = 1


class VoiceError(CalmcastError):
    """A voice that is unknown, missing or failed to speak."""

    exit_code = 1


class AudioError(CalmcastError):
    """An ambience or bell file that is missing, empty or cannot be decoded."""

    exit_code = 1


class OutputError(CalmcastError):
    """An output that cannot be written."""

    exit_code = 1


class ConfigError(CalmcastError):
    """A course manifest or option value that is invalid."""

    exit_code = 1
