"""Point-in-time validation of code-signing certificates (pyhanko-certvalidator underneath)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lifecycle.errors import CertificateError, CertificateValidationError
from lifecycle.pki import ca, keys
from lifecycle.pki.crl import RevokedEntry
from lifecycle.pki.validate import signed_before_compromise, validate_signing_certificate
from tests.pki.conftest import URLS, MemoryCa

DAY = timedelta(days=1)


def test_valid_now_returns_the_leaf_key_and_full_path(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30)
    result = validate_signing_certificate(leaf, [memory_ca.inter], [memory_ca.root],
                                          crls=memory_ca.crls())
    assert result.public_key == leaf.public_key()
    assert result.path == (leaf, memory_ca.inter, memory_ca.root)


def test_expired_now_but_valid_at_signing_time(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - 100 * DAY, days=30)
    args = ([memory_ca.inter], [memory_ca.root])
    with pytest.raises(CertificateValidationError, match="expired"):
        validate_signing_certificate(leaf, *args, at=memory_ca.now, crls=memory_ca.crls())
    result = validate_signing_certificate(leaf, *args, at=memory_ca.now - 90 * DAY,
                                          crls=memory_ca.crls())
    assert result.at == memory_ca.now - 90 * DAY


def test_not_yet_valid(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30)
    with pytest.raises(CertificateValidationError, match="not yet valid"):
        validate_signing_certificate(leaf, [memory_ca.inter], [memory_ca.root],
                                     at=memory_ca.now - 2 * DAY, crls=memory_ca.crls())


def test_revoked_after_signing_time_still_valid_before_it(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - 60 * DAY, days=365)
    crls = memory_ca.crls([RevokedEntry(leaf.serial_number, memory_ca.now - 10 * DAY,
                                        x509.ReasonFlags.superseded)])
    args = ([memory_ca.inter], [memory_ca.root])
    validate_signing_certificate(leaf, *args, at=memory_ca.now - 20 * DAY, crls=crls)
    with pytest.raises(CertificateValidationError, match="revoked"):
        validate_signing_certificate(leaf, *args, at=memory_ca.now - 5 * DAY, crls=crls)


def test_compromise_invalidity_date_moves_the_cutoff_back(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - 60 * DAY, days=365)
    crls = memory_ca.crls([RevokedEntry(leaf.serial_number, memory_ca.now - 10 * DAY,
                                        x509.ReasonFlags.key_compromise,
                                        memory_ca.now - 30 * DAY)])
    args = ([memory_ca.inter], [memory_ca.root])
    validate_signing_certificate(leaf, *args, at=memory_ca.now - 31 * DAY, crls=crls)
    with pytest.raises(CertificateValidationError, match="compromised since"):
        validate_signing_certificate(leaf, *args, at=memory_ca.now - 20 * DAY, crls=crls)


def test_signed_before_compromise_rule() -> None:
    from datetime import UTC, datetime

    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    assert signed_before_compromise(t0 - timedelta(seconds=1), t0)
    assert not signed_before_compromise(t0, t0)
    assert not signed_before_compromise(t0 + DAY, t0)
    assert signed_before_compromise(t0, None)


def test_wrong_eku_is_refused(memory_ca: MemoryCa) -> None:
    public = keys.generate_private_key(keys.KeyAlgorithm.P256).public_key()
    ocsp_cert = ca.issue_ocsp_signer(memory_ca.inter, memory_ca.inter_key, public,
                                     ca.name("not a signer"), not_before=memory_ca.now - DAY,
                                     lifetime=30 * DAY)
    assert ExtendedKeyUsageOID.CODE_SIGNING not in ocsp_cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    with pytest.raises(CertificateError, match="not a code-signing certificate"):
        validate_signing_certificate(ocsp_cert, [memory_ca.inter], [memory_ca.root],
                                     crls=memory_ca.crls())


def test_broken_chain_without_intermediate(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30)
    with pytest.raises(CertificateValidationError, match="no chain to a trusted root"):
        validate_signing_certificate(leaf, [], [memory_ca.root], crls=memory_ca.crls())


def test_untrusted_root(memory_ca: MemoryCa) -> None:
    other_key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    other = ca.build_root(other_key, ca.name("Other Root"), not_before=memory_ca.now - DAY,
                          lifetime=30 * DAY)
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30)
    with pytest.raises(CertificateValidationError):
        validate_signing_certificate(leaf, [memory_ca.inter], [other], crls=memory_ca.crls())


def test_stale_crl_fails_hard(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - 60 * DAY, days=365)
    stale = memory_ca.crls(this_update=memory_ca.now - 20 * DAY,
                           next_update=memory_ca.now - 13 * DAY)
    with pytest.raises(CertificateValidationError, match="stale"):
        validate_signing_certificate(leaf, [memory_ca.inter], [memory_ca.root], crls=stale)


def test_hard_fail_without_revocation_data_soft_fail_passes(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30)
    args = ([memory_ca.inter], [memory_ca.root])
    with pytest.raises(CertificateValidationError, match="revocation"):
        validate_signing_certificate(leaf, *args, revocation_mode="hard-fail")
    assert validate_signing_certificate(leaf, *args, revocation_mode="soft-fail").leaf == leaf


def test_reissued_certificate_same_key_each_valid_in_its_window(memory_ca: MemoryCa) -> None:
    key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    old = memory_ca.leaf(start=memory_ca.now - 100 * DAY, days=60, public=key.public_key())
    new = ca.reissue(memory_ca.inter, memory_ca.inter_key, old,
                     not_before=memory_ca.now - 45 * DAY, lifetime=90 * DAY, urls=URLS)
    assert new.public_key() == old.public_key() and new.subject == old.subject
    assert new.serial_number != old.serial_number
    args = ([memory_ca.inter], [memory_ca.root])
    crls = memory_ca.crls()
    r_old = validate_signing_certificate(old, *args, at=memory_ca.now - 90 * DAY, crls=crls)
    r_new = validate_signing_certificate(new, *args, at=memory_ca.now, crls=crls)
    assert r_old.public_key == r_new.public_key == key.public_key()
    with pytest.raises(CertificateValidationError):
        validate_signing_certificate(new, *args, at=memory_ca.now - 90 * DAY, crls=crls)


def test_naive_time_is_refused(memory_ca: MemoryCa) -> None:
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30)
    with pytest.raises(CertificateError, match="timezone"):
        validate_signing_certificate(leaf, [memory_ca.inter], [memory_ca.root],
                                     at=memory_ca.now.replace(tzinfo=None))


def test_third_party_rsa2048_leaf_validates(memory_ca: MemoryCa) -> None:
    """Key sizes we would not generate are still fine to verify with (spec 5.3: RSA any size)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.generate_private_key(65537, 2048).public_key()
    leaf = memory_ca.leaf(start=memory_ca.now - DAY, days=30, public=public)
    result = validate_signing_certificate(leaf, [memory_ca.inter], [memory_ca.root],
                                          crls=memory_ca.crls())
    assert result.public_key == public
