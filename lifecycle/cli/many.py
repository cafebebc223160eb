"""Commands over many images: one worker pool (``--jobs``), results in the order given."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from lifecycle.cli.failure import exit_code, report_error
from lifecycle.cli.progress import ProgressBar
from lifecycle.errors import ExitCode, VerificationError
from lifecycle.integrity.hashing import ordered_map

jobs_option = click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=None,
    help="Images read at once, each on its own thread (default: every core).")  # fmt: skip

Progress = Callable[[int], None]
R = TypeVar("R")


def verify_each(
    images: Sequence[Path],
    verify_one: Callable[[Path, Progress], R],
    show: Callable[[Any, Path], None],
    jobs: int | None,
) -> None:
    """Verify every image on the pool; show each result in order; exit with the worst status.

    A verification that fails is shown like a single image's (its per-signature results); an
    image that cannot be read gets its one error line and does not stop the others. A bug
    (an unexpected exception) stops the run, as for a single image.
    """
    lock = threading.Lock()
    with ProgressBar(sum(p.stat().st_size for p in images), "hashing") as bar:
        def progress(n: int) -> None:
            with lock:
                bar(n)

        def run(image: Path) -> tuple[Path, R | None, Exception | None]:
            try:
                return image, verify_one(image, progress), None
            except Exception as exc:  # judged below, in the order of the images
                if exit_code(exc) is ExitCode.BUG:
                    raise
                return image, None, exc

        worst, verified = ExitCode.OK, 0
        for image, result, error in ordered_map(run, images, jobs):
            if error is None:
                show(result, image)
                verified += 1
                continue
            if isinstance(error, VerificationError) and error.result is not None:
                show(error.result, image)
            code = report_error(error)
            worst = max(worst, code, key=lambda c: (c is ExitCode.BAD_INPUT, c is not ExitCode.OK))
    click.echo(f"{verified} of {len(images)} images verified", err=True)
    if worst is not ExitCode.OK:
        raise click.exceptions.Exit(worst.value)
