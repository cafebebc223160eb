"""What an attacker does to a signed image: strip its signatures, change its data, sign it again."""

from __future__ import annotations

from pathlib import Path

from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.pki import keys as pki_keys
from lifecycle.pki.keys import KeyAlgorithm
from lifecycle.sif import SifImage


def strip_and_modify(path: Path) -> None:
    """``sif del`` every signature object, then change bytes of the first data object."""
    with SifImage.open(path, writable=True) as image:
        signatures = [d.id for d in image.objects if d.is_signature]
        data = next(d for d in image.objects if not d.is_signature)
        image.delete(signatures)
        offset = data.offset + data.size - 1
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def resign_foreign(path: Path) -> None:
    """Strip, modify and sign with a key nobody trusts."""
    strip_and_modify(path)
    sign_image(str(path), DsseSigner((pki_keys.generate_private_key(KeyAlgorithm.P256),)),
               SignOptions())
