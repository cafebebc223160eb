"""Read an untrusted tar (plain or gzip) with hard limits checked before anything is allocated.

``tarfile`` reads a GNU long name or a pax header whole into memory, however large its header
says it is, and keeps every member it has seen: a 1.5 MB ``.tar.gz`` can hold a 1.5 GiB long
name or two million directory entries. This reader parses the ustar headers itself (POSIX.1-2001
``pax``, GNU ``L`` long names), counts every header, extended header and directory entry against
:class:`Limits`, and compares each declared size with what is left *before* reading it. The gzip
stream is decompressed a block at a time, so the decompressed bytes are bounded too.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lifecycle.files import KIB, MIB

BLOCK = 512
GZIP_MAGIC = b"\x1f\x8b"
REGULAR = (b"0", b"\0", b"7")
DIRECTORY = b"5"
PAX = b"x"
PAX_GLOBAL = b"g"
GNU_LONG_NAME = b"L"
GNU_LONG_LINK = b"K"
EXTENDED = (PAX, PAX_GLOBAL, GNU_LONG_NAME, GNU_LONG_LINK)


_HIGH_BIT = bytes(int(b > 127) for b in range(256))


@dataclass(frozen=True)
class Limits:
    entries: int = 10_000
    """Headers of any kind: files, directories, pax and long-name headers."""
    header_bytes: int = 1 * MIB
    """All extended headers (pax records, GNU long names) together."""
    extended_header: int = 64 * KIB
    """One pax header or GNU long name."""
    total_bytes: int = 32 * MIB
    """The whole decompressed stream: headers, data and padding."""
    name: int = 4 * KIB


class TarLimitError(ValueError):
    """The archive is malformed or breaks a limit: the message says which, in one line."""


@dataclass(frozen=True)
class Member:
    name: str
    kind: bytes
    data: bytes

    @property
    def is_file(self) -> bool:
        return self.kind in REGULAR

    @property
    def is_dir(self) -> bool:
        return self.kind == DIRECTORY


class _Stream:
    """A counted reader: never more than ``total_bytes`` of decompressed data."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        head = raw.read(2)
        raw.seek(0)
        self._file: BinaryIO | gzip.GzipFile = (
            gzip.GzipFile(fileobj=raw, mode="rb") if head == GZIP_MAGIC else raw)
        self.limit = self.left = limit

    def read(self, size: int, what: str) -> bytes:
        if size > self.left:
            raise TarLimitError(f"more than {self.limit >> 20} MiB once decompressed "
                                f"(at {what})")
        try:
            data = self._file.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise TarLimitError(f"corrupt compressed data ({exc})") from None
        if len(data) != size:
            raise TarLimitError(f"the archive ends inside {what}")
        self.left -= size
        return data

    def skip(self, size: int, what: str) -> None:
        while size > 0:
            size -= len(self.read(min(size, MIB), what))


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large values
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise TarLimitError(f"negative {what} in a tar header")
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarLimitError(f"bad {what} in a tar header") from None


def _check_header(block: bytes) -> None:
    stored = _number(block[148:156], "checksum")
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored == unsigned:
        return
    rest = block[:148] + block[156:]
    if stored != unsigned - 256 * sum(rest.translate(_HIGH_BIT)):  # old signed-char writers
        raise TarLimitError("not a tar archive (header checksum mismatch)")


def _text(raw: bytes, limits: Limits) -> str:
    if len(raw) > limits.name:
        raise TarLimitError(f"a member name is longer than {limits.name} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TarLimitError("a member name is not UTF-8") from None


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """``"%d %s=%s\\n"`` records (POSIX.1-2001); the length counts the whole record."""
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 20)
        if space < 0 or not data[pos:space].isdigit():
            raise TarLimitError("malformed pax header record")
        length = int(data[pos:space])
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1:end] != b"\n":
            raise TarLimitError("malformed pax header record")
        key, sep, value = data[space + 1:end - 1].partition(b"=")
        if not sep:
            raise TarLimitError("malformed pax header record")
        records[key] = value
        pos = end
    return records


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def members(raw: BinaryIO, limits: Limits = Limits()) -> Iterator[Member]:
    """Every member of the tar in ``raw``; data only for regular files (others carry ``b""``)."""
    stream = _Stream(raw, limits.total_bytes)
    entries = 0
    header_bytes = 0
    long_name: str | None = None
    pax: dict[bytes, bytes] = {}
    while True:
        block = stream.read(BLOCK, "a tar header")
        if block == bytes(BLOCK):
            return  # end-of-archive marker (what follows is padding)
        _check_header(block)
        entries += 1
        if entries > limits.entries:
            raise TarLimitError(f"more than {limits.entries} tar entries")
        kind = block[156:157]
        size = _number(block[124:136], "size")
        if kind in EXTENDED:  # bounded before a byte of it is read
            if size > limits.extended_header:
                raise TarLimitError(f"a tar extended header of {size} bytes (limit "
                                    f"{limits.extended_header})")
            header_bytes += size
            if header_bytes > limits.header_bytes:
                raise TarLimitError(f"tar extended headers over {limits.header_bytes} bytes")
            data = stream.read(_padded(size), "an extended header")[:size]
            if kind == GNU_LONG_NAME:
                long_name = _text(data.split(b"\0", 1)[0], limits)
            elif kind == PAX:
                pax = _pax_records(data)
            continue
        if b"size" in pax:
            if not pax[b"size"].isdigit():
                raise TarLimitError("bad size in a pax header")
            size = int(pax[b"size"])
        name = _text(block[0:100].split(b"\0", 1)[0], limits)
        prefix = block[345:500].split(b"\0", 1)[0] if block[257:262] == b"ustar" else b""
        if prefix:
            name = f"{_text(prefix, limits)}/{name}"
        if long_name is not None:
            name = long_name
        if b"path" in pax:
            name = _text(pax[b"path"], limits)
        long_name, pax = None, {}
        if kind in REGULAR:
            data = stream.read(_padded(size), f"the member {name[:200]!r}")[:size]
        else:
            stream.skip(_padded(size) if kind != DIRECTORY else 0, f"the member {name[:200]!r}")
            data = b""
        yield Member(name, kind, data)
