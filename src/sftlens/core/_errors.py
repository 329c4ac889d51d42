"""Errors that end a command with one line and exit code 2.

Every error a user can fix (a missing file, a malformed line, an unknown key) is raised as a
`SftlensError` whose message names the thing (file and line, key and allowed values) and the fix.
The CLI prints ``error: <message>`` and exits with `EXIT_USAGE`; no traceback.
"""

from __future__ import annotations

EXIT_USAGE = 2


class SftlensError(Exception):
    """A problem the user can fix; its message is one line naming the thing and the fix."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would read like a traceback.
        super().__init__(" ".join(str(message).split()))


class ConfigError(SftlensError):
    """A config or spec is invalid: unknown key, bad value, contradiction."""


class DataError(SftlensError):
    """An input file is missing or malformed (names the file and line)."""


class SftlensWarning(UserWarning):
    """Something the user should know but need not fix (a file smaller than asked for); the
    CLI prints it as one ``warning: ...`` line."""


def warn(message: str) -> None:
    """Issue a `SftlensWarning` (one line) from library code."""
    import warnings

    warnings.warn(" ".join(str(message).split()), SftlensWarning, stacklevel=2)
