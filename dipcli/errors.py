"""The one error every layer raises for the user, and the exit codes it maps to.

A :class:`Fail` carries a one-line message that says what is wrong and what to do, and the exit
code the CLI gives it. The task functions (:mod:`dipcli.api.tasks`) raise it too, so a script using
the Python API gets the same message the command line prints.
"""

from __future__ import annotations

OK, FAILURE, USAGE, INTERRUPTED, TERMINATED = 0, 1, 2, 130, 143


class Fail(Exception):
    """A one-line error for the user, with the exit code it maps to (2: usage, 1: failure)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


class ImageError(Exception):
    """An image could not be read or written; the message says why and what to do."""
