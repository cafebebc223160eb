"""Pieces shared by commands: passphrases, progress display, option types."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import TracebackType

import click

from lifecycle.errors import KeyMaterialError
from lifecycle.integrity.keys import PassphraseSource

PASSPHRASE_ENV = "SIF_LIFECYCLE_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)

passphrase_file_option = click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File whose first line is the key passphrase (else ${PASSPHRASE_ENV}, else a prompt).",
)


def passphrase_source(passphrase_file: Path | None) -> PassphraseSource:
    """Environment, then file, then an interactive prompt; never echoed or logged."""

    def source(path: str) -> bytes:
        if passphrase_file is not None:
            try:
                return passphrase_file.read_bytes().splitlines()[0]
            except (OSError, IndexError):
                raise KeyMaterialError("passphrase file is empty or unreadable",
                                       path=passphrase_file) from None
        env = os.environ.get(PASSPHRASE_ENV)
        if env is not None:
            return env.encode()
        if sys.stdin.isatty():
            return str(click.prompt(f"Passphrase for {path}", hide_input=True)).encode()
        raise KeyMaterialError(
            "key is encrypted",
            path=path,
            hint=f"set {PASSPHRASE_ENV} or pass --passphrase-file",
        )

    return source


class ProgressBar:
    """A bar on stderr when it is a terminal and the work has already taken over a second."""

    def __init__(self, total: int, label: str, *, delay: float = 1.0) -> None:
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self.delay = delay
        self.enabled = sys.stderr.isatty()
        self.shown = False
        self.last_draw = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.delay or now - self.last_draw < 0.1:
            return
        self.last_draw = now
        self.shown = True
        fraction = min(self.done / self.total, 1.0)
        width = 30
        filled = int(fraction * width)
        rate = self.done / max(now - self.started, 1e-9) / 2**20
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{fraction:6.1%} {rate:7.0f} MiB/s"
        )
        sys.stderr.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
