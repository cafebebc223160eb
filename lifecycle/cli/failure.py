"""How a command that ended with an exception ends: one line on stderr and an exit status.

:func:`exit_code` is the one place that turns an exception into the exit status
(:class:`ExitCode`), for every command, and for the quick ``verify`` path (:mod:`lifecycle.cli.quick`)
too, which runs without click: click's exceptions are only looked for once click is loaded.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lifecycle.errors import ExitCode, LifecycleError

DEBUG_ENV = "SIF_LIFECYCLE_DEBUG"
"""Set to 1 to see the traceback of an unexpected error (a bug) instead of only its one line."""


def _click() -> Any:
    """click, when loaded: an exception cannot be click's before click is imported."""
    return sys.modules.get("click")


def err(line: str) -> None:
    """One line on stderr, flushed (as ``click.echo(..., err=True)`` writes it)."""
    print(line, file=sys.stderr, flush=True)


def exit_code(exc: BaseException) -> ExitCode:
    """The one mapping from an exception that ended a command to the exit status."""
    if isinstance(exc, LifecycleError):
        return exc.exit_code
    click = _click()
    if click is not None and isinstance(exc, click.UsageError | click.FileError):
        return ExitCode.BAD_INPUT
    if isinstance(exc, OSError) and exc.strerror:  # the environment refused: a port in use, a full disk
        return ExitCode.BAD_INPUT
    if click is not None and isinstance(exc, click.Abort):  # Ctrl-C, or end of input at a prompt
        return ExitCode.INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else ExitCode.BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if click is not None and isinstance(exc, click.ClickException):  # the demo's "the check failed"
        return ExitCode.CHECK_FAILED
    return ExitCode.BUG


def report_error(exc: BaseException) -> ExitCode:
    """Print one line on stderr for ``exc`` and return its exit status."""
    code = exit_code(exc)
    click = _click()
    if click is not None and isinstance(exc, click.ClickException):
        exc.show()
    elif isinstance(exc, KeyboardInterrupt) or (click is not None and isinstance(exc, click.Abort)):
        err("Aborted!")
    elif isinstance(exc, OSError) and code is ExitCode.BAD_INPUT:
        where = f"{exc.filename}: " if exc.filename else ""
        err(f"Error: {where}{exc.strerror} (the system refused; fix that and run again)")
    elif code is ExitCode.BUG:
        debug = bool(os.environ.get(DEBUG_ENV))
        if debug:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        hint = "report it" if debug else f"run again with {DEBUG_ENV}=1 for the traceback and report it"
        err(f"Error: internal error, a bug in sif-lifecycle: {type(exc).__name__}"
            f"{': ' + reason if reason else ''} ({hint})")
    else:  # a wrapped library message may span lines: the user still gets one
        err(f"Error: {' '.join(line.strip() for line in str(exc).splitlines() if line.strip())}")
    return code
