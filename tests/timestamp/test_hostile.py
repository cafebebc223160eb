"""Tokens from TSAs whose certificate lacks the EKU, or had expired at genTime: rejected."""

from __future__ import annotations

import itertools
from datetime import timedelta

from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from lifecycle.pki import ca, keys
from lifecycle.timestamp.authority import TimestampAuthority, TsaIdentity
from lifecycle.timestamp.proof import TsaTrust, check_token
from tests.pki.conftest import MemoryCa

DATA = b"the signature bytes"


def _token(authority: TimestampAuthority) -> bytes:
    request = TimestampRequestBuilder().data(DATA).hash_algorithm(HashAlgorithm.SHA256).build()
    return authority.respond(request.as_bytes())


def _authority(memory_ca: MemoryCa, cert_for: str, at_offset: timedelta) -> TimestampAuthority:
    key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    start = memory_ca.now - timedelta(days=10)
    issue = ca.issue_timestamping if cert_for == "tsa" else ca.issue_code_signing
    cert = issue(memory_ca.inter, memory_ca.inter_key, key.public_key(), ca.name("Hostile TSA"),
                 not_before=start, lifetime=timedelta(days=5), urls=ca.CaUrls())
    serials = itertools.count(1)
    return TimestampAuthority(TsaIdentity(key, cert, (memory_ca.inter,)), lambda: next(serials),
                              lambda: start + at_offset)


def test_tsa_certificate_without_timestamping_eku(memory_ca: MemoryCa) -> None:
    token = _token(_authority(memory_ca, "code-signing", timedelta(days=1)))
    check = check_token(token, DATA, TsaTrust((memory_ca.root,), revocation="soft-fail"))
    assert not check.ok and "lacks the critical, sole extended key usage timeStamping" in \
        check.error


def test_tsa_certificate_expired_at_gen_time(memory_ca: MemoryCa) -> None:
    token = _token(_authority(memory_ca, "tsa", timedelta(days=6)))
    check = check_token(token, DATA, TsaTrust((memory_ca.root,), revocation="soft-fail"))
    assert not check.ok and "was not valid at the token's genTime" in check.error, check.error


def test_valid_token_from_the_same_setup(memory_ca: MemoryCa) -> None:
    token = _token(_authority(memory_ca, "tsa", timedelta(days=1)))
    check = check_token(token, DATA, TsaTrust((memory_ca.root,), revocation="soft-fail"))
    assert check.ok, check.error
    assert check.gen_time == memory_ca.now - timedelta(days=9)
