"""User-facing errors: one message that names the problem and one hint that names the fix.

Every mistake a user can make (a bad spec key, a missing column, an unreadable file, ...) is raised
as a :class:`ModelcycleError`. Entry points (the CLI, the HTTP server) turn it into one clean line
instead of a traceback; anything else is an internal error and is logged with its traceback.
"""

from __future__ import annotations


class ModelcycleError(Exception):
    """An error the user can fix; ``hint`` says how.

    Args:
        message: What went wrong, naming the thing (file, column, key, value).
        hint: What to do about it, as a short imperative sentence.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(ModelcycleError):
    """A setting, environment variable or project-spec key is wrong."""


class DataError(ModelcycleError):
    """A dataset cannot be read or does not have the shape the project needs."""


class ProjectError(ModelcycleError):
    """The project folder is missing, incomplete, or would be overwritten."""


def plural(count: int, noun: str) -> str:
    """``"1 value"``, ``"3 values"``: a count with its noun, for messages."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"
