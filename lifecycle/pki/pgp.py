"""OpenPGP signing keys (pgpy): RSA and EdDSA, one user ID, optional expiry, always protected.

These are the keys stock ``singularity sign`` uses from a keyring; we keep them armored and
protected on disk and export the public part for ``gpg --import`` or a keyserver.
"""

from __future__ import annotations

import enum
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

from cryptography.utils import CryptographyDeprecationWarning

# pgpy still reaches for ciphers that cryptography moved to "decrepit"; users need not see that.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pgpy(\.|$)")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import pgpy
from pgpy.constants import (  # noqa: E402
    CompressionAlgorithm,
    EllipticCurveOID,
    HashAlgorithm,
    KeyFlags,
    PubKeyAlgorithm,
    SymmetricKeyAlgorithm,
)

from lifecycle.clock import utc_now  # noqa: E402
from lifecycle.errors import KeyMaterialError  # noqa: E402
from lifecycle.integrity.pgp_validity import expiry_at  # noqa: E402

_USER_ID = re.compile(
    r"^\s*(?P<name>[^<(]*?)\s*(?:\((?P<comment>[^)]*)\))?\s*(?:<(?P<email>[^>]+)>)?\s*$"
)


class PgpAlgorithm(enum.StrEnum):
    RSA3072 = "rsa3072"
    RSA4096 = "rsa4096"
    ED25519 = "ed25519"


def generate_pgp_key(
    algorithm: PgpAlgorithm, user_id: str, passphrase: str, *, expires: datetime | None = None,
    now: datetime | None = None,
) -> pgpy.PGPKey:
    """A sign+certify primary key with ``user_id`` ("Name (comment) <email>"), protected.

    ``now`` (default: the clock) is its creation time and that of its self-signature."""
    if not passphrase:
        raise KeyMaterialError("an empty passphrase would leave the PGP key unprotected; set one")
    match = _USER_ID.match(user_id)
    if match is None or not (match["name"] or match["email"]):
        raise KeyMaterialError(f"user ID {user_id!r} is not of the form 'Name <email>'")
    created = (now or utc_now()).astimezone(UTC).replace(microsecond=0)
    if algorithm is PgpAlgorithm.ED25519:
        key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519, created=created)
    else:
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, int(algorithm.value[3:]),
                              created=created)
    uid = pgpy.PGPUID.new(match["name"] or "", comment=match["comment"] or "",
                          email=match["email"] or "")
    extra: dict[str, object] = {"created": created}
    if expires is not None:
        expires = expires.replace(microsecond=0)  # OpenPGP times are whole seconds
        if expires <= created:
            raise KeyMaterialError(f"expiry {expires.isoformat()} is in the past")
        extra["key_expiration"] = expires - created
    key.add_uid(
        uid,
        usage={KeyFlags.Sign, KeyFlags.Certify},
        hashes=[HashAlgorithm.SHA256, HashAlgorithm.SHA512],
        ciphers=[SymmetricKeyAlgorithm.AES256],
        compression=[CompressionAlgorithm.Uncompressed],
        **extra,
    )
    key.protect(passphrase, SymmetricKeyAlgorithm.AES256, HashAlgorithm.SHA256)
    return key


def load_pgp_key(data: bytes, *, path: Path | str) -> pgpy.PGPKey:
    """Parse an armored or binary PGP key (public or private)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key, _ = pgpy.PGPKey.from_blob(data)
    except (ValueError, TypeError, NotImplementedError, pgpy.errors.PGPError) as exc:
        raise KeyMaterialError(f"not a valid OpenPGP key: {exc}", path=path) from exc
    if not isinstance(key, pgpy.PGPKey):
        raise KeyMaterialError("not a valid OpenPGP key", path=path)
    return key


def check_pgp_passphrase(key: pgpy.PGPKey, passphrase: str, *, path: Path | str) -> None:
    """Refuse unprotected private keys and wrong passphrases before anything is stored."""
    if key.is_public:
        return
    if not key.is_protected:
        raise KeyMaterialError("PGP private key is not passphrase-protected", path=path,
                               hint="protect it with gpg --edit-key ... passwd first")
    try:
        with key.unlock(passphrase):
            pass
    except pgpy.errors.PGPDecryptionError as exc:
        raise KeyMaterialError("cannot unlock PGP key: wrong passphrase", path=path) from exc


def sign_detached(key: pgpy.PGPKey, passphrase: str, data: bytes) -> str:
    """An armored detached signature over ``data``: what ``gpg --verify sig data`` checks."""
    with key.unlock(passphrase):
        return str(key.sign(data, hash=HashAlgorithm.SHA256))


def pgp_fingerprint(key: pgpy.PGPKey) -> str:
    return str(key.fingerprint).replace(" ", "")


def pgp_expiry(key: pgpy.PGPKey) -> datetime | None:
    """The expiry its newest self-signature states (None: never expires)."""
    return expiry_at(key)


def pgp_public_armor(key: pgpy.PGPKey) -> bytes:
    return str(key.pubkey if not key.is_public else key).encode()


def pgp_content_digest(key: pgpy.PGPKey) -> str:
    """What a keyserver must hold for the public key to be current: a digest of its packets
    (new self-signatures, binding signatures and revocations all change it)."""
    import hashlib

    public = key if key.is_public else key.pubkey
    return hashlib.sha256(bytes(public)).hexdigest()[:16]
