"""A directory of private keys, each file encrypted at rest and named by its fingerprint.

PEM keys are PKCS#8 under the store passphrase; PGP keys stay armored and pgpy-protected. Imports
are re-encrypted under the store passphrase, so one secret unlocks the store. The directory is
0700 and every file 0600, written atomically. A PEM file written with weaker parameters (older
versions used 2,048 PBKDF2 iterations) is rewritten with the current ones on its next unlock.

Unlocking costs ~0.2 s of key derivation, so an unlocked key is kept for the process, keyed by
the file's exact bytes and a keyed digest of the passphrase: a changed file or another
passphrase unlocks afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pgpy
from pgpy.constants import HashAlgorithm, SymmetricKeyAlgorithm

from lifecycle.clock import utc_now
from lifecycle.errors import KeyMaterialError
from lifecycle.files import read_key
from lifecycle.integrity.pgp import armored_key_blocks, quiet
from lifecycle.pki import keys, pgp
from lifecycle.pki.files import write_atomic

MAX_CACHED_KEYS = 256
_CACHE_SECRET = os.urandom(32)
_unlocked: dict[tuple[str, bytes, bytes], keys.PrivateKey] = {}


@dataclass(frozen=True)
class StoredKey:
    """What the store records about a key file (never the secret itself)."""

    kind: Literal["pem", "pgp"]
    algorithm: str
    fingerprint: str
    dsse_keyid: str
    file: str
    public: bytes
    created_at: datetime
    user_id: str | None = None
    expires_at: datetime | None = None


class KeyDirectory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, file: str) -> Path:
        return self.root / file

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def save_pem(self, key: keys.PrivateKey, passphrase: bytes) -> StoredKey:
        public = key.public_key()
        fingerprint = keys.fingerprint(public)
        file = f"{fingerprint}.key.pem"
        data = keys.encrypt_private_key(key, passphrase)
        self._prepare()
        write_atomic(self.path(file), data)
        return StoredKey("pem", keys.algorithm_of(key).value, fingerprint,
                         keys.dsse_keyid(public), file, keys.public_pem(public),
                         utc_now())

    def save_pgp(self, key: pgpy.PGPKey) -> StoredKey:
        if key.is_public or not key.is_protected:
            raise KeyMaterialError("only passphrase-protected PGP private keys are stored")
        fingerprint = pgp.pgp_fingerprint(key)
        file = f"{fingerprint}.pgp.asc"
        self._prepare()
        write_atomic(self.path(file), str(key).encode())
        algorithm = "ed25519" if key.key_algorithm.name == "EdDSA" else f"rsa{key.key_size}"
        user_id = str(key.userids[0].userid) if key.userids else None
        return StoredKey("pgp", algorithm, fingerprint, "", file, pgp.pgp_public_armor(key),
                         key.created.replace(tzinfo=UTC), user_id, pgp.pgp_expiry(key))

    def load_pem(self, file: str, passphrase: bytes) -> keys.PrivateKey:
        path = self.path(file)
        data = read_key(path)
        cache_key = (str(path), hashlib.sha256(data).digest(),
                     hmac.digest(_CACHE_SECRET, passphrase, "sha256"))  # fmt: skip
        if (key := _unlocked.get(cache_key)) is not None:
            return key
        key = keys.load_private_key(data, passphrase, path=path)
        if keys.weak_encryption(data) is not None:
            data = keys.encrypt_private_key(key, passphrase)
            write_atomic(path, data)
            cache_key = (cache_key[0], hashlib.sha256(data).digest(), cache_key[2])
        if len(_unlocked) >= MAX_CACHED_KEYS:
            _unlocked.clear()
        _unlocked[cache_key] = key
        return key

    def load_pgp(self, file: str) -> pgpy.PGPKey:
        path = self.path(file)
        return pgp.load_pgp_key(read_key(path), path=path)

    def remove(self, file: str) -> None:
        self.path(file).unlink(missing_ok=True)


def import_pem(data: bytes, source_passphrase: bytes | None, *, path: Path) -> keys.PrivateKey:
    """Parse a user's PEM private key, decrypting with its own passphrase when it has one."""
    return keys.load_private_key(data, source_passphrase if b"ENCRYPTED" in data else None,
                                 path=path)


def import_pgp(data: bytes, passphrase: str, *, path: Path) -> pgpy.PGPKey:
    key = pgp.load_pgp_key(data, path=path)
    if key.is_public:
        raise KeyMaterialError("this is a PGP public key; import the private (secret) key",
                               path=path)
    pgp.check_pgp_passphrase(key, passphrase, path=path)
    return key


def load_keyring(data: bytes, *, path: Path) -> list[pgpy.PGPKey]:
    """Every primary key in an OpenPGP keyring: binary (``~/.singularity/sypgp/pgp-secret``,
    ``key export``) or armored, one or several blocks, each holding one or several keys."""
    blocks: list[bytes | str] = [data]
    if b"-----BEGIN PGP" in data:
        blocks = [*armored_key_blocks(data.decode("ascii", "replace"))]
    found: dict[str, pgpy.PGPKey] = {}
    for block in blocks or [data]:
        try:
            with quiet():
                _, loaded = pgpy.PGPKey.from_blob(block)
        except Exception as exc:  # pgpy raises many types on malformed input
            raise KeyMaterialError(f"not an OpenPGP keyring: {str(exc)[:200]}", path=path) from None
        for key in loaded.values():
            if key.is_primary:
                found.setdefault(pgp.pgp_fingerprint(key), key)
    if not found:
        raise KeyMaterialError("not an OpenPGP keyring: no key in it", path=path)
    return list(found.values())


def import_pgp_keyring(data: bytes, passphrase: str, *, path: Path,
                       source_passphrase: str | None = None,
                       only: Sequence[str] = ()) -> list[pgpy.PGPKey]:
    """The secret keys of a singularity/apptainer keyring, protected under ``passphrase``.

    A key protected with another passphrase is unlocked with ``source_passphrase`` and
    re-protected; an unprotected one is protected. ``only`` (fingerprints) picks some keys; one
    missing, a keyring without secret keys or a key that does not unlock is an error before
    anything is stored.
    """
    if not passphrase:
        raise KeyMaterialError("an empty store passphrase would leave the PGP keys unprotected")
    keys = load_keyring(data, path=path)
    secret = [k for k in keys if not k.is_public]
    if not secret:
        raise KeyMaterialError(
            f"no secret key in this keyring ({len(keys)} public key(s))", path=path,
            hint="import the secret keyring (~/.singularity/sypgp/pgp-secret, or "
                 "'singularity key export --secret')")
    if only:
        wanted = [w.replace(" ", "").upper() for w in only]
        by_fpr = {pgp.pgp_fingerprint(k): k for k in secret}
        missing = [w for w in wanted if w not in by_fpr]
        if missing:
            raise KeyMaterialError(f"no secret key {missing[0]} in this keyring (it has "
                                   f"{', '.join(by_fpr)})", path=path)
        secret = [by_fpr[w] for w in dict.fromkeys(wanted)]
    for key in secret:
        _protect_under(key, passphrase, source_passphrase, path)
    return secret


def _protect_under(key: pgpy.PGPKey, passphrase: str, source: str | None, path: Path) -> None:
    fpr = pgp.pgp_fingerprint(key)
    if not key.is_protected:
        key.protect(passphrase, SymmetricKeyAlgorithm.AES256, HashAlgorithm.SHA256)
        return
    for candidate in (passphrase, source):
        if candidate is None:
            continue
        try:
            with quiet(), key.unlock(candidate):
                if candidate != passphrase:
                    key.protect(passphrase, SymmetricKeyAlgorithm.AES256, HashAlgorithm.SHA256)
            return
        except pgpy.errors.PGPDecryptionError:
            continue
    raise KeyMaterialError(f"cannot unlock PGP key {fpr}: wrong passphrase", path=path,
                           hint="give its own passphrase with --source-passphrase-file")
