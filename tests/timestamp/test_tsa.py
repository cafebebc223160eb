"""The local TSA over HTTP, our client, and the verdict on the tokens it issues."""

from __future__ import annotations

import hashlib
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import tsp
from cryptography import x509
from rfc3161_client import PKIStatus, decode_timestamp_response
from sqlmodel import select

from lifecycle.errors import TimestampError
from lifecycle.store.ca_service import TSA
from lifecycle.store.db import session_scope
from lifecycle.store.models import TsaSerialRecord
from lifecycle.store.tsa_service import SERIAL_BLOCK, SerialSource, local_tsa
from lifecycle.timestamp.client import Timestamper, TsaClient, check_reply
from lifecycle.timestamp.proof import TsaTrust, check_token
from tests.timestamp.conftest import LocalTsa


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Content-Type"] == "application/timestamp-reply"
        return bytes(answer.read())


def test_token_from_the_local_tsa_proves_the_time(local: LocalTsa) -> None:
    token = TsaClient(local.url).timestamp(b"signature bytes")
    check = check_token(token, b"signature bytes", local.trust())
    assert check.ok, check.error
    unproven = check_token(token, b"signature bytes", TsaTrust((local.root,)))
    assert "no usable revocation data" in unproven.error  # hard-fail: the TSA chain's CRLs
    assert check.tsa.endswith("sif-lifecycle Timestamping Authority")
    info = tsp.TimeStampResp.load(token)["time_stamp_token"]["content"]["encap_content_info"][
        "content"].parsed
    assert info["accuracy"]["seconds"].native == 1


def test_tsa_certificate_is_dedicated_and_its_key_encrypted(local: LocalTsa) -> None:
    cert = local.store.ca.certificate(TSA)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
    assert cert.issuer == local.intermediate.subject
    pems = [p.read_bytes() for p in (local.store.directory / "keys").rglob("*") if p.is_file()]
    assert pems and all(b"PRIVATE KEY-----" not in p or b"ENCRYPTED" in p for p in pems)


def test_serials_only_grow_across_restarts(local: LocalTsa) -> None:
    first = [local.authority.next_serial() for _ in range(3)]
    again = SerialSource(local.store.ca)  # a restarted server reserves the next block
    assert first == sorted(first) and again() > first[-1]
    with session_scope(local.store.ca.engine) as session:
        row = session.exec(select(TsaSerialRecord)).one()
    assert row.next_serial == first[0] + 2 * SERIAL_BLOCK


def test_certificate_is_reissued_once_expired(local: LocalTsa) -> None:
    old = local.store.ca.certificate(TSA)
    later = old.not_valid_after_utc + timedelta(days=1)
    local_tsa(local.store.ca, lambda: later)
    assert local.store.ca.certificate(TSA).serial_number != old.serial_number


@pytest.mark.parametrize("body", [b"\x30\x03\x02\x01\x01", b"not der", b"\x30" * 100])
def test_garbage_requests_get_a_rejection_not_an_error(local: LocalTsa, body: bytes) -> None:
    reply = decode_timestamp_response(_post(local.url, body))
    assert reply.status == PKIStatus.REJECTION


def test_get_is_refused(local: LocalTsa) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(local.url, timeout=10)
    assert caught.value.code == 405


def test_client_checks_nonce_and_imprint(local: LocalTsa) -> None:
    token = TsaClient(local.url).timestamp(b"abc")
    nonce = tsp.TimeStampResp.load(token)["time_stamp_token"]["content"]["encap_content_info"][
        "content"].parsed["nonce"].native
    assert check_reply(token, nonce, b"abc", source="t") == token
    with pytest.raises(TimestampError, match="another nonce"):
        check_reply(token, nonce + 1, b"abc", source="t")
    with pytest.raises(TimestampError, match="other data"):
        check_reply(token, nonce, b"abd", source="t")
    with pytest.raises(TimestampError, match="not a DER"):
        check_reply(b"\x00garbage", nonce, b"abc", source="t")


def test_policy_needs_enough_answers(local: LocalTsa) -> None:
    both = Timestamper.for_urls([local.url, "http://127.0.0.1:9/tsa"], required=1, timeout=2)
    assert len(both(b"x")) == 1
    strict = Timestamper.for_urls([local.url, "http://127.0.0.1:9/tsa"], required=2, timeout=2)
    with pytest.raises(TimestampError, match="1 of the 2 timestamps"):
        strict(b"x")


def test_imprint_is_sha256_of_the_data(local: LocalTsa) -> None:
    token = TsaClient(local.url).timestamp(b"payload")
    info = tsp.TimeStampResp.load(token)["time_stamp_token"]["content"]["encap_content_info"][
        "content"].parsed
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(b"payload").digest()


def test_track_timestamps_new_images_signatures(local: LocalTsa, tmp_path: Path) -> None:
    """``track`` with ``[timestamp] urls``: untimestamped signatures of a newly tracked image
    gain a token (only their extension changes) and the image is registered as it is then."""
    from click.testing import CliRunner

    from lifecycle.cli.main import cli
    from lifecycle.sif import create_image, json_spec, partition_spec
    from lifecycle.sign import sign, signer_for
    from lifecycle.timestamp.proof import proven_times
    from lifecycle.verify import TrustMaterial, verify
    from tests.keygen import write_pem_pair

    private, public = write_pem_pair(tmp_path, "k", "ecdsa")
    image = create_image(tmp_path / "a.sif", [partition_spec(b"hsqs" + bytes(64)),
                                              json_spec({"a": 1})])
    sign(image, signer=signer_for([private]))
    before = verify(image, TrustMaterial(keys=(public,)))
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\npath = "t.db"\n[timestamp]\nurls = ["{local.url}"]\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    tracked = runner.invoke(cli, ["track", "--config", str(config), str(image)])
    assert tracked.exit_code == 0, tracked.output
    assert "timestamped 1 signature(s)" in tracked.output
    (proven,) = proven_times(image, local.trust())
    assert proven.at is not None, proven.rejected
    assert verify(image, TrustMaterial(keys=(public,))).ok and before.ok
    again = runner.invoke(cli, ["track", "--config", str(config), str(image)])
    assert "timestamped" not in again.output  # known image: nothing is added
