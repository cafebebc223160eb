"""The public-key encodings a verification needs, without cryptography's SSH and cipher modules.

``cryptography.hazmat.primitives.serialization`` loads its OpenSSH support and through it every
cipher module: about a tenth of a small verification's start-up (docs/performance.md). The PEM
loaders and format enums here are the very objects that package exports, taken from where it
takes them (tests/unit/test_keycodec.py checks that they are the same, so an upgrade that moves
them fails there; an install where they moved falls back to the package). The OpenSSH public-key
blob, the one thing DSSE key ids (spec 5.4) need from the SSH module, is encoded here from its
RFCs and checked against cryptography's own for every key type.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519

try:
    from cryptography.hazmat.bindings._rust import openssl as _openssl
    from cryptography.hazmat.primitives._serialization import Encoding, PublicFormat

    load_pem_public_key = _openssl.keys.load_pem_public_key
    load_pem_private_key = _openssl.keys.load_pem_private_key
except (ImportError, AttributeError):  # pragma: no cover - another cryptography layout
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
        load_pem_public_key,
    )

if TYPE_CHECKING:
    from lifecycle.integrity.dsse import PublicKey

__all__ = ["Encoding", "PublicFormat", "load_pem_private_key", "load_pem_public_key", "ssh_public_blob"]

_SSH_CURVES = {"secp256r1": "nistp256", "secp384r1": "nistp384", "secp521r1": "nistp521"}


def _string(data: bytes) -> bytes:
    """An SSH ``string``: a 32-bit big-endian length, then the bytes (RFC 4251, 5)."""
    return struct.pack(">I", len(data)) + data


def _mpint(value: int) -> bytes:
    """An SSH ``mpint`` of a non-negative integer: minimal big-endian, with a leading zero byte
    when the top bit is set (RFC 4251, 5)."""
    return _string(value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b"")


def ssh_public_blob(key: PublicKey) -> bytes:
    """The key in the SSH wire format that OpenSSH fingerprints: RFC 8709 (Ed25519), RFC 4253
    6.6 (RSA), RFC 5656 3.1 (ECDSA)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _string(b"ssh-ed25519") + _string(key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # not for an Ed25519 key

    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return _string(b"ssh-rsa") + _mpint(numbers.e) + _mpint(numbers.n)
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _SSH_CURVES:
        curve = _SSH_CURVES[key.curve.name].encode()
        point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return _string(b"ecdsa-sha2-" + curve) + _string(curve) + _string(point)
    raise ValueError(f"no OpenSSH encoding for {type(key).__name__}")
