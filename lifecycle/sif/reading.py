"""Reading an object's bytes at the speed of the page cache: mapped windows, no copies.

Hashing is the whole cost of a verification, and copying each byte out of the page cache into a
buffer (``read``/``preadv``) adds about a sixth to it. A window of the file mapped read-only is
handed to the hasher as it is: the kernel's pages, no copy. Windows are mapped and unmapped one
after the other, so the pages a reader holds (which count in its RSS) stay at one window per
reader, whatever the image size.

A mapping has one hazard a read does not: if another process truncates the file while it is
mapped, touching the missing pages kills the process (SIGBUS). So mapping is used only while a
shared ``flock`` is held on the file (:func:`shared_lock`) or by the writer that holds the
exclusive one: every writer of this package takes the exclusive lock first, and the only one that
shortens a file (``sif delete --compact``) therefore waits for the readers. When the shared lock
is not available at once (a writer is at work), or the file cannot be mapped, reading falls back
to ``preadv`` into one reused buffer: same bytes, a little slower.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from collections.abc import Callable, Iterator

WINDOW_SIZE = 16 * 1024 * 1024
"""Bytes mapped at a time per reader: large enough that mapping costs nothing measurable, small
enough that two readers stay far below the 100 MiB RSS budget."""
READ_CHUNK_SIZE = 4 * 1024 * 1024
"""Buffer of the ``preadv`` fallback."""

EndsEarly = Callable[[int], Exception]
"""Builds the error for an object whose bytes end at the given file position."""


@contextlib.contextmanager
def shared_lock(fd: int) -> Iterator[bool]:
    """Hold a shared ``flock`` on ``fd`` if it can be had at once; yields whether it is held."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def advise_sequential(fd: int, offset: int, size: int) -> None:
    """Tell the kernel the range will be read once, front to back (larger read-ahead)."""
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(fd, offset, size, os.POSIX_FADV_SEQUENTIAL)


def mapped_windows(fd: int, offset: int, size: int, ends_early: EndsEarly) -> Iterator[memoryview]:
    """``size`` bytes from ``offset`` as views of read-only mapped windows (no copy).

    Each view is valid until the next one is asked for. The caller guarantees that the file is
    not shortened meanwhile (see the module text).
    """
    file_size = os.fstat(fd).st_size
    if offset + size > file_size:
        raise ends_early(file_size)
    position, end = offset, offset + size
    while position < end:
        start = position - position % mmap.ALLOCATIONGRANULARITY
        length = min(WINDOW_SIZE, end - start)
        window = mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=start)
        try:
            with contextlib.suppress(OSError):  # advice only
                window.madvise(mmap.MADV_SEQUENTIAL)
            with memoryview(window) as view:
                piece = view[position - start :]
                try:
                    yield piece
                finally:
                    piece.release()
        finally:
            window.close()
        position = start + length


def copied_chunks(
    fd: int, offset: int, size: int, ends_early: EndsEarly, chunk_size: int = READ_CHUNK_SIZE
) -> Iterator[memoryview]:
    """``size`` bytes from ``offset`` read into one reused buffer (memory stays flat)."""
    buffer = bytearray(min(chunk_size, max(size, 1)))
    view = memoryview(buffer)
    position, remaining = offset, size
    while remaining:
        n = os.preadv(fd, [view[: min(remaining, len(buffer))]], position)
        if n <= 0:
            raise ends_early(position)
        yield view[:n]
        position += n
        remaining -= n
