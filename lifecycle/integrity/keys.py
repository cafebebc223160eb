"""Key material for signing and verifying, detected from the file's content.

One ``--key`` option takes any of: a PEM private key (signs DSSE), a PEM public key or X.509
certificate (verifies DSSE), an armored PGP private key (clear-signs) or public key/keyring
(verifies PGP). Encrypted keys ask a passphrase source; secrets are never logged or kept longer
than needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ed25519

from lifecycle.errors import KeyMaterialError
from lifecycle.files import read_key
from lifecycle.integrity.dsse import keyid
from lifecycle.integrity.keycodec import Encoding, PublicFormat, load_pem_private_key, load_pem_public_key

if TYPE_CHECKING:
    from lifecycle.integrity.dsse import PublicKey, SigningKey

PassphraseSource = Callable[[str], bytes]
"""Given the file that needs it, returns the passphrase (or raises KeyMaterialError)."""



def no_passphrase(path: str) -> bytes:
    raise KeyMaterialError(
        "key is encrypted",
        path=path,
        hint="set SIF_LIFECYCLE_PASSPHRASE or pass --passphrase-file",
    )


class VerifierKey(NamedTuple):
    """A DSSE public key and where it came from (its label names it in results)."""

    label: str
    key: PublicKey

    @property
    def keyid(self) -> str:
        return keyid(self.key)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)


def key_fingerprint(key: PublicKey) -> str:
    """SHA-256 of the key's SubjectPublicKeyInfo DER: the same key whatever file, certificate
    or keyid it came with, so a threshold counts keys, not copies."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "spki:" + hashlib.sha256(der).hexdigest()


class KeySet:
    """Everything given for a verification: DSSE public keys and a PGP keyring.

    (A plain class: a dataclass's generated methods cost start-up time, docs/performance.md.)
    """

    __slots__ = ("dsse", "pgp", "pgp_labels")

    def __init__(self, dsse: list[VerifierKey] | None = None) -> None:
        self.dsse: list[VerifierKey] = dsse if dsse is not None else []
        self.pgp: list[Any] = []
        self.pgp_labels: dict[str, str] = {}
        """Primary fingerprint -> file it came from."""

    def label_for_fingerprint(self, fpr: str) -> str:
        return self.pgp_labels.get(fpr, fpr)

    def merge(self, other: KeySet) -> None:
        self.dsse += other.dsse
        self.pgp += other.pgp
        self.pgp_labels.update(other.pgp_labels)


SUPPORTED_KEYS = "RSA, ECDSA on P-256, P-384 or P-521, or Ed25519"
"""What DSSE signatures (and their OpenSSH key ids, spec 5.4) can be made and checked with."""

_DSSE_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def _checked_public(key: object, path: Path) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # not for an Ed25519 check

    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _DSSE_CURVES:
        raise KeyMaterialError(f"unsupported key: ECDSA on curve {key.curve.name}; use {SUPPORTED_KEYS}",
                               path=path)
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    raise KeyMaterialError(f"unsupported key type {type(key).__name__}; use {SUPPORTED_KEYS}", path=path)


def load_verifier_keys(path: Path) -> KeySet:
    """Public material from a PEM public key, PEM private key, certificate or PGP key file."""
    return parse_verifier_keys(read_key(path), path)


def parse_verifier_keys(data: bytes, path: Path) -> KeySet:
    """:func:`load_verifier_keys` for bytes already read (e.g. from a bundle); ``path`` labels them."""
    keys = KeySet()
    if b"-----BEGIN PGP" in data:
        from lifecycle.integrity import pgp  # the PGP parser: only for PGP material

        for key in pgp.load_keys(data.decode("utf-8", "replace"), str(path)):
            public = key if key.is_public else key.pubkey
            keys.pgp.append(public)
            keys.pgp_labels[pgp.fingerprint(public)] = str(path)
        return keys
    if b"-----BEGIN CERTIFICATE-----" in data:
        from cryptography import x509  # X.509 parsing costs start-up time: only for certificates

        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise KeyMaterialError(f"unreadable certificate: {exc}", path=path) from None
        keys.dsse.append(VerifierKey(str(path), _checked_public(cert.public_key(), path)))
        return keys
    if b"PRIVATE KEY-----" in data:
        private = load_signing_key(path, no_passphrase)
        keys.dsse.append(VerifierKey(str(path), private.public_key()))
        return keys
    try:
        public = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(
            f"not a PEM public key, certificate or armored PGP key ({exc})", path=path
        ) from None
    keys.dsse.append(VerifierKey(str(path), _checked_public(public, path)))
    return keys


def parse_private_key(data: bytes, password: bytes | None, *, path: Path | str) -> SigningKey:
    """The one PEM private-key parser (PKCS#8 or traditional, encrypted or not); errors name
    the file, the reason and what to do."""
    try:
        key = load_pem_private_key(data, password or None)
    except TypeError as exc:
        hint = "give the passphrase" if not password else "this key is not encrypted"
        raise KeyMaterialError(f"cannot load private key: {exc}", path=path, hint=hint) from None
    except ValueError:
        reason = ("wrong passphrase or corrupt key" if b"ENCRYPTED" in data
                  else "not a valid PEM private key")
        raise KeyMaterialError(f"cannot load private key: {reason}", path=path) from None
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        _checked_public(key.public_key(), Path(path))
        return key
    raise KeyMaterialError(f"unsupported key type {type(key).__name__}; use {SUPPORTED_KEYS}", path=path)


def load_signing_key(path: Path, passphrase: PassphraseSource) -> SigningKey:
    """A PEM private key file usable for DSSE; the passphrase is asked only if it is encrypted."""
    data = read_key(path)
    return parse_private_key(data, passphrase(str(path)) if b"ENCRYPTED" in data else None,
                             path=path)


class PgpSigningKey(NamedTuple):
    """An armored PGP secret key, unlocked only for the moment of signing."""

    key: Any
    passphrase: bytes | None
    source: str

    @property
    def fingerprint(self) -> str:
        from lifecycle.integrity import pgp

        return pgp.fingerprint(self.key)

    def sign(self, text: bytes, created: Any) -> bytes:
        from lifecycle.integrity import pgp

        if self.key.is_protected:
            assert self.passphrase is not None
            with pgp.quiet(), self.key.unlock(self.passphrase.decode()):
                return pgp.encode(text, self.key, created)
        return pgp.encode(text, self.key, created)


def load_pgp_signing_key(path: Path, passphrase: PassphraseSource) -> PgpSigningKey:
    from lifecycle.integrity import pgp

    keys = pgp.load_keys(read_key(path).decode("utf-8", "replace"), str(path))
    secret = [k for k in keys if not k.is_public]
    if not secret:
        raise KeyMaterialError("PGP key file holds no private key", path=path)
    key = secret[0]
    password: bytes | None = None
    if key.is_protected:
        password = passphrase(str(path))
        try:
            with pgp.quiet(), key.unlock(password.decode()):
                pass
        except Exception:  # pgpy raises PGPDecryptionError; any failure means unusable
            raise KeyMaterialError("wrong passphrase for PGP key", path=path) from None
    return PgpSigningKey(key, password, str(path))


def is_pgp_file(path: Path) -> bool:
    return b"-----BEGIN PGP" in read_key(path)
