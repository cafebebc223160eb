"""Extending and revoking OpenPGP keys, and judging them at a time (``verify --at``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.errors import KeyMaterialError
from lifecycle.integrity import pgp as clearsign
from lifecycle.integrity.pgp_validity import PgpRevocationReason, expiry_at, revocation_at
from lifecycle.pki.pgp import PgpAlgorithm, generate_pgp_key, load_pgp_key, pgp_fingerprint
from lifecycle.pki.pgp_maintenance import extend_expiry, revoke

T0 = datetime(2027, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def new_key(algorithm: PgpAlgorithm = PgpAlgorithm.ED25519):  # type: ignore[no-untyped-def]
    return generate_pgp_key(algorithm, "Set <set@example.org>", "pw", expires=T0 + 90 * DAY, now=T0)


def reloaded(key):  # type: ignore[no-untyped-def]
    """Through the armored form, as the store and a keyserver hold it."""
    return load_pgp_key(str(key).encode(), path="k.asc")


@pytest.mark.parametrize("algorithm", [PgpAlgorithm.ED25519, PgpAlgorithm.RSA4096])
def test_extension_keeps_the_fingerprint_and_moves_the_expiry(algorithm: PgpAlgorithm) -> None:
    key = new_key(algorithm)
    fingerprint = pgp_fingerprint(key)
    assert key.created.replace(tzinfo=UTC) == T0
    key = reloaded(extend_expiry(key, "pw", T0 + 240 * DAY, now=T0 + 60 * DAY))
    assert pgp_fingerprint(key) == fingerprint
    assert key.is_protected
    assert expiry_at(key) == T0 + 240 * DAY
    assert expiry_at(key, T0 + 59 * DAY) == T0 + 90 * DAY  # as it was before the extension
    assert expiry_at(key, T0 + 61 * DAY) == T0 + 240 * DAY


def test_signature_verifies_after_the_first_expiry_only_once_extended() -> None:
    key = new_key()
    with key.unlock("pw"):
        signed = clearsign.decode(clearsign.encode(b'{"v":1}', key, T0 + DAY))
    public = reloaded(key).pubkey
    assert not clearsign.verify(signed, [public], at=T0 + 100 * DAY).ok
    extended = reloaded(extend_expiry(key, "pw", T0 + 240 * DAY, now=T0 + 60 * DAY)).pubkey
    assert clearsign.verify(signed, [extended], at=T0 + 100 * DAY).ok
    late = clearsign.verify(signed, [extended], at=T0 + 241 * DAY)
    assert not late.ok and "expired" in late.error


def test_superseded_counts_from_its_time_compromised_always() -> None:
    key = new_key()
    with key.unlock("pw"):
        signed = clearsign.decode(clearsign.encode(b"x", key, T0 + DAY))
    superseded = reloaded(revoke(reloaded(key), "pw", PgpRevocationReason.SUPERSEDED,
                                 now=T0 + 30 * DAY)).pubkey
    assert revocation_at(superseded) == (T0 + 30 * DAY, PgpRevocationReason.SUPERSEDED)
    assert clearsign.verify(signed, [superseded], at=T0 + 29 * DAY).ok
    after = clearsign.verify(signed, [superseded], at=T0 + 31 * DAY)
    assert not after.ok and "superseded" in after.error
    compromised = reloaded(revoke(reloaded(key), "pw", PgpRevocationReason.COMPROMISED,
                                  now=T0 + 30 * DAY)).pubkey
    early = clearsign.verify(signed, [compromised], at=T0 + 2 * DAY)
    assert not early.ok and "compromised" in early.error


def test_refusals() -> None:
    key = new_key()
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        extend_expiry(key, "nope", T0 + 200 * DAY, now=T0)
    with pytest.raises(KeyMaterialError, match="not after"):
        extend_expiry(key, "pw", T0, now=T0 + DAY)
    with pytest.raises(KeyMaterialError, match="no secret part"):
        extend_expiry(key.pubkey, "pw", T0 + 200 * DAY, now=T0)
    revoke(key, "pw", PgpRevocationReason.SUPERSEDED, now=T0 + DAY)
    with pytest.raises(KeyMaterialError, match="revoked"):
        extend_expiry(key, "pw", T0 + 200 * DAY, now=T0 + 2 * DAY)
    with pytest.raises(KeyMaterialError, match="already revoked"):
        revoke(key, "pw", PgpRevocationReason.COMPROMISED, now=T0 + 2 * DAY)


def test_verify_at_an_earlier_time_with_a_key_expired_by_the_real_clock() -> None:
    """pgpy alone refuses keys expired now; ``verify --at`` must judge the time asked."""
    past = datetime(2020, 1, 1, tzinfo=UTC)
    key = generate_pgp_key(PgpAlgorithm.ED25519, "Old <old@example.org>", "pw",
                           expires=past + 30 * DAY, now=past)
    with key.unlock("pw"):
        signed = clearsign.decode(clearsign.encode(b"x", key, past + DAY))
    public = reloaded(key).pubkey
    assert clearsign.verify(signed, [public], at=past + 2 * DAY).ok
    late = clearsign.verify(signed, [public], at=past + 31 * DAY)
    assert not late.ok and "expired" in late.error
    with key.unlock("pw"):
        forged = clearsign.decode(clearsign.encode(b"y", key, past + DAY))
    tampered = clearsign.ClearSigned(b"x", forged.packet)
    assert not clearsign.verify(tampered, [public], at=past + 2 * DAY).ok
