"""Stock ``singularity``/``apptainer verify --ocsp-verify`` against our CA, judged by the Go
program tests/interop/stockocsp (crypto/x509 + golang.org/x/crypto/ocsp, the stock rules).

The certificates name ``127.0.0.1:9`` (URLS) as their responder; ``-via`` sends the POST to the
test server on its free port instead, with the URL's path and Host header."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from lifecycle.clock import utc_now
from lifecycle.config import OcspResponderMode
from lifecycle.errors import CertificateValidationError
from lifecycle.pki import keys
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.ocsp import OcspResponder, error_response
from lifecycle.pki.validate import fetch_ocsp_response, validate_signing_certificate
from lifecycle.service.http import RevocationSource, RunningServer, start_http
from lifecycle.store import migrate
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from tests.pki.conftest import PASSPHRASE, URLS, StoreCa

pytestmark = pytest.mark.interop
Run = Callable[..., subprocess.CompletedProcess[str]]


def serve(authority: CaService) -> RunningServer:
    return start_http(RevocationSource(authority, recheck_seconds=0), "127.0.0.1", 0)


@pytest.fixture
def server(store_ca: StoreCa) -> Iterator[RunningServer]:
    running = serve(store_ca.ca)
    yield running
    running.stop()


def chain_files(env: StoreCa, leaf: x509.Certificate, authority: CaService | None = None,
                ) -> list[str | Path]:
    authority = authority or env.ca
    name = f"{leaf.serial_number:x}"
    return ["-leaf", env.write(f"{name}.pem", certificate_pem(leaf)),
            "-intermediates", env.write("inter.pem", certificate_pem(
                authority.certificate(INTERMEDIATE))),
            "-roots", env.write("root.pem", certificate_pem(authority.certificate(ROOT)))]


def issue(authority: CaService, env: StoreCa, algorithm: keys.KeyAlgorithm) -> x509.Certificate:
    row = env.keys.generate(algorithm, PASSPHRASE)
    return authority.issue(row.fingerprint, f"Stock {algorithm}", timedelta(days=30)).certificate


def address(server: RunningServer) -> str:
    return server.url.removeprefix("http://")


def test_stock_rules_accept_leaves_and_intermediate_then_reject_a_revoked_leaf(
        stockocsp: Run, store_ca: StoreCa, server: RunningServer) -> None:
    leaves = [issue(store_ca.ca, store_ca, a) for a in (keys.KeyAlgorithm.ED25519,
                                                        keys.KeyAlgorithm.P256)]
    for leaf in leaves:
        result = stockocsp(*chain_files(store_ca, leaf), "-via", address(server))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "x509 ok: 3 certificates, code signing" in result.stdout
        assert result.stdout.count("ocsp ok:") == 2  # the leaf and the intermediate
        assert "ocsp ok: sif-lifecycle Signing CA" in result.stdout
    store_ca.ca.revoke(f"{leaves[0].serial_number:x}", x509.ReasonFlags.key_compromise)
    revoked = stockocsp(*chain_files(store_ca, leaves[0]), "-via", address(server))
    assert revoked.returncode == 1
    assert "FAIL ocsp Stock ed25519: certificate revoked at" in revoked.stdout
    assert stockocsp(*chain_files(store_ca, leaves[1]), "-via", address(server)).returncode == 0


def test_stock_rules_reject_a_delegated_responder(stockocsp: Run, store_ca: StoreCa) -> None:
    delegated = CaService(store_ca.keys, PASSPHRASE,
                          CaSettings(urls=URLS, ocsp_responder=OcspResponderMode.DELEGATED))
    leaf = issue(delegated, store_ca, keys.KeyAlgorithm.ED25519)
    running = serve(delegated)
    try:
        result = stockocsp(*chain_files(store_ca, leaf), "-via", address(running))
    finally:
        running.stop()
    assert result.returncode == 1
    assert "FAIL ocsp Stock ed25519: ocsp response is rejected" in result.stdout


def test_a_store_from_before_gets_ocsp_on_its_intermediate_by_early_reissue(
        stockocsp: Run, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    migrate.upgrade(url)
    service = KeyService(make_engine(url), tmp_path / "keys")
    # before this change only leaves named a responder: an intermediate made with no OCSP URL
    # is the same certificate as an old store's (CRL DP only)
    old = CaService(service, PASSPHRASE, CaSettings(urls=replace(URLS, ocsp_url=None)))
    old.init(root_algorithm=keys.KeyAlgorithm.P256, intermediate_algorithm=keys.KeyAlgorithm.P256,
             root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    legacy = old.certificate(INTERMEDIATE)
    with pytest.raises(x509.ExtensionNotFound):
        legacy.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    env = StoreCa(tmp_path, url, service, CaService(service, PASSPHRASE, CaSettings(urls=URLS)))
    leaf = issue(env.ca, env, keys.KeyAlgorithm.ED25519)
    running = serve(env.ca)
    try:
        stale = stockocsp(*chain_files(env, leaf), "-via", address(running))
        assert stale.returncode == 1
        assert "FAIL ocsp sif-lifecycle Signing CA: certificate does not support OCSP" in \
            stale.stdout
        new = env.ca.reissue_intermediate().certificate
        assert new.public_key() == legacy.public_key() and new.subject == legacy.subject
        assert new.not_valid_after_utc - new.not_valid_before_utc == timedelta(days=1825)
        fixed = stockocsp(*chain_files(env, leaf), "-via", address(running))
        with urllib.request.urlopen(f"{running.url}/ca/intermediate.crt", timeout=10) as answer:
            served = x509.load_der_x509_certificate(answer.read())
    finally:
        running.stop()
    assert fixed.returncode == 0, fixed.stdout
    assert "ocsp ok: sif-lifecycle Signing CA" in fixed.stdout
    assert served == new  # the running responder noticed the re-issue


def test_verify_ocsp_verify_takes_the_same_path_for_leaf_and_intermediate(
        store_ca: StoreCa, server: RunningServer) -> None:
    """``verify --ocsp-verify`` (``fetch_ocsp``) asks the first AIA OCSP URL of the leaf AND the
    intermediate: with ``require`` and no CRL at all, the root's answer for the intermediate
    is the only evidence for it."""
    live = CaService(store_ca.keys, PASSPHRASE, CaSettings(urls=replace(
        URLS, ocsp_url=f"{server.url}/ocsp")))
    live.reissue_intermediate()  # the intermediate now names the live responder
    leaf = issue(live, store_ca, keys.KeyAlgorithm.ED25519)
    chain = ([live.certificate(INTERMEDIATE)], [live.certificate(ROOT)])
    with pytest.raises(CertificateValidationError, match="revocation"):
        validate_signing_certificate(leaf, *chain, revocation_mode="require")
    result = validate_signing_certificate(leaf, *chain, fetch_ocsp=True,
                                          revocation_mode="require")
    assert result.leaf == leaf and result.warnings == ()
    live.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.key_compromise)
    with pytest.raises(CertificateValidationError, match="revoked"):
        validate_signing_certificate(leaf, *chain, fetch_ocsp=True, revocation_mode="require")


def test_a_responder_that_refuses_sha1_is_asked_with_sha256(store_ca: StoreCa) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    responder = OcspResponder(store_ca.ca.ocsp_signers(), store_ca.ca.status_under)
    asked: list[str] = []

    class Sha256Only(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            algorithm = ocsp.load_der_ocsp_request(body).hash_algorithm.name
            asked.append(algorithm)
            answer = (error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED) if algorithm == "sha1"
                      else responder.respond(body, utc_now()))
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Sha256Only)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        live = CaService(store_ca.keys, PASSPHRASE, CaSettings(urls=replace(
            URLS, ocsp_url=f"http://127.0.0.1:{httpd.server_address[1]}/ocsp")))
        leaf = issue(live, store_ca, keys.KeyAlgorithm.P256)
        der = fetch_ocsp_response(leaf, live.certificate(INTERMEDIATE))
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
    assert asked == ["sha1", "sha256"]
    answer = ocsp.load_der_ocsp_response(der)
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.hash_algorithm.name == "sha256" and answer.serial_number == leaf.serial_number


def test_after_an_intermediate_reissue_the_fleet_sees_one_current_crl_per_ca(
        store_ca: StoreCa) -> None:
    from lifecycle.inventory.fleet import load_trust

    before = store_ca.ca.publish_crl(INTERMEDIATE)
    store_ca.ca.reissue_intermediate()
    with store_ca.ca.engine.connect() as conn:
        crls = load_trust(conn).crls
    roles = [c.role for c in crls]
    assert sorted(roles) == sorted({*roles}) and INTERMEDIATE in roles
    number = next(c.number for c in crls if c.role == INTERMEDIATE)
    assert number == x509.load_der_x509_crl(before).extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number + 1
