"""The report's per-set "stock --ocsp-verify works" claim, checked by running the stock rules
(tests/interop/stockocsp) on the very chain it judged, with the answers ``serve`` signs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from lifecycle.config import OcspResponderMode, Strategy
from lifecycle.pki import ca, keys
from lifecycle.pki.certs import certificate_pem
from lifecycle.reports import ReportData, build_report
from lifecycle.reports.stock_ocsp import stock_ocsp
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, CaService
from tests.pki.conftest import URLS
from tests.reports.conftest import NOW, ReportFleet

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_stock(stock: Run, authority: CaService, serial: str, out: Path) -> subprocess.CompletedProcess[str]:
    """The stock rules at NOW on the set's chain, with responses ``authority`` signs at NOW."""
    out.mkdir()
    leaf_row = authority.find(serial)
    inter_row = authority.find(authority.certificate(INTERMEDIATE).serial_number)
    for name, der in authority.presigned_ocsp([leaf_row, inter_row], NOW).items():
        (out / f"{name}.der").write_bytes(der)
    (out / "leaf.pem").write_text(leaf_row.pem)
    (out / "inter.pem").write_bytes(certificate_pem(authority.certificate(INTERMEDIATE)))
    (out / "root.pem").write_bytes(certificate_pem(authority.certificate(ROOT)))
    return stock("-leaf", out / "leaf.pem", "-intermediates", out / "inter.pem",
                 "-roots", out / "root.pem", "-at", NOW.isoformat(), "-responses", out)


@pytest.mark.interop
def test_the_report_says_it_works_and_the_stock_rules_agree(
        report_fleet: ReportFleet, report_data: ReportData, stockocsp: Run, tmp_path: Path,
        ) -> None:
    claims = {o.image_set: o for o in report_data.stock_ocsp}
    assert sorted(claims) == ["base", "web"]
    for name, serial in report_fleet.reissued_serials.items():
        assert claims[name].works, claims[name].reason
        assert "answers are signed by the issuing CA" in claims[name].reason
        done = run_stock(stockocsp, report_fleet.fleet.ca, serial, tmp_path / name)
        assert done.returncode == 0, done.stdout
    assert [o["works"] for o in report_data.to_dict()["stock_ocsp"]] == [True, True]


@pytest.mark.interop
def test_a_delegated_responder_is_reported_and_the_stock_rules_agree(
        report_fleet: ReportFleet, stockocsp: Run, tmp_path: Path) -> None:
    fleet = report_fleet.fleet
    settings = replace(fleet.ca.settings, ocsp_responder=OcspResponderMode.DELEGATED)
    config = replace(report_fleet.config, ca=settings)
    data = build_report(fleet.engine, config, NOW)
    for claim in data.stock_ocsp:
        assert not claim.works and "delegated responder" in claim.reason
    delegated = CaService(fleet.ca.keys, fleet.ca.passphrase, settings)
    done = run_stock(stockocsp, delegated, report_fleet.reissued_serials["base"], tmp_path / "d")
    assert done.returncode == 1 and "ocsp response is rejected" in done.stdout


def test_ephemeral_sets_and_ca_certificates_without_a_responder_say_why() -> None:
    start = NOW - timedelta(days=1)
    root_key, inter_key = (keys.generate_private_key(keys.KeyAlgorithm.P256) for _ in range(2))
    root = ca.build_root(root_key, ca.name("Test Root"), not_before=start,
                         lifetime=timedelta(days=365))
    def intermediate(urls: ca.CaUrls) -> x509.Certificate:
        return ca.build_intermediate(root, root_key, inter_key.public_key(),
                                     ca.name("Test Signing"), not_before=start,
                                     lifetime=timedelta(days=100), urls=urls)

    def leaf(urls: ca.CaUrls) -> x509.Certificate:
        return ca.issue_code_signing(inter, inter_key, keys.generate_private_key(
            keys.KeyAlgorithm.ED25519).public_key(), ca.name("Signer"), not_before=start,
            lifetime=timedelta(days=30), urls=urls)

    inter = intermediate(URLS)
    issuer = OcspResponderMode.ISSUER
    assert stock_ocsp("s", Strategy.REISSUE, [leaf(URLS), inter, root], issuer).works
    ephemeral = stock_ocsp("ci", Strategy.EPHEMERAL, [leaf(URLS), inter, root], issuer)
    assert not ephemeral.works and "certificate does not support OCSP" in ephemeral.reason
    assert stock_ocsp("s", Strategy.RESIGN, [], issuer).reason == \
        "the set has no current certificate"
    old_inter = intermediate(replace(URLS, ocsp_url=None))  # as made before AIA on CAs
    stale = stock_ocsp("s", Strategy.REISSUE, [leaf(URLS), old_inter, root], issuer)
    assert not stale.works
    assert "CA certificate CN=Test Signing names no OCSP responder" in stale.reason
    assert "sif-lifecycle ca reissue-intermediate" in stale.reason
    bare = stock_ocsp("s", Strategy.REISSUE, [leaf(ca.CaUrls()), inter, root], issuer)
    assert not bare.works and "its certificate CN=Signer names no OCSP responder" in bare.reason
