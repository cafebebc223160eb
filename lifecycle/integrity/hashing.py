"""The hashing engine: each object's bytes read once, independent objects on every core.

A *lane* is a sequence of objects whose bytes must be fed in order: one object with its own
hashers, or all the objects of a group whose digest runs over their concatenation (the legacy
format). Lanes share nothing, so they run in parallel threads: ``hashlib`` releases the GIL
while it hashes a large buffer, and the views handed out by :meth:`SifImage.stream` are mapped
pages, so a thread spends its time inside SHA-256. An image with two large partitions then
verifies in about the time of the larger one on two cores. The largest lanes start first.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from lifecycle.sif.format import Descriptor
from lifecycle.sif.image import SifImage

PARALLEL_MIN_BYTES = 8 * 1024 * 1024
"""A lane smaller than this is not worth a thread of its own (start-up costs more than it saves)."""


class Feed(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


@dataclass
class Lane:
    """Objects hashed in this order, each with the hashers its bytes go to."""

    parts: list[tuple[Descriptor, list[Feed]]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(desc.size for desc, _ in self.parts)


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def run_lanes(
    image: SifImage,
    lanes: Sequence[Lane],
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> None:
    """Feed every lane's objects to their hashers; lanes in parallel when that can help.

    The digests do not depend on ``threads``: each hasher sees exactly the bytes, in the order,
    of a serial run. ``progress`` is called with byte counts, from one thread at a time.
    """
    ordered = sorted((lane for lane in lanes if lane.parts), key=lambda lane: -lane.size)
    workers = min(threads or default_threads(), sum(lane.size >= PARALLEL_MIN_BYTES for lane in ordered))
    report = progress
    if progress is not None and workers > 1:
        lock = threading.Lock()

        def report(n: int) -> None:
            with lock:
                progress(n)

    with image.bulk_read():
        if workers <= 1:
            for lane in ordered:
                _run(image, lane, report)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sif-hash") as pool:
            futures = [pool.submit(_run, image, lane, report) for lane in ordered]
            for future in futures:
                future.result()  # the first error, after every lane stopped


def _run(image: SifImage, lane: Lane, progress: Callable[[int], None] | None) -> None:
    for desc, feeds in lane.parts:
        for chunk in image.stream(desc):
            for feed in feeds:
                feed.update(chunk)
            if progress is not None:
                progress(len(chunk))
