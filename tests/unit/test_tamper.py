"""Exhaustive single-byte tampering: every byte of a small signed image, flipped one at a time.

The expected outcome of each flip is derived from the layout with the rules of the spec
(sections 1, 2 and 6), not from the code under test: bytes the signatures cover (header digest
input, descriptor digest input, object data, the signature objects themselves) must fail with the
matching reason, structural fields the loader checks must give ``SifFormatError``, and everything
else (unhashed timestamps, Arch, padding, free slots) must still verify.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.errors import SifFormatError
from lifecycle.integrity.verify import VerifyOptions, verify_image

# Layouts written from the spec's tables (1.1, 1.3), independent of lifecycle.sif.format.
HEADER = struct.Struct("<32s10s3s3s16sqqqqqqqq")
DESCRIPTOR = struct.Struct("<iBIIIqqqqqqq128s384s")
GROUP_FLAG, GROUP_MASK = 0xF0000000, 0x0FFFFFFF
SIGNATURE_TYPE = 0x4005

# (name, offset, size) of every header and descriptor field.
HEADER_FIELDS = [
    ("LaunchScript", 0, 32), ("Magic", 32, 10), ("Version", 42, 3), ("Arch", 45, 3),
    ("ID", 48, 16), ("CreatedAt", 64, 8), ("ModifiedAt", 72, 8), ("DescriptorsFree", 80, 8),
    ("DescriptorsTotal", 88, 8), ("DescriptorsOffset", 96, 8), ("DescriptorsSize", 104, 8),
    ("DataOffset", 112, 8), ("DataSize", 120, 8),
]  # fmt: skip
DESCRIPTOR_FIELDS = [
    ("DataType", 0, 4), ("Used", 4, 1), ("ID", 5, 4), ("GroupID", 9, 4), ("LinkedID", 13, 4),
    ("Offset", 17, 8), ("Size", 25, 8), ("SizeWithPadding", 33, 8), ("CreatedAt", 41, 8),
    ("ModifiedAt", 49, 8), ("UID", 57, 8), ("GID", 65, 8), ("Name", 73, 128), ("Extra", 201, 384),
]  # fmt: skip
FIELD_FORMATS = {1: "<B", 4: "<I", 8: "<q"}
"""Integer fields are read back after the flip; DataType is read unsigned, only equality matters."""

MEMBERSHIP = r"object not signed|signed object not found|not associated with object group|" \
    r"signature not found for object group"  # fmt: skip


@dataclass(frozen=True)
class Expect:
    """``pass``; ``fail`` with ``reason`` (a regex) in the summary; ``format`` (SifFormatError);
    ``broken`` (either of the last two: the descriptor table itself is read from elsewhere)."""

    outcome: str
    reason: str = ""


PASS = Expect("pass")
FORMAT = Expect("format")


@dataclass(frozen=True)
class Obj:
    """An in-use descriptor of the untouched image."""

    slot: int
    data_type: int
    id: int
    group_raw: int
    linked_raw: int
    offset: int
    size: int

    @property
    def is_signature(self) -> bool:
        return self.data_type == SIGNATURE_TYPE

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def group_linked(self) -> int:
        return self.linked_raw & GROUP_MASK


class Layout:
    """The untouched image, parsed with the spec's structs; ``expect`` classifies one flip."""

    def __init__(self, data: bytes, kind: str) -> None:
        self.data, self.kind, self.size = data, kind, len(data)
        fields = HEADER.unpack_from(data)
        self.free, self.total, self.table, self.table_size, self.data_offset = fields[7:12]
        self.slots: dict[int, Obj] = {}
        for slot in range(self.total):
            d = DESCRIPTOR.unpack_from(data, self.table + slot * DESCRIPTOR.size)
            if d[1]:
                self.slots[slot] = Obj(slot, d[0], d[2], d[3], d[4], d[5], d[6])
        self.groups = {o.group_raw & GROUP_MASK for o in self.slots.values()} - {0}

    def flipped_int(self, offset: int, size: int, byte: int) -> int:
        raw = bytearray(self.data[offset : offset + size])
        raw[byte] ^= 0xFF
        return int(struct.unpack(FIELD_FORMATS[size], raw)[0])

    def expectations(self) -> list[Expect]:
        out: list[Expect | None] = [None] * self.size
        for name, offset, size in HEADER_FIELDS:
            for byte in range(size):
                out[offset + byte] = self.header_flip(name, offset, size, byte)
        for slot in range(self.total):
            base = self.table + slot * DESCRIPTOR.size
            for name, offset, size in DESCRIPTOR_FIELDS:
                for byte in range(size):
                    out[base + offset + byte] = self.descriptor_flip(slot, name, offset, size, byte)
        for obj in self.slots.values():
            rule = (
                Expect("fail", f"signature object {obj.id}:")
                if obj.is_signature
                else Expect("fail", f"data object integrity compromised: {obj.id}")
            )
            out[obj.offset : obj.offset + obj.size] = [rule] * obj.size
        # The gap before the table and padding between objects are covered by nothing.
        return [PASS if e is None else e for e in out]

    def header_flip(self, name: str, offset: int, size: int, byte: int) -> Expect:
        if name in ("LaunchScript", "ID"):
            return Expect("fail", "header integrity compromised")
        if name in ("Magic", "Version"):
            return FORMAT
        if name in ("Arch", "CreatedAt", "ModifiedAt", "DataSize"):
            return PASS
        value = self.flipped_int(offset, size, byte)
        if name == "DescriptorsFree":
            # Not hashed and used for nothing, but the loader rejects counts it cannot believe.
            return PASS if 0 <= value <= self.total else FORMAT
        if name == "DescriptorsSize":
            return PASS if value >= self.total * DESCRIPTOR.size else FORMAT
        if name == "DataOffset":
            return PASS if 0 <= value <= self.size else FORMAT
        if name == "DescriptorsOffset":
            fits = value >= 0 and value + self.total * DESCRIPTOR.size <= self.size
            return Expect("broken") if fits else FORMAT
        assert name == "DescriptorsTotal"
        if value < 0 or value > self.total or not self.free <= value:
            return FORMAT  # the DescriptorsSize window cannot hold more slots than it was made for
        return Expect("broken") if any(slot >= value for slot in self.slots) else PASS

    def descriptor_flip(self, slot: int, name: str, offset: int, size: int, byte: int) -> Expect:
        obj = self.slots.get(slot)
        if obj is None:
            # A free slot: setting Used makes an object with ID 0; all else stays invisible.
            return FORMAT if name == "Used" else PASS
        if name in ("Used", "SizeWithPadding", "ModifiedAt"):
            return PASS  # Used is non-zero either way (and hashed as 01); the others are unhashed
        position = self.table + slot * DESCRIPTOR.size + offset
        value = self.flipped_int(position, size, byte) if size in FIELD_FORMATS else 0
        if name == "ID":
            return self.id_flip(obj, value)
        if name in ("Offset", "Size"):
            offset_, size_ = (value, obj.size) if name == "Offset" else (obj.offset, value)
            if offset_ < 0 or size_ < 0 or offset_ + size_ > self.size:
                return FORMAT
            if self.overlaps(obj, offset_, size_):
                return FORMAT  # no two objects may share bytes
            if name == "Size" and not obj.is_signature:
                return Expect("fail", f"data object descriptor integrity compromised: {obj.id}")
            moved = bytearray(self.data)
            moved[position + byte] ^= 0xFF
            if moved[offset_ : offset_ + size_] == self.data[obj.offset : obj.end]:
                return PASS
            if obj.is_signature:
                return Expect("fail", f"signature object {obj.id}:")
            return Expect("fail", f"data object integrity compromised: {obj.id}")
        if obj.is_signature:
            return self.signature_flip(obj, name, byte)
        if name == "GroupID":
            return Expect("fail", MEMBERSHIP)
        # DataType, LinkedID, CreatedAt, UID, GID, Name, Extra: all in the descriptor digest.
        return Expect("fail", f"data object descriptor integrity compromised: {obj.id}")

    def overlaps(self, obj: Obj, offset: int, size: int) -> bool:
        return size > 0 and any(
            o.size and offset < o.end and o.offset < offset + size
            for o in self.slots.values()
            if o is not obj
        )

    def signature_flip(self, obj: Obj, name: str, byte: int) -> Expect:
        if name == "DataType":
            return Expect("fail", f"non-signature object {obj.id} not associated with object group")
        if name == "GroupID":
            return Expect("fail", MEMBERSHIP)
        if name == "LinkedID":
            return Expect("fail", f"signature not found for object group {obj.group_linked}")
        if name == "Extra" and byte < 4:
            return Expect("fail", f"signature object {obj.id} not valid: hash algorithm -?\\d+ unsupported")
        if name == "Extra" and byte < 24 and self.kind == "pgp":
            return Expect("fail", "fingerprint in descriptor does not correspond to signing entity")
        return PASS  # CreatedAt, UID, GID, Name, the rest of Extra: signatures are not hashed

    def id_flip(self, obj: Obj, new_id: int) -> Expect:
        ids = {o.slot: o.id for o in self.slots.values()}
        ids[obj.slot] = new_id
        if new_id == 0 or list(ids.values()).count(new_id) > 1:
            return FORMAT
        if obj.is_signature:
            return PASS  # signature IDs are not covered; nothing links to them
        same_group = [o for o in self.slots.values() if o.group_raw == obj.group_raw]
        before = {o.slot: o.id - min(p.id for p in same_group) for o in same_group}
        after = {o.slot: ids[o.slot] - min(ids[p.slot] for p in same_group) for o in same_group}
        return PASS if before == after else Expect("fail", MEMBERSHIP + "|descriptor integrity")


def outcome_of(path: Path, verify: Callable[[str], object]) -> tuple[str, str]:
    """(outcome, failure summary) of one verification; other exception types are reported."""
    try:
        report = verify(str(path))
    except SifFormatError as exc:
        return "format", str(exc)
    except Exception as exc:
        return "crash", f"{type(exc).__name__}: {exc}"
    assert hasattr(report, "ok")
    return ("pass", "") if report.ok else ("fail", report.failure_summary())  # type: ignore[attr-defined]


def matches(expect: Expect, outcome: str, summary: str) -> bool:
    if expect.outcome == "broken":
        return outcome in ("fail", "format")
    if expect.outcome != outcome:
        return False
    return outcome != "fail" or re.search(expect.reason, summary) is not None


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dsse", "pgp"])
def test_every_single_byte_flip_has_the_outcome_the_spec_predicts(
    kind: str, small_signed_images: dict, tmp_path: Path
) -> None:
    image = small_signed_images[kind]
    layout = Layout(image.data, kind)
    expected = layout.expectations()
    path = tmp_path / "flipped.sif"

    def verify(p: str) -> object:
        return verify_image(p, image.keys, VerifyOptions())

    path.write_bytes(image.data)
    assert outcome_of(path, verify) == ("pass", "")
    wrong = []
    with path.open("r+b") as handle:
        for offset, expect in enumerate(expected):
            original = image.data[offset : offset + 1]
            os.pwrite(handle.fileno(), bytes([original[0] ^ 0xFF]), offset)
            outcome, summary = outcome_of(path, verify)
            os.pwrite(handle.fileno(), original, offset)
            if not matches(expect, outcome, summary):
                wrong.append(f"byte {offset}: expected {expect}, got {outcome} {summary[:160]!r}")
    assert not wrong, f"{len(wrong)} of {len(expected)} flips misjudged:\n" + "\n".join(wrong[:25])


def test_the_classification_covers_every_kind_of_region(small_signed_images: dict) -> None:
    """Guards the oracle itself: a layout change that left a region unexercised would show here."""
    image = small_signed_images["pgp"]
    reasons = {e.reason or e.outcome for e in Layout(image.data, "pgp").expectations()}
    assert {"pass", "format", "broken", "header integrity compromised"} <= reasons
    for needle in ("data object integrity", "descriptor integrity", "signature object", "fingerprint"):
        assert any(needle in r for r in reasons), needle
