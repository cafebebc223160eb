"""Changing an OpenPGP key without changing its fingerprint: extend its expiry, revoke it.

Both add signatures to the key and keep its key material, so every image signature it made stays
valid (``reissue`` for PGP sets) or stops being accepted at a known moment (revocation). The
private key is unlocked only for the call; the result is still protected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.errors import KeyMaterialError
from lifecycle.integrity.pgp import quiet
from lifecycle.integrity.pgp_validity import PgpRevocationReason, expiry_at, revocation_at

with quiet():
    import pgpy
    from pgpy.constants import HashAlgorithm, KeyFlags, RevocationReason, SignatureType

_REASONS = {PgpRevocationReason.NOT_SPECIFIED: RevocationReason.NotSpecified,
            PgpRevocationReason.SUPERSEDED: RevocationReason.Superseded,
            PgpRevocationReason.COMPROMISED: RevocationReason.Compromised,
            PgpRevocationReason.RETIRED: RevocationReason.Retired}


@contextmanager
def _unlocked(key: Any, passphrase: str) -> Iterator[None]:
    if key.is_public:
        raise KeyMaterialError(f"PGP key {key.fingerprint.keyid} has no secret part here")
    try:
        unlocking = key.unlock(passphrase)
        unlocking.__enter__()
    except pgpy.errors.PGPDecryptionError as exc:
        raise KeyMaterialError(f"cannot unlock PGP key {key.fingerprint.keyid}: wrong "
                               "passphrase") from exc
    try:
        yield
    finally:
        unlocking.__exit__(None, None, None)


def extend_expiry(key: Any, passphrase: str, expires: datetime, *, now: datetime) -> Any:
    """Add self-signatures made at ``now`` that move the key's expiry to ``expires``.

    Every user ID gets a new positive certification carrying the preferences of its current one,
    and every subkey a new binding signature, so verifiers (gpg, go-crypto) that read the newest
    self-signature see the new date. The key is changed in place and returned.
    """
    if expires <= now:
        raise KeyMaterialError(f"new expiry {expires:%Y-%m-%d} is not after {now:%Y-%m-%d}")
    if revocation_at(key) is not None:
        raise KeyMaterialError(f"PGP key {key.fingerprint.keyid} is revoked; it cannot be "
                               "extended")
    created = now.astimezone(UTC).replace(microsecond=0)  # OpenPGP times are whole seconds
    expires = expires.replace(microsecond=0)
    lifetime = expires - key.created.replace(tzinfo=UTC)
    with _unlocked(key, passphrase), quiet():
        for uid in list(key.userids):
            current = uid.selfsig
            prefs: dict[str, Any] = {"key_expiration": lifetime, "created": created,
                                     "hash": HashAlgorithm.SHA256}
            if current is not None:
                prefs |= {"usage": set(current.key_flags), "hashes": list(current.hashprefs),
                          "ciphers": list(current.cipherprefs),
                          "compression": list(current.compprefs)}
            uid |= key.certify(uid, SignatureType.Positive_Cert, **prefs)
        for subkey in list(key.subkeys.values()):
            binding = next((s for s in reversed(list(subkey._signatures))
                            if s.type is SignatureType.Subkey_Binding), None)
            usage = set(binding.key_flags) if binding is not None else set()
            subkey |= _binding(key, subkey, usage, expires - subkey.created.replace(tzinfo=UTC),
                               created)
    found = expiry_at(key, now)
    if found is None or abs((found - expires).total_seconds()) > 1:
        raise KeyMaterialError(f"extending PGP key {key.fingerprint.keyid} did not take effect")
    return key


def _binding(key: Any, subkey: Any, usage: set[Any], lifetime: timedelta, created: datetime
             ) -> Any:
    """A subkey binding signature with a key expiration time (pgpy's ``bind`` drops it), with
    the subkey's cross-signature when it may sign (RFC 9580 5.2.1)."""
    sig = pgpy.PGPSignature.new(SignatureType.Subkey_Binding, key.key_algorithm,
                                HashAlgorithm.SHA256, key.fingerprint.keyid, created=created)
    if usage:
        sig._signature.subpackets.addnew("KeyFlags", hashed=True, flags=usage)
    sig._signature.subpackets.addnew("KeyExpirationTime", hashed=True, expires=lifetime)
    if KeyFlags.Sign in usage or not usage:
        cross = subkey.bind(key, created=created, hash=HashAlgorithm.SHA256)
        sig._signature.subpackets.addnew("EmbeddedSignature", hashed=False,
                                         _sig=cross._signature)
    return key._sign(subkey, sig)


def revoke(key: Any, passphrase: str, reason: PgpRevocationReason, *, now: datetime,
           comment: str = "") -> Any:
    """Add a key revocation signature made at ``now`` with ``reason``; in place, returned."""
    if revocation_at(key) is not None:
        raise KeyMaterialError(f"PGP key {key.fingerprint.keyid} is already revoked")
    with _unlocked(key, passphrase), quiet():
        sig = key.revoke(key, reason=_REASONS[reason], comment=comment,
                         created=now.astimezone(UTC), hash=HashAlgorithm.SHA256)
        key |= sig
    return key
