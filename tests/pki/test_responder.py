"""The OCSP responder's cache (RFC 5019 pre-signing), error answers, and CRL republishing."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from lifecycle.pki import ca, keys
from lifecycle.service.http import RevocationSource, RunningServer, start_http
from lifecycle.store.ca_service import INTERMEDIATE, CaService, CaSettings
from lifecycle.store.key_service import KeyService
from tests.pki.conftest import PASSPHRASE, URLS, StoreCa


def _request(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    built = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    return built.public_bytes(serialization.Encoding.DER)


def _leaf(env: StoreCa) -> x509.Certificate:
    row = env.keys.generate(keys.KeyAlgorithm.P256, PASSPHRASE)
    return env.ca.issue(row.fingerprint, "Cached", timedelta(days=30)).certificate


def test_answers_are_presigned_and_replaced_on_revocation(store_ca: StoreCa) -> None:
    source = RevocationSource(store_ca.ca, recheck_seconds=3600)
    leaf = _leaf(store_ca)
    request = _request(leaf, store_ca.ca.certificate(INTERMEDIATE))
    first = source.ocsp(request)
    assert source.ocsp(request) == first  # same signed bytes: served from the cache
    store_ca.ca.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.key_compromise)
    after = ocsp.load_der_ocsp_response(source.ocsp(request))
    assert after.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason == x509.ReasonFlags.key_compromise


def test_foreign_issuer_is_unauthorized_and_garbage_is_malformed(store_ca: StoreCa) -> None:
    source = RevocationSource(store_ca.ca)
    other_key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    other = ca.build_root(other_key, ca.name("Other"), not_before=datetime.now(UTC),
                          lifetime=timedelta(days=1))
    leaf = _leaf(store_ca)
    answer = ocsp.load_der_ocsp_response(source.ocsp(_request(leaf, other)))
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    garbage = ocsp.load_der_ocsp_response(source.ocsp(b"\x30\x03junk"))
    assert garbage.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.fixture
def server(store_ca: StoreCa) -> Iterator[RunningServer]:
    running = start_http(RevocationSource(store_ca.ca), "127.0.0.1", 0)
    yield running
    running.stop()


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/nothing", None, 404),
    ("GET", "/ocsp/%%%not-base64", None, 400),
    ("POST", "/crl/root.crl", b"x", 404),
    ("POST", "/ocsp", b"", 413),
])
def test_http_errors(server: RunningServer, method: str, path: str, body: bytes | None,
                     status: int) -> None:
    request = urllib.request.Request(f"{server.url}{path}", data=body, method=method)
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=10)
    assert failure.value.code == status


def test_ca_certificates_are_served_for_aia(store_ca: StoreCa, server: RunningServer) -> None:
    with urllib.request.urlopen(f"{server.url}/ca/intermediate.crt", timeout=10) as answer:
        cert = x509.load_der_x509_certificate(answer.read())
    assert cert == store_ca.ca.certificate(INTERMEDIATE)


def test_crl_is_republished_after_half_its_lifetime(store_ca: StoreCa) -> None:
    now = [datetime.now(UTC)]
    clocked = CaService(KeyService(store_ca.keys.engine, store_ca.directory / "keys",
                                   clock=lambda: now[0]),
                        PASSPHRASE, CaSettings(urls=URLS, crl_lifetime=timedelta(days=2)))

    def number(der: bytes) -> int:
        crl = x509.load_der_x509_crl(der)
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    first = clocked.publish_crl(INTERMEDIATE, force=True)
    now[0] += timedelta(hours=23)
    assert clocked.publish_crl(INTERMEDIATE) == first
    now[0] += timedelta(hours=2)
    fresh = clocked.publish_crl(INTERMEDIATE)
    assert number(fresh) == number(first) + 1
    assert x509.load_der_x509_crl(fresh).next_update_utc == (
        now[0] + timedelta(days=2)).replace(microsecond=0)


def test_non_numeric_content_length_is_a_bad_request_not_a_crash(server: RunningServer) -> None:
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        answer = http.client.HTTPResponse(conn)  # the whole answer, however it is split in sends
        answer.begin()
        assert answer.status == 400
        assert json.loads(answer.read())["error"].endswith("Content-Length is invalid")
    with urllib.request.urlopen(server.url + "/ca/root.crt", timeout=10) as response:
        assert response.status == 200  # the server is still serving
