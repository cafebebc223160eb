"""The one way a user-named file is opened and read: never blocks, never reads without a bound.

A FIFO, device or socket named as a key, certificate, config or image would block ``open`` or
``read`` forever (or stream without end), and a huge file would be read whole into memory. Files
are opened with ``O_NONBLOCK``, checked to be regular on the opened descriptor (no race with a
rename), and read up to ``limit`` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lifecycle.errors import KeyMaterialError, LifecycleError

KIB = 1024
MIB = 1024 * KIB
KEY_LIMIT = 4 * MIB
"""Keys, keyrings, passphrase files, signatures: far larger than any real one."""
DOCUMENT_LIMIT = 64 * MIB
"""Certificates, CRLs, OCSP responses, log entries and proofs, configs (a CRL can be big)."""

SPECIAL_KINDS = {
    stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory",
}  # fmt: skip


def special_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO", ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return SPECIAL_KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(
    path: str | Path, what: str, *, writable: bool = False,
    error: type[LifecycleError] = LifecycleError,
) -> int:  # fmt: skip
    """An fd on ``path`` if it is a regular file; ``error`` (one line, naming it) otherwise.

    The returned descriptor is blocking again (``O_NONBLOCK`` only guards the ``open``).
    """
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise error(f"cannot open {what}: {exc.strerror}", path=path) from None
    try:
        kind = special_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise error(f"{what} is {kind}, not a regular file", path=path,
                        hint=f"name the {what} file itself")  # fmt: skip
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(
    path: str | Path, *, limit: int, what: str, error: type[LifecycleError] = LifecycleError
) -> bytes:
    """All of a regular file of at most ``limit`` bytes, or ``error`` saying why not.

    ``what`` names the file's role in messages ("key file", "CRL"). The bound holds even when
    the file grows while it is read: at most ``limit + 1`` bytes are ever read, 1 MiB at a time.
    """
    fd = open_regular(path, what, error=error)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise error(_too_large(what, size, limit), path=path)
        chunks, total = [], 0
        while chunk := os.read(fd, min(limit + 1 - total, MIB)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise error(_too_large(what, total, limit), path=path)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", path=path) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(
    path: str | Path, *, limit: int, what: str, error: type[LifecycleError] = LifecycleError
) -> str:
    """:func:`read_file` decoded as UTF-8 (a bad byte is a one-line ``error`` too)."""
    try:
        return read_file(path, limit=limit, what=what, error=error).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start})", path=path) from None


def read_key(path: str | Path) -> bytes:
    """A key, keyring or passphrase-protected key file (errors are :class:`KeyMaterialError`)."""
    return read_file(path, limit=KEY_LIMIT, what="key file", error=KeyMaterialError)


def read_document(path: str | Path) -> bytes:
    """A certificate, CRL, OCSP response, log entry, proof or extension file the user named."""
    return read_file(path, limit=DOCUMENT_LIMIT, what="file")


def _too_large(what: str, size: int, limit: int) -> str:
    return f"{what} is {size} bytes, more than the {limit} allowed"
