"""Hostile bundle archives, made cheaply: repeated data is written as concatenated gzip members
(RFC 1952 allows any number), so a 1.5 GiB stream costs one compressed MiB and a loop."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20
HUGE = 1536 * MIB


def _header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _write(path: Path, head: bytes, chunk: bytes, repeat: int, tail: bytes = b"") -> Path:
    packed = gzip.compress(chunk, compresslevel=9)
    with path.open("wb") as out:
        out.write(gzip.compress(head))
        for _ in range(repeat):
            out.write(packed)
        out.write(gzip.compress(tail))
    return path


def long_name(path: Path) -> Path:
    """One GNU long-name header declaring 1.5 GiB, followed by that many bytes."""
    return _write(path, _header("././@LongLink", tarfile.GNUTYPE_LONGNAME, HUGE)[:512],
                  b"a" * MIB, HUGE // MIB)


def pax_header(path: Path) -> Path:
    """A 1.5 MiB pax header: one ``comment`` record."""
    value = b"x" * (3 * MIB // 2)
    record = b" comment=" + value + b"\n"
    length = len(record) + len(str(len(record) + 8))
    record = str(length).encode() + record
    assert len(record) == length
    head = _header("PaxHeader/manifest.json", tarfile.XHDTYPE, len(record))[:512]
    padded = record + bytes(-len(record) % 512)
    return _write(path, head + padded, b"", 0)


def directories(path: Path, count: int = 2_000_000) -> Path:
    """``count`` directory entries (the same header repeated: 512 bytes each)."""
    block = _header("d/", tarfile.DIRTYPE, 0)
    per_chunk = 2048
    return _write(path, b"", block * per_chunk, count // per_chunk)


def deflate_bomb(path: Path) -> Path:
    """Honest headers, 1 MiB of zeros each, 1,536 members: 1.5 GiB from a few MB."""
    raw = io.BytesIO()
    zeros = bytes(MIB)
    packed_zeros = gzip.compress(zeros, compresslevel=9)
    for i in range(HUGE // MIB):
        raw.write(gzip.compress(_header(f"data/{i:05d}.bin", tarfile.REGTYPE, MIB)))
        raw.write(packed_zeros)
    path.write_bytes(raw.getvalue())
    return path


ARCHIVES: dict[str, Callable[[Path], Path]] = {
    "gnu-long-name-1.5GiB": long_name, "pax-header-1.5MiB": pax_header,
    "2M-directory-entries": directories, "deflate-bomb-1.5GiB": deflate_bomb,
}
