"""Digests of SIF image parts, computed in a single pass over the image data.

Image data is the expensive part: whatever number of signatures and hash algorithms a
verification needs, each object's bytes are read once and fed to every hasher that wants them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import NamedTuple, Protocol

from lifecycle.errors import SignatureFormatError
from lifecycle.integrity import hashing
from lifecycle.sif.format import Descriptor, HashType
from lifecycle.sif.image import SifImage

METADATA_HASHES: dict[str, str] = {
    "sha224": "sha224",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
    "sha512_224": "sha512_224",
    "sha512_256": "sha512_256",
}
"""Digest names allowed in signed metadata (Go crypto.Hash names) -> hashlib names."""

Progress = Callable[[int], None]
"""Called with the number of bytes just hashed."""


class Hasher(Protocol):
    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


def new_hasher(name: str) -> Hasher:
    if name == "blake2s":
        return hashlib.blake2s(digest_size=32)
    if name == "blake2b":
        return hashlib.blake2b(digest_size=32)
    return hashlib.new(name)


def descriptor_hash_name(hash_type: int) -> str:
    """hashlib name for a signature descriptor's HashType; unknown values are format errors."""
    try:
        return HashType(hash_type).hashlib_name
    except ValueError:
        raise SignatureFormatError(f"hash algorithm {hash_type} unsupported") from None


class Digest(NamedTuple):
    """``<name>:<hex>`` as written in signed metadata (spec 3.1)."""

    name: str
    value: bytes

    def __str__(self) -> str:
        return f"{self.name}:{self.value.hex()}"

    @classmethod
    def of(cls, name: str, data: bytes) -> Digest:
        hasher = new_hasher(METADATA_HASHES[name])
        hasher.update(data)
        return cls(name, hasher.digest())

    @classmethod
    def parse(cls, text: object) -> Digest:
        """Strict parse with the reference's rules: known name, hex of exactly the hash length."""
        if not isinstance(text, str):
            raise SignatureFormatError("digest is not a string")
        parts = text.split(":")
        if len(parts) != 2 or parts[0] not in METADATA_HASHES:
            raise SignatureFormatError(f"unsupported digest {text[:80]!r}")
        name, hex_value = parts
        try:
            value = bytes.fromhex(hex_value)
        except ValueError:
            raise SignatureFormatError(f"digest {text[:80]!r} is not hex") from None
        if len(value) != new_hasher(METADATA_HASHES[name]).digest_size or " " in hex_value:
            raise SignatureFormatError(f"digest {text[:80]!r} has the wrong length")
        return cls(name, value)


class DigestRequest:
    """What one verification or signing run needs hashed.

    ``objects`` maps object ID -> hashlib names; ``groups`` maps a group number -> hashlib names
    of digests over the concatenated data of the group's objects in slot order (legacy format).
    (A plain class, like the other mutable records of the verify path: a dataclass's generated
    methods cost start-up time, docs/performance.md.)
    """

    __slots__ = ("groups", "objects")

    def __init__(self) -> None:
        self.objects: dict[int, set[str]] = {}
        self.groups: dict[int, set[str]] = {}

    def want_object(self, object_id: int, name: str) -> None:
        self.objects.setdefault(object_id, set()).add(name)

    def want_group(self, group: int, name: str) -> None:
        self.groups.setdefault(group, set()).add(name)


class DigestResults:
    """Digests by (object ID, hashlib name) and by (group, hashlib name)."""

    __slots__ = ("groups", "objects")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self) -> None:
        self.objects: dict[tuple[int, str], bytes] = {}
        self.groups: dict[tuple[int, str], bytes] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DigestResults):
            return NotImplemented
        return (self.objects, self.groups) == (other.objects, other.groups)

    def object(self, object_id: int, name: str) -> bytes:
        return self.objects[(object_id, name)]

    def group(self, group: int, name: str) -> bytes:
        return self.groups[(group, name)]


def bytes_to_hash(image: SifImage, request: DigestRequest) -> int:
    return sum(d.size for d in _objects_to_read(image, request))


def _objects_to_read(image: SifImage, request: DigestRequest) -> list[Descriptor]:
    return [
        d
        for d in image.objects
        if d.id in request.objects or (d.group in request.groups and d.group)
    ]


def compute(
    image: SifImage, request: DigestRequest, progress: Progress | None = None,
    threads: int | None = None,
) -> DigestResults:
    """Hash everything ``request`` asks for, reading each object's bytes exactly once.

    Objects are hashed in parallel (up to ``threads``, default every core) except those whose
    bytes feed a group digest, which go in slot order in one lane (:mod:`.hashing`).
    """
    results = DigestResults()
    group_hashers = {
        (g, name): new_hasher(name) for g, names in request.groups.items() for name in names
    }
    group_lanes: dict[int, hashing.Lane] = {}
    lanes: list[hashing.Lane] = []
    object_hashers: dict[int, dict[str, Hasher]] = {}
    for desc in image.objects:
        hashers = {name: new_hasher(name) for name in request.objects.get(desc.id, ())}
        object_hashers[desc.id] = hashers
        feeds: list[hashing.Feed] = list(hashers.values())
        in_group: list[hashing.Feed] = [
            h for (g, _), h in group_hashers.items() if desc.group and g == desc.group
        ]
        if not feeds and not in_group:
            continue
        if in_group:
            lane = group_lanes.setdefault(desc.group, hashing.Lane())
            if not lane.parts:
                lanes.append(lane)
        else:
            lane = hashing.Lane()
            lanes.append(lane)
        lane.parts.append((desc, feeds + in_group))
    hashing.run_lanes(image, lanes, progress, threads)
    for object_id, hashers in object_hashers.items():
        for name, hasher in hashers.items():
            results.objects[(object_id, name)] = hasher.digest()
    for key, hasher in group_hashers.items():
        results.groups[key] = hasher.digest()
    return results
