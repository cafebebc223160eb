"""What an image holds, read in one pass: its signatures, who signed, and whether they still match.

No keys are needed: the signed metadata inside every signature lists the digests of the objects
it covers, so a changed image is detected by comparing them with the image as it is now. Whether
the signer is trusted is the verifier's business (``lifecycle.integrity.verify``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import SignatureFormatError
from lifecycle.integrity import digest, dsse, metadata, pgp
from lifecycle.sif.image import SifImage


@dataclass(frozen=True)
class SignatureInfo:
    object_id: int
    group: int
    format: str
    """``dsse``, ``pgp``, ``legacy`` or ``unknown``."""
    signers: tuple[str, ...]
    """DSSE keyids in the envelope, or the PGP signer's fingerprint."""
    covered: tuple[int, ...]
    errors: tuple[str, ...]
    """Why the signed metadata no longer matches the image (empty when it does)."""
    extended: tuple[str, ...] = ()
    """DSSE keyids whose signature carries a v1.1 extension (where RFC 3161 tokens ride)."""


@dataclass(frozen=True)
class ImageInfo:
    path: str
    sif_id: str
    groups: tuple[int, ...]
    digests: dict[int, str]
    """Object ID -> ``sha256:hex`` of every non-signature object."""
    signatures: tuple[SignatureInfo, ...]

    @property
    def intact(self) -> bool:
        """Every signature's metadata still matches (legacy/unknown formats cannot be checked)."""
        return all(not s.errors for s in self.signatures)

    @property
    def problems(self) -> str:
        return "; ".join(f"signature object {s.object_id}: {e}"
                         for s in self.signatures for e in s.errors)


@dataclass
class _Parsed:
    object_id: int
    group: int
    format: str
    signers: tuple[str, ...]
    meta: metadata.ImageMetadata | None
    extended: tuple[str, ...] = ()


def _parse(image: SifImage, object_id: int) -> _Parsed:
    desc = image.object(object_id)
    group = desc.linked_group or desc.group
    try:
        data = image.read_signature(desc)
        if dsse.is_dsse(data):
            envelope = dsse.parse_envelope(data)
            return _Parsed(object_id, group, "dsse", tuple(s.keyid for s in envelope.signatures),
                           metadata.ImageMetadata.from_json(envelope.payload),
                           tuple(s.keyid for s in envelope.signatures if s.extension))
        text = pgp.decode(data).text
        signer = (desc.signature_entity.hex().upper(),)
        if text.startswith(b"SIFHASH:\n"):
            return _Parsed(object_id, group, "legacy", signer, None)
        return _Parsed(object_id, group, "pgp", signer, metadata.ImageMetadata.from_json(text))
    except SignatureFormatError:
        return _Parsed(object_id, group, "unknown", (), None)


def is_signed(path: str | Path) -> bool:
    """Whether the image holds a signature object at all: reads the descriptors only."""
    with SifImage.open(path) as image:
        return any(d.is_signature for d in image.objects)


def inspect_image(path: str | Path) -> ImageInfo:
    """Read ``path`` once: object digests, signatures and whether their metadata still matches."""
    with SifImage.open(path) as image:
        parsed = [_parse(image, d.id) for d in image.objects if d.is_signature]
        request = digest.DigestRequest()
        data_ids = [d.id for d in image.objects if not d.is_signature]
        for object_id in data_ids:
            request.want_object(object_id, "sha256")
        for p in parsed:
            if p.meta is not None:
                metadata.request_for(image, p.meta, p.group, request)
        digests = digest.compute(image, request)
        signatures = []
        for p in parsed:
            covered: tuple[int, ...] = ()
            errors: tuple[str, ...] = ()
            if p.meta is not None:
                outcome = metadata.check(image, p.meta, p.group, digests)
                covered = tuple(sorted(metadata.absolute_ids(image, p.meta, p.group)))
                errors = tuple(dict.fromkeys(outcome.errors))
            elif p.format == "unknown":
                errors = ("signature format not recognized",)
            signatures.append(SignatureInfo(p.object_id, p.group, p.format, p.signers, covered,
                                            errors, p.extended))
        return ImageInfo(
            str(path), str(uuid.UUID(bytes=image.header.id)), tuple(image.groups()),
            {i: "sha256:" + digests.object(i, "sha256").hex() for i in data_ids},
            tuple(signatures))
