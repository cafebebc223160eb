"""The hashing engine: each object's bytes read once, independent objects on every core.

A *lane* is a sequence of objects whose bytes must be fed in order: one object with its own
hashers, or all the objects of a group whose digest runs over their concatenation (the legacy
format). Lanes share nothing, so they run in parallel threads: ``hashlib`` releases the GIL
while it hashes a large buffer, and the views handed out by :meth:`SifImage.stream` are mapped
pages, so a thread spends its time inside SHA-256. An image with two large partitions then
verifies in about the time of the larger one on two cores. The largest lanes start first.

Across images, :func:`ordered_map` is the worker pool of ``verify IMAGE...`` and of ``scan``
(``--jobs``): threads too, for the same reason, with a bounded number of images in flight.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

from lifecycle.sif.format import Descriptor
from lifecycle.sif.image import SifImage

T = TypeVar("T")
R = TypeVar("R")

PARALLEL_MIN_BYTES = 8 * 1024 * 1024
"""A lane smaller than this is not worth a thread of its own (start-up costs more than it saves)."""


class Feed(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


class Lane:
    """Objects hashed in this order, each with the hashers its bytes go to."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[tuple[Descriptor, list[Feed]]] = []

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
        import threading  # with the pool below: one small image never starts a thread

        lock = threading.Lock()

        def report(n: int) -> None:
            with lock:
                progress(n)

    with image.bulk_read():
        if workers <= 1:
            for lane in ordered:
                _run(image, lane, report)
            return
        from concurrent.futures import ThreadPoolExecutor  # only when there is parallel work

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


def ordered_map(fn: Callable[[T], R], items: Sequence[T], jobs: int | None = None) -> Iterator[R]:
    """``fn`` over ``items`` on up to ``jobs`` threads (default every core), results in order.

    For many images: each one's hashing runs outside the GIL, so N images on C cores approach C
    times the single-stream rate. At most two items per thread are in flight, so memory stays
    that of ``2 * jobs`` images being read (one mapped window each), whatever the fleet's size.
    An exception of ``fn`` is raised when its item's turn comes; pending items are dropped.
    """
    workers = min(jobs or default_threads(), len(items))
    if workers <= 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sif-image")
    try:
        pending = iter(items)
        window: deque[Future[R]] = deque(pool.submit(fn, item)
                                         for item in itertools.islice(pending, 2 * workers))
        while window:
            result = window.popleft().result()
            window.extend(pool.submit(fn, item) for item in itertools.islice(pending, 1))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
