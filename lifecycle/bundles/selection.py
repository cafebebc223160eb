"""Which keys a bundle carries for an image set: named keys, or the keys that signed given images.

Only signature objects are read (never image data): a DSSE envelope names its signers' keyids,
a PGP signature descriptor records its signer's fingerprint (spec: ``SignatureEntity``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lifecycle.errors import BundleError, LifecycleError
from lifecycle.integrity import dsse
from lifecycle.sif.image import SifImage


def image_signers(path: Path) -> set[str]:
    """DSSE keyids and PGP fingerprints of every signature in the SIF image at ``path``."""
    found: set[str] = set()
    try:
        with SifImage.open(path) as image:
            for desc in (d for d in image.objects if d.is_signature):
                data = image.read_signature(desc)
                if dsse.is_dsse(data):
                    found.update(s.keyid for s in dsse.parse_envelope(data).signatures if s.keyid)
                elif any(desc.signature_entity):
                    found.add(desc.signature_entity.hex())
    except LifecycleError as exc:
        raise BundleError(f"cannot read the image's signatures: {exc}", path=path) from None
    return found


def resolve(items: Iterable[str]) -> set[str]:
    """Key identifiers for ``--images``: each item is a key id, a SIF image, or a directory of them."""
    keys: set[str] = set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            images = sorted(path.rglob("*.sif"))
            if not images:
                raise BundleError("no *.sif images in this directory", path=path)
            for image in images:
                keys |= image_signers(image)
        elif path.is_file():
            keys |= image_signers(path)
        else:
            keys.add(item)
    return keys
