"""A progress bar for long reads, without click: the quick ``verify`` path shows it too."""

from __future__ import annotations

import sys
import time
from types import TracebackType


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
