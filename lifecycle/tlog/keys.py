"""The log key at rest: an Ed25519 key encrypted with a passphrase, with its note key name.

File format (JSON)::

    {"type": "sif-lifecycle/tlog-key", "version": 1, "name": "<note key name>",
     "private_key": "<PKCS#8 PEM, encrypted with the passphrase>"}

The private key never touches disk unencrypted; an empty passphrase is refused.
"""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from lifecycle.errors import KeyMaterialError
from lifecycle.pki.keys import encrypt_private_key
from lifecycle.tlog.note import NoteSigner

KEY_TYPE = "sif-lifecycle/tlog-key"


def encrypt_signer(signer: NoteSigner, passphrase: bytes) -> bytes:
    if not passphrase:
        raise KeyMaterialError("an empty passphrase cannot protect the log key")
    pem = encrypt_private_key(signer.private_key, passphrase)
    doc = {"type": KEY_TYPE, "version": 1, "name": signer.name, "private_key": pem.decode()}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def decrypt_signer(data: bytes, passphrase: bytes, *, path: str = "") -> NoteSigner:
    try:
        doc = json.loads(data)
        if doc["type"] != KEY_TYPE or doc["version"] != 1:
            raise ValueError
        name, pem = str(doc["name"]), str(doc["private_key"]).encode()
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise KeyMaterialError(
            "not a sif-lifecycle log key file", path=path or None, hint="made by 'tlog init'"
        ) from None
    try:
        key = load_pem_private_key(pem, passphrase)
    except (ValueError, TypeError):
        raise KeyMaterialError(
            "cannot decrypt the log key",
            path=path or None,
            hint="check SIF_LIFECYCLE_PASSPHRASE",
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyMaterialError("the log key is not an Ed25519 key", path=path or None)
    return NoteSigner(name, key)
