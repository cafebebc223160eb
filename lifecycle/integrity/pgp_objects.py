"""Removing one signer's PGP clear-sign objects from an image, never a group's last signature.

A PGP key signs each group with an object of its own (the descriptor's signature entity is the
key's fingerprint), so dropping a retired key's signatures deletes whole objects. A group whose
only signature objects are the key's is refused: it would be left unsigned.
"""

from __future__ import annotations

from lifecycle.errors import SigningError
from lifecycle.sif import SifImage


def remove_pgp_signatures(path: str, fingerprint: str) -> list[int]:
    """Delete the signature objects of the PGP key ``fingerprint``; the ids deleted."""
    entity = bytes.fromhex(fingerprint)[:20]
    with SifImage.open(path, writable=True) as image:
        signatures = [d for d in image.objects if d.is_signature]
        drop = [d for d in signatures if d.signature_entity == entity]
        for desc in drop:
            others = [d for d in signatures if d.linked_raw == desc.linked_raw
                      and d.signature_entity != entity]
            if not others:
                raise SigningError(
                    f"signature object {desc.id} is the only signature of group "
                    f"{desc.linked_group}; removing it would leave the group unsigned",
                    path=path, hint="sign the image with a current key first")
        if drop:
            image.delete([d.id for d in drop])
        return [d.id for d in drop]
