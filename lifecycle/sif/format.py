"""The SIF on-disk structures (spec section 1): pure packing and unpacking, no I/O.

Field values are kept exactly as stored (raw group/link words, raw name bytes) so that an image
read and written back is byte-identical; convenience properties decode them.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

HEADER_STRUCT = struct.Struct("<32s10s3s3s16sqqqqqqqq")
DESCRIPTOR_STRUCT = struct.Struct("<iBIIIqqqqqqq128s384s")
HEADER_SIZE = HEADER_STRUCT.size  # 128
DESCRIPTOR_SIZE = DESCRIPTOR_STRUCT.size  # 585

MAGIC = b"SIF_MAGIC\x00"
VERSION = b"01\x00"
ZERO_TIME = -62135596800
"""Go's zero ``time.Time`` in Unix seconds: the reference's "deterministic" timestamp."""

GROUP_FLAG = 0xF0000000
GROUP_MASK = 0x0FFFFFFF
DEFAULT_DESCRIPTORS_OFFSET = 4096
DEFAULT_DESCRIPTOR_CAPACITY = 48
PARTITION_ALIGNMENT = 4096
NAME_SIZE = 128
EXTRA_SIZE = 384
LAUNCH_SCRIPT_SIZE = 32
NIL_UUID = bytes(16)
ENTITY_SIZE = 256
ENTITY_READ_SIZE = 20


class DataType(enum.IntEnum):
    DEFFILE = 0x4001
    ENVVAR = 0x4002
    LABELS = 0x4003
    PARTITION = 0x4004
    SIGNATURE = 0x4005
    GENERIC_JSON = 0x4006
    GENERIC = 0x4007
    CRYPTO_MESSAGE = 0x4008
    SBOM = 0x4009
    OCI_ROOT_INDEX = 0x400A
    OCI_BLOB = 0x400B


class FsType(enum.IntEnum):
    SQUASHFS = 1
    EXT3 = 2
    IMMUTABLE_OBJECT = 3
    RAW = 4
    ENCRYPTED_SQUASHFS = 5
    GOCRYPTFS_SQUASHFS = 6


class PartType(enum.IntEnum):
    SYSTEM = 1
    PRIMARY_SYSTEM = 2
    DATA = 3
    OVERLAY = 4


class HashType(enum.IntEnum):
    """Descriptor-level hash identifiers of signature objects (spec 1.6.2)."""

    SHA256 = 1
    SHA384 = 2
    SHA512 = 3
    BLAKE2S_256 = 4
    BLAKE2B_256 = 5

    @property
    def hashlib_name(self) -> str:
        return {1: "sha256", 2: "sha384", 3: "sha512", 4: "blake2s", 5: "blake2b"}[self.value]


ARCH_CODES: dict[str, bytes] = {
    "unknown": b"00\x00", "386": b"01\x00", "amd64": b"02\x00", "arm": b"03\x00",
    "arm64": b"04\x00", "ppc64": b"05\x00", "ppc64le": b"06\x00", "mips": b"07\x00",
    "mipsle": b"08\x00", "mips64": b"09\x00", "mips64le": b"10\x00", "s390x": b"11\x00",
    "riscv64": b"12\x00", "loong64": b"13\x00",
}  # fmt: skip
ARCH_NAMES = {code: name for name, code in ARCH_CODES.items()}


def arch_name(code: bytes) -> str:
    return ARCH_NAMES.get(code, f"unknown({code!r})")


def type_name(data_type: int) -> str:
    try:
        return DataType(data_type).name.replace("_", "-").title()
    except ValueError:
        return f"Unknown(0x{data_type:x})"


def pad(value: bytes, size: int) -> bytes:
    """Zero-pad ``value`` to ``size`` bytes; callers check the length first."""
    return value + bytes(size - len(value))


class Header(NamedTuple):
    """The 128-byte global header (spec 1.1)."""

    launch_script: bytes
    magic: bytes
    version: bytes
    arch: bytes
    id: bytes
    created_at: int
    modified_at: int
    descriptors_free: int
    descriptors_total: int
    descriptors_offset: int
    descriptors_size: int
    data_offset: int
    data_size: int

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        return cls(*HEADER_STRUCT.unpack(raw))

    def pack(self) -> bytes:
        return HEADER_STRUCT.pack(
            self.launch_script, self.magic, self.version, self.arch, self.id, self.created_at,
            self.modified_at, self.descriptors_free, self.descriptors_total,
            self.descriptors_offset, self.descriptors_size, self.data_offset, self.data_size,
        )  # fmt: skip

    def integrity_bytes(self) -> bytes:
        """The 61 bytes the header digest covers: launch script, magic, version, ID (not Arch)."""
        return self.launch_script + self.magic + self.version + self.id

    @property
    def deterministic(self) -> bool:
        return (
            self.id == NIL_UUID
            and self.created_at == ZERO_TIME
            and self.modified_at == ZERO_TIME
        )

    def with_changes(self, **changes: object) -> Header:
        return self._replace(**changes)  # type: ignore[arg-type]


class Descriptor(NamedTuple):
    """One 585-byte descriptor slot (spec 1.3). ``slot`` is its index in the table, not stored."""

    data_type: int
    used: int
    id: int
    group_raw: int
    linked_raw: int
    offset: int
    size: int
    size_with_padding: int
    created_at: int
    modified_at: int
    uid: int
    gid: int
    name: bytes
    extra: bytes
    slot: int = -1

    @classmethod
    def unpack(cls, raw: bytes, slot: int) -> Descriptor:
        (data_type, used, object_id, group_raw, linked_raw, offset, size, size_with_padding,
         created_at, modified_at, uid, gid, name, extra) = DESCRIPTOR_STRUCT.unpack(raw)
        return cls(data_type, used, object_id, group_raw, linked_raw, offset, size,
                   size_with_padding, created_at, modified_at, uid, gid, name, extra, slot)

    @classmethod
    def free(cls, slot: int) -> Descriptor:
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, bytes(NAME_SIZE), bytes(EXTRA_SIZE), slot)

    def pack(self) -> bytes:
        return DESCRIPTOR_STRUCT.pack(
            self.data_type, self.used, self.id, self.group_raw, self.linked_raw, self.offset,
            self.size, self.size_with_padding, self.created_at, self.modified_at, self.uid,
            self.gid, self.name, self.extra,
        )  # fmt: skip

    def integrity_bytes(self, relative_id: int) -> bytes:
        """The 557 bytes the descriptor digest covers (spec 2.2): ID replaced by ``relative_id``."""
        fixed = struct.pack(
            "<iBIIqqqq", self.data_type, 1, relative_id & 0xFFFFFFFF, self.linked_raw,
            self.size, self.created_at, self.uid, self.gid,
        )  # fmt: skip
        return fixed + self.name + self.extra

    def with_changes(self, **changes: object) -> Descriptor:
        return self._replace(**changes)  # type: ignore[arg-type]

    @property
    def in_use(self) -> bool:
        return self.used != 0

    @property
    def group(self) -> int:
        """Group number, 0 when the object is in no group."""
        return self.group_raw & GROUP_MASK

    @property
    def linked_group(self) -> int | None:
        """The group this object is linked to, if its link has the group flag."""
        if self.linked_raw & GROUP_FLAG == GROUP_FLAG:
            return self.linked_raw & GROUP_MASK
        return None

    @property
    def linked_object(self) -> int | None:
        """The object this object is linked to, if it is linked to a single object."""
        if self.linked_raw and self.linked_raw & GROUP_FLAG != GROUP_FLAG:
            return self.linked_raw
        return None

    @property
    def is_signature(self) -> bool:
        return self.data_type == DataType.SIGNATURE

    @property
    def name_text(self) -> str:
        return self.name.rstrip(b"\x00").decode("utf-8", "replace")

    @property
    def end(self) -> int:
        return self.offset + self.size

    # Type-specific extra fields (spec 1.6).

    @property
    def partition_info(self) -> tuple[int, int, bytes]:
        """(FSType, PartType, Arch code) of a partition descriptor."""
        fs, part = struct.unpack_from("<ii", self.extra)
        return fs, part, self.extra[8:11]

    @property
    def signature_hash_type(self) -> int:
        return int(struct.unpack_from("<i", self.extra)[0])

    @property
    def signature_entity(self) -> bytes:
        """The signer fingerprint as the reference reads it: the first 20 bytes of Entity."""
        return self.extra[4 : 4 + ENTITY_READ_SIZE]

    @property
    def is_primary_partition(self) -> bool:
        return (
            self.data_type == DataType.PARTITION
            and self.partition_info[1] == PartType.PRIMARY_SYSTEM
        )


def partition_extra(fs_type: int, part_type: int, arch: bytes) -> bytes:
    return pad(struct.pack("<ii", fs_type, part_type) + arch, EXTRA_SIZE)


def signature_extra(hash_type: int, entity: bytes) -> bytes:
    return pad(struct.pack("<i", hash_type) + pad(entity, ENTITY_SIZE), EXTRA_SIZE)


def crypto_message_extra(format_type: int, message_type: int) -> bytes:
    return pad(struct.pack("<ii", format_type, message_type), EXTRA_SIZE)


def sbom_extra(sbom_format: int) -> bytes:
    return pad(struct.pack("<i", sbom_format), EXTRA_SIZE)


def oci_digest_extra(sha256_hex: str) -> bytes:
    return pad(f"sha256:{sha256_hex}".encode("ascii"), EXTRA_SIZE)
