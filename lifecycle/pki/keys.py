"""PEM signing keys: generation, encryption at rest, loading, fingerprints and DSSE key ids.

Private keys only ever leave memory as PKCS#8 encrypted with the store passphrase
(``BestAvailableEncryption``); nothing here logs key material or passphrases.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lifecycle.config import KeyAlgorithm as KeyAlgorithm  # moved down: the config names it
from lifecycle.errors import KeyMaterialError
from lifecycle.integrity import dsse

PrivateKey = dsse.SigningKey
PublicKey = dsse.PublicKey


def generate_private_key(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.RSA3072:
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm is KeyAlgorithm.RSA4096:
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    if algorithm is KeyAlgorithm.P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is KeyAlgorithm.P384:
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def algorithm_of(key: PrivateKey | PublicKey) -> KeyAlgorithm:
    """Name a key's algorithm; refuses sizes and curves outside the supported set."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size in (3072, 4096):
            return KeyAlgorithm(f"rsa{key.key_size}")
        raise KeyMaterialError(f"RSA key size {key.key_size} is not supported (use 3072 or 4096)")
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        curves = {"secp256r1": KeyAlgorithm.P256, "secp384r1": KeyAlgorithm.P384}
        if key.curve.name in curves:
            return curves[key.curve.name]
        raise KeyMaterialError(f"curve {key.curve.name} is not supported (use P-256 or P-384)")
    return KeyAlgorithm.ED25519


def encrypt_private_key(key: PrivateKey, passphrase: bytes) -> bytes:
    """PKCS#8 PEM encrypted with the best algorithm ``cryptography`` offers."""
    if not passphrase:
        raise KeyMaterialError("an empty passphrase would leave the key unprotected; set one")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def load_private_key(data: bytes, passphrase: bytes | None, *, path: Path | str) -> PrivateKey:
    """Parse a PEM private key (encrypted or not); errors name the file and the reason."""
    try:
        key = serialization.load_pem_private_key(data, passphrase or None)
    except TypeError as exc:
        hint = "give the passphrase" if passphrase is None else "this key is not encrypted"
        raise KeyMaterialError(f"cannot load private key: {exc}", path=path, hint=hint) from exc
    except ValueError as exc:
        reason = "wrong passphrase" if b"ENCRYPTED" in data else "not a valid PEM private key"
        raise KeyMaterialError(f"cannot load private key: {reason}", path=path) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(f"unsupported key type {type(key).__name__}", path=path)
    algorithm_of(key)
    return key


def load_public_key(data: bytes, *, path: Path | str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyMaterialError("not a valid PEM public key", path=path) from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise KeyMaterialError(f"unsupported key type {type(key).__name__}", path=path)
    algorithm_of(key)
    return key


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: PublicKey) -> str:
    """SHA-256 over the DER SubjectPublicKeyInfo, hex: stable across certificates for one key."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def dsse_keyid(key: PublicKey) -> str:
    """The keyid DSSE envelopes carry for this key (spec 5.4), from the integrity layer."""
    return dsse.keyid(key)
