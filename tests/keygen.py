"""Test key material: PEM keys of every supported type and pgpy PGP keys, written to files."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import (
        CompressionAlgorithm,
        EllipticCurveOID,
        HashAlgorithm,
        KeyFlags,
        PubKeyAlgorithm,
        SymmetricKeyAlgorithm,
    )


def new_private_key(kind: str) -> Any:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_pem_pair(
    directory: Path, name: str, kind: str, passphrase: bytes | None = None
) -> tuple[Path, Path]:
    """(private, public) PEM files; the private key is PKCS#8, encrypted when a passphrase is given."""
    key = new_private_key(kind)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def new_pgp_key(kind: str = "ed25519", name: str = "Test Signer", expires: timedelta | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "ed25519":
            key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
        else:
            key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
        uid = pgpy.PGPUID.new(name, email="signer@example.org")
        key.add_uid(
            uid,
            usage={KeyFlags.Sign, KeyFlags.Certify},
            hashes=[HashAlgorithm.SHA256],
            ciphers=[SymmetricKeyAlgorithm.AES256],
            compression=[CompressionAlgorithm.Uncompressed],
            key_expiration=expires,
        )
    return key


def write_pgp_pair(directory: Path, name: str, kind: str = "ed25519", passphrase: str | None = None,
                   expires: timedelta | None = None) -> tuple[Path, Path]:  # fmt: skip
    """(secret, public) armored files of a new PGP key, the secret one protected if asked."""
    key = new_pgp_key(kind, name, expires)
    public = directory / f"{name}.pub.asc"
    public.write_text(str(key.pubkey))
    if passphrase:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key.protect(passphrase, SymmetricKeyAlgorithm.AES256, HashAlgorithm.SHA256)
    secret = directory / f"{name}.asc"
    secret.write_text(str(key))
    return secret, public
