"""Errors a user can cause. Every message says what was wrong and what to do."""

from __future__ import annotations


class ChronokenError(Exception):
    """Base class for every error caused by user input; the CLI prints it and exits 2."""


class SeriesError(ChronokenError):
    """The series could not be loaded or is unfit for the requested analysis."""


class ArgsError(ChronokenError):
    """A tool argument is invalid."""


class ToolError(ChronokenError):
    """A tool cannot run on this series (too short, constant, too large, ...)."""


class RouterError(ChronokenError):
    """The router cannot run: empty prompt, missing or mismatched toolken store, bad backbone."""


class WriterError(ChronokenError):
    """A report writer failed (endpoint unreachable, bad answer)."""
