"""Signed image metadata: the JSON message inside every current SIF signature (spec sections 2-3).

It binds the header (launch script, magic, version, UUID), each signed object's descriptor and
each object's data by digest. Building is exact to the reference's bytes; parsing follows Go's
lenient JSON rules; checking reproduces the reference's errors (spec 6.3 d-e).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from lifecycle.errors import SignatureFormatError
from lifecycle.integrity.digest import METADATA_HASHES, Digest, DigestRequest, DigestResults
from lifecycle.integrity.gojson import go_get, load_json
from lifecycle.sif.format import GROUP_FLAG, Descriptor
from lifecycle.sif.image import SifImage


class ObjectMetadata(NamedTuple):
    relative_id: int
    descriptor_digest: Digest
    object_digest: Digest


class ImageMetadata(NamedTuple):
    header_digest: Digest
    objects: tuple[ObjectMetadata, ...]
    version: int = 1

    def to_json(self) -> bytes:
        """Compact JSON with the reference's key order and no trailing newline."""
        doc = {
            "version": self.version,
            "header": {"digest": str(self.header_digest)},
            "objects": [
                {
                    "relativeId": o.relative_id,
                    "descriptorDigest": str(o.descriptor_digest),
                    "objectDigest": str(o.object_digest),
                }
                for o in self.objects
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ImageMetadata:
        """Parse as Go does: keys case-insensitive, unknown keys ignored, version unchecked."""
        doc = load_json(data)
        if not isinstance(doc, dict):
            raise SignatureFormatError("signed metadata is not a JSON object")
        header = go_get(doc, "header")
        objects = go_get(doc, "objects")
        if not isinstance(header, dict) or not isinstance(objects, list):
            raise SignatureFormatError("signed metadata lacks header or objects")
        parsed = []
        for item in objects:
            if not isinstance(item, dict):
                raise SignatureFormatError("signed metadata object entry is not an object")
            rel = go_get(item, "relativeId")
            if not isinstance(rel, int) or isinstance(rel, bool) or not 0 <= rel <= 0xFFFFFFFF:
                raise SignatureFormatError("relativeId is not a uint32")
            parsed.append(
                ObjectMetadata(
                    rel,
                    Digest.parse(go_get(item, "descriptorDigest")),
                    Digest.parse(go_get(item, "objectDigest")),
                )
            )
        version = go_get(doc, "version")
        return cls(
            Digest.parse(go_get(header, "digest")),
            tuple(parsed),
            version if isinstance(version, int) else 0,
        )


def relative_id(image: SifImage, desc: Descriptor) -> int:
    return desc.id - image.min_id(desc.group_raw)


def descriptor_digest(image: SifImage, desc: Descriptor, name: str) -> Digest:
    return Digest.of(name, desc.integrity_bytes(relative_id(image, desc)))


def header_digest(image: SifImage, name: str) -> Digest:
    return Digest.of(name, image.header.integrity_bytes())


def build(
    image: SifImage, object_ids: list[int], digests: DigestResults, name: str = "sha256"
) -> ImageMetadata:
    """Metadata for ``object_ids`` (all in one group), sorted by ID as the reference does."""
    objects = []
    for object_id in sorted(set(object_ids)):
        desc = image.object(object_id)
        objects.append(
            ObjectMetadata(
                relative_id(image, desc),
                descriptor_digest(image, desc, name),
                Digest(name, digests.object(object_id, METADATA_HASHES[name])),
            )
        )
    return ImageMetadata(header_digest(image, name), tuple(objects))


def absolute_ids(image: SifImage, metadata: ImageMetadata, group: int) -> dict[int, ObjectMetadata]:
    base = image.min_id(group | GROUP_FLAG)
    return {base + o.relative_id: o for o in metadata.objects}


def request_for(
    image: SifImage, metadata: ImageMetadata, group: int, request: DigestRequest
) -> None:
    """Add the object digests needed to check ``metadata`` to ``request``."""
    present = {d.id for d in image.objects}
    for object_id, entry in absolute_ids(image, metadata, group).items():
        if object_id in present:
            request.want_object(object_id, METADATA_HASHES[entry.object_digest.name])


class CheckOutcome:
    """What checking a signature's metadata against the image found."""

    __slots__ = ("covered", "errors")

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.covered: list[int] = []

    @property
    def ok(self) -> bool:
        return not self.errors


def check(
    image: SifImage,
    metadata: ImageMetadata,
    group: int,
    digests: DigestResults,
    only: int | None = None,
) -> CheckOutcome:
    """Check signed metadata against the image as it is now (spec 6.3 d-e).

    ``only`` is an object task: that object must be covered, other group members may be absent.
    """
    outcome = CheckOutcome()
    listed = absolute_ids(image, metadata, group)
    members = {d.id for d in image.group_objects(group)}
    if only is None:
        outcome.errors += [f"object {i}: object not signed" for i in sorted(members - set(listed))]
        outcome.errors += [
            f"object {i}: signed object not found" for i in sorted(set(listed) - members)
        ]
    if header_digest(image, metadata.header_digest.name) != metadata.header_digest:
        outcome.errors.append("header integrity compromised")
    for object_id in sorted(members) if only is None else [only]:
        entry = listed.get(object_id)
        if entry is None:
            if only is not None:
                outcome.errors.append(f"object {object_id}: object not signed")
            continue
        desc = image.object(object_id)
        if descriptor_digest(image, desc, entry.descriptor_digest.name) != entry.descriptor_digest:
            outcome.errors.append(f"data object descriptor integrity compromised: {object_id}")
            continue
        actual = digests.object(object_id, METADATA_HASHES[entry.object_digest.name])
        if actual != entry.object_digest.value:
            outcome.errors.append(f"data object integrity compromised: {object_id}")
            continue
        outcome.covered.append(object_id)
    return outcome
