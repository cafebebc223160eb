"""PEM signing keys: generation, encryption at rest, loading, fingerprints and DSSE key ids.

Private keys only ever leave memory as PKCS#8 encrypted with the store passphrase: PBES2 with
PBKDF2-HMAC-SHA256 at 600,000 iterations and AES-256-CBC (``cryptography``'s
``BestAvailableEncryption`` uses 2,048 iterations and offers no knob for PKCS#8). Files written
with weaker parameters are detected (:func:`weak_encryption`) and rewritten on the next unlock.
Nothing here logs key material or passphrases.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from asn1crypto import algos, core
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from lifecycle.config import KeyAlgorithm as KeyAlgorithm  # moved down: the config names it
from lifecycle.errors import KeyMaterialError
from lifecycle.integrity import dsse
from lifecycle.integrity.keys import parse_private_key

PrivateKey = dsse.SigningKey
PublicKey = dsse.PublicKey

PBKDF2_ITERATIONS = 600_000
"""OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about 0.2 s per unlock on one core."""
MIN_PASSPHRASE_LENGTH = 12


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


def check_new_passphrase(passphrase: bytes, source: str) -> None:
    """Refuse a passphrase too short to protect a NEW store or key; ``source`` names its origin."""
    length = len(passphrase.decode("utf-8", "replace"))
    if length < MIN_PASSPHRASE_LENGTH:
        raise KeyMaterialError(
            f"the passphrase from {source} has {length} characters; a new key store or key "
            f"needs at least {MIN_PASSPHRASE_LENGTH}",
            hint=f"choose a longer passphrase (e.g. four random words) and set it in {source}",
        )


def encrypt_private_key(key: PrivateKey, passphrase: bytes) -> bytes:
    """PKCS#8 PEM, PBES2: PBKDF2-HMAC-SHA256 (:data:`PBKDF2_ITERATIONS`), AES-256-CBC.

    OpenSSL, ``cryptography`` and Go's pkcs8 readers all decrypt it.
    """
    if not passphrase:
        raise KeyMaterialError("an empty passphrase would leave the key unprotected; set one")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())  # fmt: skip
    salt, iv = os.urandom(16), os.urandom(16)
    secret = PBKDF2HMAC(hashes.SHA256(), 32, salt, PBKDF2_ITERATIONS).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    kdf = {"salt": algos.Pbkdf2Salt(name="specified", value=core.OctetString(salt)),
           "iteration_count": PBKDF2_ITERATIONS, "prf": {"algorithm": "sha256"}}  # fmt: skip
    info = asn1_keys.EncryptedPrivateKeyInfo({
        "encryption_algorithm": {"algorithm": "pbes2", "parameters": {
            "key_derivation_func": {"algorithm": "pbkdf2", "parameters": kdf},
            "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": core.OctetString(iv)},
        }},
        "encrypted_data": sealed,
    })  # fmt: skip
    return bytes(asn1_pem.armor("ENCRYPTED PRIVATE KEY", info.dump()))


def weak_encryption(data: bytes) -> str | None:
    """Why a PEM key file is protected more weakly than :func:`encrypt_private_key` writes it.

    None when it is as strong: PBES2 with PBKDF2-HMAC-SHA256 at >= :data:`PBKDF2_ITERATIONS`
    or with scrypt. Anything unrecognised counts as weak, so it gets rewritten.
    """
    try:
        _, _, der = asn1_pem.unarmor(data)
        algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
        if algorithm["algorithm"].native != "pbes2":
            return f"{algorithm['algorithm'].native} encryption"
        kdf = algorithm["parameters"]["key_derivation_func"]
        if kdf["algorithm"].native == "scrypt":
            return None
        rounds = kdf["parameters"]["iteration_count"].native
        prf = kdf["parameters"]["prf"]["algorithm"].native
    except (ValueError, TypeError, KeyError):
        return "encryption this tool does not write"
    if prf != "sha256" or rounds < PBKDF2_ITERATIONS:
        return f"PBKDF2-HMAC-{prf.upper()} with {rounds} iterations"
    return None


def load_private_key(data: bytes, passphrase: bytes | None, *, path: Path | str) -> PrivateKey:
    """:func:`~lifecycle.integrity.keys.parse_private_key`, for a key the CA supports."""
    key = parse_private_key(data, passphrase, path=path)
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
