"""Exceptions raised by phycrnet.

Every exception derived from :class:`PhycrnetError` carries a one-line, user-facing
message; the command line prints it (prefixed with ``error:``) and exits non-zero
without a traceback.
"""

from __future__ import annotations

import time


class PhycrnetError(Exception):
    """Base class of all errors meant for the user."""

    exit_code: int = 1


class SpecError(PhycrnetError):
    """The problem specification is invalid (exit code 2)."""

    exit_code = 2


class OptionsError(PhycrnetError):
    """A command-line or API option is invalid (exit code 2)."""

    exit_code = 2


class DataError(PhycrnetError):
    """An input data file (observations, solution file) is invalid (exit code 2)."""

    exit_code = 2


class DivergenceError(PhycrnetError):
    """Training diverged (NaN or exploding loss); no result is written (exit code 3)."""

    exit_code = 3


class TimeLimitError(PhycrnetError):
    """A solver did not finish within the time it was given; no result is written (exit code 4)."""

    exit_code = 4


def check_deadline(deadline: float | None, what: str) -> None:
    """Raise a :class:`TimeLimitError` saying ``what`` was done if ``time.perf_counter()``
    is past ``deadline`` (``None``: no limit)."""
    if deadline is not None and time.perf_counter() > deadline:
        raise TimeLimitError(what)


class PhycrnetWarning(UserWarning):
    """Advice on a run that goes ahead (the command line prints it as ``warning: ...``)."""
