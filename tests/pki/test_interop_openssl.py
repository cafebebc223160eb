"""openssl as the independent judge of our chains, CRLs and OCSP responder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lifecycle.config import OcspResponderMode
from lifecycle.pki import keys
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.validate import validate_signing_certificate
from lifecycle.service.http import RevocationSource, RunningServer, start_http
from lifecycle.store.ca_service import INTERMEDIATE, OCSP, ROOT, CaService, CaSettings
from tests.pki.conftest import PASSPHRASE, URLS, StoreCa, run, tool

pytestmark = pytest.mark.interop


def _pem_crl(data: bytes) -> bytes:
    return x509.load_der_x509_crl(data).public_bytes(serialization.Encoding.PEM)


def _files(env: StoreCa, leaf: x509.Certificate) -> list[str]:
    root = env.write("root.pem", certificate_pem(env.ca.certificate(ROOT)))
    inter = env.write("inter.pem", certificate_pem(env.ca.certificate(INTERMEDIATE)))
    crls = env.ca.publish_crls()
    crl = env.write("all.crl", _pem_crl(crls[ROOT]) + _pem_crl(crls[INTERMEDIATE]))
    cert = env.write("leaf.pem", certificate_pem(leaf))
    return ["-CAfile", str(root), "-untrusted", str(inter), "-crl_check_all", "-CRLfile",
            str(crl), str(cert)]


def _issue(env: StoreCa, days: int = 30) -> x509.Certificate:
    row = env.keys.generate(keys.KeyAlgorithm.P256, PASSPHRASE)
    return env.ca.issue(row.fingerprint, "Interop Signer", timedelta(days=days)).certificate


def test_openssl_verify_accepts_chain_and_crls_then_rejects_revoked(store_ca: StoreCa) -> None:
    openssl = tool("openssl")
    leaf = _issue(store_ca)
    ok = run(openssl, "verify", "-purpose", "any", *_files(store_ca, leaf))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith(": OK")
    store_ca.ca.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.key_compromise)
    bad = run(openssl, "verify", *_files(store_ca, leaf))
    assert bad.returncode != 0
    assert "certificate revoked" in (bad.stdout + bad.stderr)


def test_reissued_certificate_passes_openssl_with_the_same_key(store_ca: StoreCa) -> None:
    openssl = tool("openssl")
    leaf = _issue(store_ca)
    new = store_ca.ca.reissue(f"{leaf.serial_number:x}", timedelta(days=60)).certificate
    assert new.public_key() == leaf.public_key()
    result = run(openssl, "verify", *_files(store_ca, new))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(params=list(OcspResponderMode))
def responder(store_ca: StoreCa, request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """``serve``'s endpoints in each responder mode: the issuing CA's own key, or delegated."""
    store_ca.ca = CaService(store_ca.keys, PASSPHRASE,
                            CaSettings(urls=URLS, ocsp_responder=request.param))
    # recheck 0: a revocation through another CaService (another process) shows at once
    running = start_http(RevocationSource(store_ca.ca, recheck_seconds=0), "127.0.0.1", 0)
    yield running
    running.stop()


def _ocsp(env: StoreCa, server: RunningServer, *target: str, issuer: str = INTERMEDIATE) -> str:
    openssl = tool("openssl")
    root = env.write("root.pem", certificate_pem(env.ca.certificate(ROOT)))
    inter = env.write("inter.pem", certificate_pem(env.ca.certificate(INTERMEDIATE)))
    result = run(openssl, "ocsp", "-issuer", str(root if issuer == ROOT else inter), *target,
                 "-url", f"{server.url}/ocsp", "-CAfile", str(root), "-verify_other", str(inter),
                 "-no_nonce")
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr, result.stderr
    return result.stdout


def test_openssl_ocsp_good_revoked_unknown(store_ca: StoreCa, responder: RunningServer) -> None:
    leaf = _issue(store_ca)
    cert = str(store_ca.write("leaf.pem", certificate_pem(leaf)))
    assert re.search(r"leaf\.pem: good", _ocsp(store_ca, responder, "-cert", cert))
    store_ca.ca.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.key_compromise)
    revoked = _ocsp(store_ca, responder, "-cert", cert)
    assert "leaf.pem: revoked" in revoked
    assert "Reason: keyCompromise" in revoked
    assert re.search(r"Revocation Time: \w+ +\d+ [\d:]+ \d{4} GMT", revoked)
    assert "0x1234: unknown" in _ocsp(store_ca, responder, "-serial", "0x1234")


def test_openssl_ocsp_accepts_the_roots_answer_for_the_intermediate(
    store_ca: StoreCa, responder: RunningServer
) -> None:
    inter = str(store_ca.write("inter.pem", certificate_pem(store_ca.ca.certificate(INTERMEDIATE))))
    assert re.search(r"inter\.pem: good", _ocsp(store_ca, responder, "-cert", inter, issuer=ROOT))


def test_ocsp_get_and_who_signs_the_response(
    store_ca: StoreCa, responder: RunningServer
) -> None:
    import base64
    import urllib.parse
    import urllib.request

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    leaf = _issue(store_ca)
    inter = store_ca.ca.certificate(INTERMEDIATE)
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, inter, hashes.SHA256()).build()
    encoded = urllib.parse.quote(base64.b64encode(
        request.public_bytes(serialization.Encoding.DER)).decode(), safe="")
    with urllib.request.urlopen(f"{responder.url}/ocsp/{encoded}", timeout=10) as answer:
        assert answer.headers["Content-Type"] == "application/ocsp-response"
        response = ocsp.load_der_ocsp_response(answer.read())
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial_number
    if store_ca.ca.settings.ocsp_responder is OcspResponderMode.DELEGATED:
        assert response.certificates == [store_ca.ca.certificate(OCSP)]
    else:  # the issuing CA itself, nothing embedded: what stock --ocsp-verify accepts
        assert response.certificates == []
        assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(
            inter.public_key()).digest  # type: ignore[arg-type]
    # the same answer, judged by our validator as live OCSP evidence
    result = validate_signing_certificate(
        leaf, [inter], [store_ca.ca.certificate(ROOT)], fetch_ocsp=False,
        ocsp_responses=[response.public_bytes(serialization.Encoding.DER)],
        crls=[store_ca.ca.publish_crl(ROOT)])
    assert result.leaf == leaf


def test_crl_download_matches_store(store_ca: StoreCa, responder: RunningServer) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{responder.url}/crl/intermediate.crl", timeout=10) as answer:
        body = answer.read()
    crl = x509.load_der_x509_crl(body)
    assert crl.issuer == store_ca.ca.certificate(INTERMEDIATE).subject
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1
    assert crl.next_update_utc is not None


def test_live_ocsp_fetch_with_hard_fail(store_ca: StoreCa, responder: RunningServer) -> None:
    from lifecycle.errors import CertificateValidationError
    from lifecycle.pki.ca import CaUrls
    from lifecycle.store.ca_service import CaService, CaSettings

    live = CaService(store_ca.keys, PASSPHRASE, CaSettings(urls=CaUrls(
        ocsp_url=f"{responder.url}/ocsp", root_crl_url=f"{responder.url}/crl/root.crl")))
    row = store_ca.keys.generate(keys.KeyAlgorithm.ED25519, PASSPHRASE)
    leaf = live.issue(row.fingerprint, "Live", timedelta(days=30)).certificate
    chain = ([live.certificate(INTERMEDIATE)], [live.certificate(ROOT)])
    root_crl = [live.publish_crl(ROOT)]
    with pytest.raises(CertificateValidationError, match="revocation"):
        validate_signing_certificate(leaf, *chain, crls=root_crl, revocation_mode="require")
    assert validate_signing_certificate(leaf, *chain, crls=root_crl, fetch_ocsp=True,
                                        revocation_mode="require").leaf == leaf
    live.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.key_compromise)
    with pytest.raises(CertificateValidationError, match="revoked"):
        validate_signing_certificate(leaf, *chain, crls=root_crl, fetch_ocsp=True)
