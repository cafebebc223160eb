"""A delegated OCSP responder's certificate is renewed by the CRL job, before it expires.

``[ca] ocsp_responder = "delegated"`` signs responses with a responder certificate that lives
``ocsp_signer_lifetime`` (90 days). Without renewal, OCSP would fail everywhere on day 91.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from lifecycle.config import OcspResponderMode
from lifecycle.model.key_state import KeyState
from lifecycle.pki import keys
from lifecycle.service.http import RevocationSource
from lifecycle.service.work import CaOnlySource
from lifecycle.store import migrate
from lifecycle.store.ca_service import INTERMEDIATE, OCSP, CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from tests.pki.conftest import PASSPHRASE, URLS

START = datetime(2027, 1, 4, tzinfo=UTC)
DAY = timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def delegated(tmp_path: Path) -> tuple[CaService, Clock]:
    clock = Clock()
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    service = KeyService(make_engine(url), tmp_path / "keys", clock=clock)
    ca = CaService(service, PASSPHRASE, CaSettings(urls=URLS, ocsp_responder=OcspResponderMode.DELEGATED))
    ca.init(root_algorithm=keys.KeyAlgorithm.P384, intermediate_algorithm=keys.KeyAlgorithm.P256,
            root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    return ca, clock


def responder_of(source: RevocationSource, ca: CaService, leaf: x509.Certificate) -> x509.Certificate:
    """The responder certificate embedded in the endpoint's answer for ``leaf``."""
    request = ocsp.OCSPRequestBuilder().add_certificate(
        leaf, ca.certificate(INTERMEDIATE), hashes.SHA1()).build()
    response = ocsp.load_der_ocsp_response(source.ocsp(request.public_bytes(Encoding.DER)))
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    (embedded,) = response.certificates
    return embedded


def test_the_crl_job_renews_the_responder_at_half_life_and_the_responder_signs_with_it(
    delegated: tuple[CaService, Clock],
) -> None:
    ca, clock = delegated
    row = ca.keys.generate(keys.KeyAlgorithm.ED25519, PASSPHRASE)
    leaf = ca.issue(row.fingerprint, "Renewal", timedelta(days=365)).certificate
    source = RevocationSource(ca, recheck_seconds=0)
    first = ca.certificate(OCSP)
    assert responder_of(source, ca, leaf) == first
    job = CaOnlySource(ca)

    clock.now = START + 44 * DAY  # less than half of the 90 days: nothing to do
    job.refresh_crls(clock.now)
    assert ca.certificate(OCSP) == first

    clock.now = START + 46 * DAY
    job.refresh_crls(clock.now)
    second = ca.certificate(OCSP)
    assert second != first and second.not_valid_before_utc == clock.now
    assert second.not_valid_after_utc == clock.now + 90 * DAY
    assert responder_of(source, ca, leaf) == second  # the running endpoint switched
    old_key = ca.keys.get(keys.fingerprint(first.public_key()))  # type: ignore[arg-type]
    assert KeyState(old_key.state) is KeyState.RETIRED


def test_over_three_years_of_weekly_crl_jobs_the_responder_never_expires(
    delegated: tuple[CaService, Clock],
) -> None:
    ca, clock = delegated
    renewals = 0
    while clock.now < START + 3 * 365 * DAY:
        clock.now += 7 * DAY
        renewals += ca.renew_ocsp_signer(now=clock.now) is not None
        current = ca.certificate(OCSP)
        # valid now and through a 7-day bundle exported now, with a third of its life to spare
        assert current.not_valid_before_utc <= clock.now
        assert current.not_valid_after_utc - clock.now >= 30 * DAY + 7 * DAY
    assert 20 <= renewals <= 25  # every 45-51 days, not on every job


def test_a_ca_signing_its_own_responses_has_nothing_to_renew(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    ca = CaService(KeyService(make_engine(url), tmp_path / "keys"), PASSPHRASE, CaSettings(urls=URLS))
    ca.init(root_algorithm=keys.KeyAlgorithm.P384, intermediate_algorithm=keys.KeyAlgorithm.P256,
            root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    assert ca.renew_ocsp_signer(now=datetime.now(UTC) + 80 * DAY) is None
