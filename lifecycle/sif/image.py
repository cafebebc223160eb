"""Open, validate, stream and change SIF images on disk.

Reading checks every size, offset and count against the file before it is used, so a truncated or
hostile file fails with :class:`SifFormatError` naming the field. Writing follows the reference's
arithmetic (spec 1.8-1.10) byte for byte, in an order chosen so that a crash after any single write
leaves an image that loads and still verifies with every key that verified it before:

1. new object data goes past the current end (nothing references it yet);
2. the new descriptor is written with ``Used = 0`` (still a free slot to every reader);
3. a single byte flips ``Used`` to 1 (a one-byte write cannot tear): the object now exists;
4. the header counters are rewritten (readers do not depend on them).

Over ~400 lines on purpose: reading, the layout checks and every writer share one view of the
descriptor table, and keeping them together is what keeps the crash-safe order auditable.
Bulk reads (hashing) hold a shared lock while they map the file (:mod:`lifecycle.sif.reading`).

Replacing an object is "add the new one, then free the old one" with the same one-byte flip, so
an envelope rewrite is never half-visible. Writers hold an exclusive ``flock`` on the file.

Readers accept any layout the reference reads, but writers only touch images whose header,
descriptor table and objects occupy disjoint bytes, with the table before the append point: a
table placed after the data (valid to read) would otherwise be overwritten by the next object,
losing every object and signature. Such layouts are refused before the first byte is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import time as _time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple, Protocol

from lifecycle.errors import ObjectNotFoundError, SifCapacityError, SifError, SifFormatError
from lifecycle.files import open_regular
from lifecycle.sif.format import (
    ARCH_CODES,
    DESCRIPTOR_SIZE,
    GROUP_FLAG,
    HEADER_SIZE,
    MAGIC,
    NAME_SIZE,
    PARTITION_ALIGNMENT,
    VERSION,
    ZERO_TIME,
    DataType,
    Descriptor,
    Header,
    pad,
)
from lifecycle.sif.reading import advise_sequential, copied_chunks, mapped_windows, shared_lock

CHUNK_SIZE = 4 * 1024 * 1024
USED_FIELD_OFFSET = 4
LOCK_TIMEOUT_SECONDS = 30.0
MAX_DESCRIPTORS = 16384
"""Far more slots than real images have (the reference default is 48). A larger table is refused
before it is read: a sparse hostile file could otherwise claim millions of slots, which costs
over a kilobyte of memory each and seconds of parsing, with almost nothing on disk."""

SIGNATURE_LIMIT = 16 * 1024 * 1024
"""Largest signature object read: a DSSE envelope with its chain, log and timestamp evidence,
or a PGP clear-signed message; a descriptor claiming more is refused, not allocated."""


class WriteSink(Protocol):
    """Where an image's bytes are written; tests substitute one that crashes mid-way."""

    def pwrite(self, data: bytes | memoryview, offset: int) -> None: ...

    def sync(self) -> None: ...


class FileSink:
    """Positional writes to an open file descriptor, each step made durable by ``sync``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def pwrite(self, data: bytes | memoryview, offset: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view = view[written:]
            offset += written

    def sync(self) -> None:
        os.fsync(self.fd)


class ObjectSpec(NamedTuple):
    """A new object: its bytes (or a file to copy them from) and descriptor fields."""

    data_type: int
    data: bytes | Path
    group: int = 1
    """Group number; 0 puts the object in no group (signatures)."""
    linked_raw: int = 0
    name: bytes = b""
    extra: bytes = bytes(384)
    alignment: int | None = None
    """Absolute-offset alignment; None = the reference default (4096 for partitions, else none)."""

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)


def now_seconds() -> int:
    return int(_time.time())


class SifImage:
    """A validated SIF image; open with :meth:`open` and use as a context manager."""

    def __init__(
        self,
        path: Path,
        handle: BinaryIO,
        header: Header,
        slots: list[Descriptor],
        file_size: int,
        writable: bool,
    ) -> None:
        self.path = path
        self._handle = handle
        self.header = header
        self.slots = slots
        self.file_size = file_size
        self.writable = writable
        self.sink: WriteSink = FileSink(handle.fileno())
        self._mappable = writable  # a writer holds the exclusive lock: nobody else shortens the file

    # ------------------------------------------------------------------ opening and validation

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False) -> SifImage:
        path = Path(path)
        fd = open_regular(path, "image", writable=writable, error=SifError)
        handle = os.fdopen(fd, "r+b" if writable else "rb")
        try:
            if writable:
                _lock(handle, path)
            header, slots, size = _load(handle, path)
        except BaseException:
            handle.close()
            raise
        return cls(path, handle, header, slots, size, writable)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SifImage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ queries

    @property
    def objects(self) -> list[Descriptor]:
        """In-use descriptors in slot order (the order the reference uses everywhere)."""
        return [d for d in self.slots if d.in_use]

    def object(self, object_id: int) -> Descriptor:
        for d in self.slots:
            if d.in_use and d.id == object_id:
                return d
        raise ObjectNotFoundError(f"no object with ID {object_id}", path=self.path)

    def groups(self) -> list[int]:
        """Distinct non-zero group numbers of in-use objects, ascending."""
        return sorted({d.group for d in self.objects if d.group})

    def group_objects(self, group: int) -> list[Descriptor]:
        """Every in-use object in ``group`` (signature objects that are members included)."""
        return [d for d in self.objects if d.group == group]

    def min_id(self, group_raw: int) -> int:
        """Smallest ID among in-use objects with this raw GroupID: the base of relative IDs."""
        return min((d.id for d in self.objects if d.group_raw == group_raw), default=0)

    def signatures_for_group(self, group: int) -> list[Descriptor]:
        return [d for d in self.objects if d.is_signature and d.linked_group == group]

    def require_writable_layout(self, *, end: int | None = None) -> None:
        """Refuse a change that would overwrite bytes the header, table or an object uses.

        ``end``: where new data will be written (an add) or the file cut (a compaction);
        everything in use must lie before it. Checked before any write, so a refused change
        leaves the file byte-for-byte as it was.
        """
        table_start = self.header.descriptors_offset
        table_end = table_start + self.header.descriptors_total * DESCRIPTOR_SIZE
        hint = "this layout can be read and verified but not changed in place; rebuild the image"
        spans = [("the header", 0, HEADER_SIZE), ("the descriptor table", table_start, table_end)]
        spans += [(f"object {d.id}", d.offset, d.end) for d in self.objects if d.size]
        spans.sort(key=lambda span: span[1:])
        for (name, start, stop), (other, other_start, other_stop) in itertools.pairwise(spans):
            if other_start < stop:
                raise SifError(
                    f"{other} [{other_start}, {other_stop}) overlaps {name} [{start}, {stop}) "
                    "(descriptor table and header must not share bytes with objects)",
                    path=self.path, hint=hint,
                )  # fmt: skip
        if end is not None and end < table_end:
            raise SifError(
                f"the change would write at byte {end}, before the end of the descriptor table "
                f"[{table_start}, {table_end}), and destroy it",
                path=self.path, hint=hint,
            )  # fmt: skip

    def data_end(self) -> int:
        """Where the next object's bytes start before alignment (spec 1.8 step 2)."""
        return max([self.header.data_offset, *(d.end for d in self.objects)])

    def read_signature(self, desc: Descriptor) -> bytes:
        """A signature object's bytes, at most :data:`SIGNATURE_LIMIT` (for every reader)."""
        return self.read(desc, limit=SIGNATURE_LIMIT)

    def read(self, desc: Descriptor, *, limit: int) -> bytes:
        """All of a small object's bytes; ``limit`` bounds memory for hostile descriptors."""
        if desc.size > limit:
            raise SifFormatError(
                f"object {desc.id} is {desc.size} bytes, more than the {limit} allowed for its kind",
                path=self.path,
                field=f"descriptor[{desc.slot}].Size",
            )
        data = os.pread(self._handle.fileno(), desc.size, desc.offset)
        if len(data) != desc.size:
            raise SifFormatError(
                f"object {desc.id} is truncated", path=self.path, field=f"descriptor[{desc.slot}]"
            )
        return data

    @contextlib.contextmanager
    def bulk_read(self) -> Iterator[None]:
        """Within this block :meth:`stream` hands out mapped pages (no copy) when it safely can.

        A reader takes a shared lock for that, so that no writer of this package shortens the
        file meanwhile (see :mod:`lifecycle.sif.reading`); if a writer holds the file, streams
        fall back to copying reads.
        """
        if self.writable:
            yield
            return
        with shared_lock(self._handle.fileno()) as locked:
            self._mappable = locked
            try:
                yield
            finally:
                self._mappable = False

    def stream(self, desc: Descriptor, chunk_size: int = CHUNK_SIZE) -> Iterator[memoryview]:
        """Yield an object's bytes in views valid until the next one: memory stays flat."""
        fd = self._handle.fileno()
        advise_sequential(fd, desc.offset, desc.size)

        def ends_early(position: int) -> SifFormatError:
            return SifFormatError(f"object {desc.id} ends early at byte {position}",
                                  path=self.path, field=f"descriptor[{desc.slot}].Size")

        if self._mappable and desc.size:
            try:
                windows = mapped_windows(fd, desc.offset, desc.size, ends_early)
                first = next(windows)
            except (OSError, ValueError):  # a file system that cannot map: copy instead
                pass
            else:
                yield first
                yield from windows
                return
        yield from copied_chunks(fd, desc.offset, desc.size, ends_early, chunk_size)

    # ------------------------------------------------------------------ changes

    def timestamp(self, when: int | None) -> int:
        """The time to record for a change: given, or the reference default (spec 1.9)."""
        if when is not None:
            return when
        return ZERO_TIME if self.header.deterministic else now_seconds()

    def add(self, spec: ObjectSpec, *, when: int | None = None) -> Descriptor:
        """Append an object (spec 1.8), crash-safe, and return its descriptor."""
        self._require_writable()
        self.require_writable_layout(end=self.data_end())
        if len(spec.name) > NAME_SIZE:
            raise SifError(f"object name is longer than {NAME_SIZE} bytes", path=self.path)
        slot = next((d.slot for d in self.slots if not d.in_use), None)
        if slot is None:
            raise SifCapacityError(
                f"all {self.header.descriptors_total} descriptor slots are in use",
                path=self.path,
                hint="delete an object or recreate the image with more descriptors",
            )
        stamp = self.timestamp(when)
        end = self.data_end()
        alignment = spec.alignment
        if alignment is None:
            alignment = PARTITION_ALIGNMENT if spec.data_type == DataType.PARTITION else 0
        offset = end + (alignment - end % alignment) % alignment if alignment else end
        size = self._write_data(spec.data, offset)
        self.sink.sync()
        desc = Descriptor(
            data_type=spec.data_type, used=1, id=slot + 1, group_raw=spec.group | GROUP_FLAG,
            linked_raw=spec.linked_raw, offset=offset, size=size,
            size_with_padding=offset - end + size, created_at=stamp, modified_at=stamp, uid=0,
            gid=0, name=pad(spec.name, NAME_SIZE), extra=spec.extra, slot=slot,
        )  # fmt: skip
        self._publish_descriptor(desc)
        self.file_size = max(self.file_size, offset + size)
        header_changes: dict[str, Any] = {}
        if desc.is_primary_partition:
            header_changes["arch"] = desc.partition_info[2]
        self._write_header(stamp, header_changes)
        return desc

    def replace(self, old: Descriptor, spec: ObjectSpec, *, when: int | None = None) -> Descriptor:
        """Swap one object for a new one; at every instant one of the two is fully present."""
        new = self.add(spec, when=when)
        self.delete([old.id], when=when)
        return new

    def delete(
        self, object_ids: list[int], *, when: int | None = None, zero: bool = False,
        compact: bool = False,
    ) -> None:  # fmt: skip
        """Free objects (spec 1.10); ``zero`` wipes their data, ``compact`` truncates the file."""
        self._require_writable()
        targets = [self.object(i) for i in object_ids]
        kept_ends = [d.end for d in self.objects if d.id not in set(object_ids)]
        cut = max([self.header.data_offset, *kept_ends]) if compact else None
        self.require_writable_layout(end=cut)
        stamp = self.timestamp(when)
        resets_arch = False
        for desc in targets:
            position = self._descriptor_position(desc.slot)
            self.sink.pwrite(b"\x00", position + USED_FIELD_OFFSET)
            self.sink.sync()
            self.slots[desc.slot] = Descriptor.free(desc.slot)
            self.sink.pwrite(self.slots[desc.slot].pack(), position)
            if zero:
                self._zero_range(desc.offset, desc.size)
            resets_arch = resets_arch or desc.is_primary_partition
        changes: dict[str, Any] = {"arch": ARCH_CODES["unknown"]} if resets_arch else {}
        if compact:
            end = self.data_end()
            self.sink.sync()
            os.ftruncate(self._handle.fileno(), end)
            self.file_size = end
            changes["data_size"] = end - self.header.data_offset
        self._write_header(stamp, changes, recompute_size=False)

    # ------------------------------------------------------------------ internals

    def _require_writable(self) -> None:
        if not self.writable:
            raise SifError("image was opened read-only", path=self.path)

    def _descriptor_position(self, slot: int) -> int:
        return self.header.descriptors_offset + slot * DESCRIPTOR_SIZE

    def _publish_descriptor(self, desc: Descriptor) -> None:
        position = self._descriptor_position(desc.slot)
        self.sink.pwrite(desc.with_changes(used=0).pack(), position)
        self.sink.sync()
        self.sink.pwrite(b"\x01", position + USED_FIELD_OFFSET)
        self.sink.sync()
        self.slots[desc.slot] = desc

    def _write_data(self, data: bytes | Path, offset: int) -> int:
        if isinstance(data, bytes):
            self.sink.pwrite(data, offset)
            return len(data)
        written = 0
        with os.fdopen(open_regular(data, "object data file", error=SifError), "rb") as source:
            while chunk := source.read(CHUNK_SIZE):
                self.sink.pwrite(chunk, offset + written)
                written += len(chunk)
        return written

    def _zero_range(self, offset: int, size: int) -> None:
        zeros = bytes(min(size, CHUNK_SIZE))
        done = 0
        while done < size:
            n = min(len(zeros), size - done)
            self.sink.pwrite(zeros[:n], offset + done)
            done += n

    def _write_header(self, stamp: int, changes: dict[str, Any], *, recompute_size: bool = True) -> None:
        free = sum(1 for d in self.slots if not d.in_use)
        fields: dict[str, Any] = {"descriptors_free": free, "modified_at": stamp, **changes}
        if recompute_size:
            fields["data_size"] = self.data_end() - self.header.data_offset
        self.header = self.header.with_changes(**fields)
        self.sink.pwrite(self.header.pack(), 0)
        self.sink.sync()


def _lock(handle: BinaryIO, path: Path) -> None:
    deadline = _time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or _time.monotonic() > deadline:
                raise SifError(
                    "image is locked by another writer, or read by a verification for over "
                    f"{LOCK_TIMEOUT_SECONDS:.0f} s",
                    path=path,
                    hint="wait for the other sign/apply/verify run to finish",
                ) from exc
            _time.sleep(0.05)


def _load(handle: BinaryIO, path: Path) -> tuple[Header, list[Descriptor], int]:
    """Read and check the header and descriptor table against the file's real size."""
    size = os.fstat(handle.fileno()).st_size
    if size < HEADER_SIZE:
        raise SifFormatError(
            f"file is {size} bytes, shorter than the {HEADER_SIZE}-byte SIF header",
            path=path,
            field="header",
        )
    header = Header.unpack(os.pread(handle.fileno(), HEADER_SIZE, 0))
    if header.magic != MAGIC:
        raise SifFormatError("invalid SIF magic: not a SIF image", path=path, field="header.Magic")
    if header.version != VERSION:
        raise SifFormatError(
            f"incompatible SIF version {header.version!r} (only 01 is defined)",
            path=path,
            field="header.Version",
        )
    total, offset = header.descriptors_total, header.descriptors_offset
    if total < 0:
        raise SifFormatError(f"negative count {total}", path=path, field="header.DescriptorsTotal")
    if not 0 <= header.descriptors_free <= total:
        raise SifFormatError(
            f"{header.descriptors_free} free of {total} descriptors",
            path=path,
            field="header.DescriptorsFree",
        )
    if offset < 0 or offset > size:
        raise SifFormatError(
            f"offset {offset} is outside the {size}-byte file",
            path=path,
            field="header.DescriptorsOffset",
        )
    table_size = total * DESCRIPTOR_SIZE
    if header.descriptors_size < table_size:
        raise SifFormatError(
            f"{header.descriptors_size} bytes cannot hold {total} descriptors",
            path=path,
            field="header.DescriptorsSize",
        )
    if offset + table_size > size:
        raise SifFormatError(
            f"descriptor table [{offset}, {offset + table_size}) extends past the end of the "
            f"{size}-byte file (truncated image?)",
            path=path,
            field="header.DescriptorsTotal",
        )
    if total > MAX_DESCRIPTORS:
        raise SifFormatError(
            f"{total} descriptors is more than the {MAX_DESCRIPTORS} this tool reads",
            path=path,
            field="header.DescriptorsTotal",
            hint="the image is corrupt or hostile",
        )
    if not 0 <= header.data_offset <= size:
        raise SifFormatError(
            f"offset {header.data_offset} is outside the {size}-byte file",
            path=path,
            field="header.DataOffset",
        )
    raw = os.pread(handle.fileno(), table_size, offset)
    slots = [
        Descriptor.unpack(raw[i * DESCRIPTOR_SIZE : (i + 1) * DESCRIPTOR_SIZE], i)
        for i in range(total)
    ]
    seen: set[int] = set()
    for d in slots:
        if not d.in_use:
            continue
        where = f"descriptor[{d.slot}]"
        if d.id in seen or d.id == 0:
            raise SifFormatError(f"object ID {d.id} is zero or repeated", path=path, field=where)
        seen.add(d.id)
        if d.offset < 0 or d.size < 0 or d.offset + d.size > size:
            raise SifFormatError(
                f"object {d.id} data [{d.offset}, {d.offset + d.size}) lies outside the "
                f"{size}-byte file (truncated image?)",
                path=path,
                field=f"{where}.Offset/Size",
            )
    _check_no_overlap(slots, path)
    return header, slots, size


def _check_no_overlap(slots: list[Descriptor], path: Path) -> None:
    """No writer lets objects share bytes; a hostile table that does so multiplies the work.

    Thousands of descriptors over the same large region would each be read, parsed or hashed
    in full (hours for a 30 MiB file); without overlaps the work is bounded by the file size.
    Empty objects occupy no bytes and may sit anywhere.
    """
    spans = sorted((d for d in slots if d.in_use and d.size), key=lambda d: (d.offset, d.slot))
    for previous, desc in itertools.pairwise(spans):
        if desc.offset < previous.end:
            raise SifFormatError(
                f"object {desc.id} data [{desc.offset}, {desc.end}) overlaps object {previous.id} "
                f"[{previous.offset}, {previous.end})",
                path=path,
                field=f"descriptor[{desc.slot}].Offset/Size",
            )
