"""Adopting keys that already sign a fleet: make them an image set's active keys as they are.

A site that signs with ``singularity sign`` already has keys and signed images. Importing its
keyring with an image set makes each key one of the set's keys and active at once, so tracking
the images finds them signed by the set's key (``ok``) and nothing is re-signed first.
"""

from __future__ import annotations

from datetime import datetime

from lifecycle.inventory.fleet import link_key
from lifecycle.model.key_state import KeyState
from lifecycle.store.key_service import KeyService
from lifecycle.store.models import KeyRecord

_SECRET_KEY_TAG, _PUBLIC_KEY_TAG = 5, 6


def looks_like_pgp(data: bytes) -> bool:
    """Armored, or a binary packet stream that starts with a (secret or public) key packet."""
    if data.lstrip().startswith(b"-----BEGIN PGP"):
        return True
    if not data or not data[0] & 0x80:
        return False
    tag = data[0] & 0x3F if data[0] & 0x40 else (data[0] >> 2) & 0x0F
    return tag in (_SECRET_KEY_TAG, _PUBLIC_KEY_TAG)


def adopt_key(service: KeyService, row: KeyRecord, image_set: str, now: datetime) -> None:
    """Link ``row`` to ``image_set`` and make it active at ``now`` (it signs already)."""
    link_key(service.engine, image_set, row.id or 0, now)
    service.transition(row.fingerprint, KeyState.ACTIVE,
                       f"imported into image set {image_set}: it already signs its images", at=now)
