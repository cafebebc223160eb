"""resign with [timestamp]: every signature it makes carries a token, and on a key compromise
with a known date only images not proven (RFC 3161) to predate it are re-signed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lifecycle.errors import VerificationError
from lifecycle.integrity import dsse
from lifecycle.integrity.sign import _classify
from lifecycle.model.key_state import KeyState
from lifecycle.pki.certs import certificate_pem
from lifecycle.sif import SifImage
from lifecycle.store.ca_service import INTERMEDIATE, ROOT
from lifecycle.store.tsa_service import local_tsa
from lifecycle.strategies.apply import ApplyResult
from lifecycle.timestamp.client import AuthorityStamper
from lifecycle.timestamp.restamp import restamp
from lifecycle.timestamp.tokens import tokens_of
from lifecycle.verify import TrustMaterial, verify
from tests.strategies.conftest import T0, Fleet, make_fleet
from tests.strategies.test_resign import WEB, verifier, verifies

DAY = timedelta(days=1)


def _stamper(fleet: Fleet):  # type: ignore[no-untyped-def]
    return lambda now: AuthorityStamper(local_tsa(fleet.ca, lambda: now).respond)


def _signatures(path: Path) -> list[dsse.Signature]:
    with SifImage.open(path) as img:
        return [s for d in img.objects if d.is_signature
                for s in (_classify(img, d).envelope or dsse.Envelope(b"")).signatures]


def _certificate_of(fleet: Fleet, fingerprint: str):  # type: ignore[no-untyped-def]
    key_id = fleet.ca.keys.get(fingerprint).id
    row = next(r for r in fleet.ca.certificates() if r.key_id == key_id)
    return fleet.ca.find(row.serial)


def test_compromise_spares_images_proven_to_predate_it(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = make_fleet(tmp_path, [WEB])
    fleet.stamper_at = _stamper(fleet)
    fleet.run()
    bad = fleet.active_key("web")
    early, late, bare = fleet.image("web-early"), fleet.image("web-late"), fleet.image("web-bare")
    fleet.now = T0 + 10 * DAY
    fleet.sign(early, bad)
    assert restamp(early, fleet.stamper_at(fleet.now)) == 1  # only the extension changes
    assert verifies(early, verifier(fleet, bad))
    fleet.now = T0 + 20 * DAY
    for path in (late, bare):
        fleet.sign(path, bad)
    restamp(late, fleet.stamper_at(fleet.now))
    fleet.track(early, late, bare)

    compromised: datetime = T0 + 15 * DAY  # known later: the key leaked on day 15
    fleet.now = T0 + 25 * DAY
    fleet.ca.keys.transition(bad, KeyState.COMPROMISED, "key file leaked", at=compromised)
    results = {(r.kind, r.subject): r for r in fleet.run()}
    published = tmp_path / "publish" / "web" / "tsa" / "chain.pem"
    assert published.is_file() and b"BEGIN CERTIFICATE" in published.read_bytes()
    revoked = fleet.ca.revocation(_certificate_of(fleet, bad))
    assert revoked is not None and revoked.invalidity_date == compromised

    spared = results[("purge", str(early))]
    assert spared.status == "skipped" and "proven (RFC 3161)" in spared.detail, spared.detail
    assert verifies(early, verifier(fleet, bad))  # untouched: stock tools see what they saw
    new = fleet.active_key("web")
    for path in (late, bare):
        assert results[("purge", str(path))].status == "done"
        assert verifies(path, verifier(fleet, new)) and not verifies(path, verifier(fleet, bad))
        (signature,) = _signatures(path)
        assert tokens_of(signature.extension), "the re-signature carries its token"

    # this tool still trusts the spared image: the certificate judged at the proven time
    files = {}
    for name, cert in (("root", fleet.ca.certificate(ROOT)),
                       ("inter", fleet.ca.certificate(INTERMEDIATE))):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(certificate_pem(cert))
    row = _certificate_of(fleet, bad)
    from lifecycle.pki.certs import load_certificate

    cert = load_certificate(row.pem.encode(), path="leaf")
    crls = tuple(fleet.ca.publish_crl(r, now=fleet.now) for r in (ROOT, INTERMEDIATE))
    trust = TrustMaterial(certificate=cert, intermediates=(files["inter"],),
                          roots=(files["root"],), tsa_roots=(files["root"],), crls=crls,
                          at=fleet.now)
    result = verify(early, trust)
    assert result.certificate is not None and result.certificate.time_source
    assert result.certificate.validated_at < compromised

    # offline: the bundle carries the TSA chain (tsa/) and the CRLs; the spared image verifies
    # at its proven time, while the revoked certificate judged at now would not
    from lifecycle.bundles import export
    from lifecycle.bundles import layout as lay

    bundle = tmp_path / "bundle"
    export(fleet.ca, bundle, now=fleet.now)
    assert (bundle / lay.TSA_CHAIN).is_file() and (bundle / lay.TSA_ROOTS).is_file()
    offline = verify(early, TrustMaterial(bundle=bundle, trust_store=tmp_path / "store",
                                          at=fleet.now))
    assert offline.ok
    monkeypatch.setattr("lifecycle.bundles.offline.proven_by_keyid", lambda *_: {})
    with pytest.raises(VerificationError):  # the same bundle without proven times
        verify(early, TrustMaterial(bundle=bundle, trust_store=tmp_path / "store", at=fleet.now))


def _advance(fleet: Fleet, to: datetime, step: timedelta = 30 * DAY) -> list[ApplyResult]:
    done: list[ApplyResult] = []
    while fleet.now < to:
        fleet.now = min(to, fleet.now + step)
        done += fleet.run()
    return done


def _verify_at_proven_time(fleet: Fleet, image: Path, fingerprint: str, tmp_path: Path,
                           tsa: bool) -> bool:
    """This tool, judging the key's certificate generations at the proven time (or, without
    ``tsa``, at now as stock tools do)."""
    from lifecycle.pki.certs import load_certificate

    key_id = fleet.ca.keys.get(fingerprint).id
    roots, inter = tmp_path / "sim-root.pem", tmp_path / "sim-inter.pem"
    roots.write_bytes(certificate_pem(fleet.ca.certificate(ROOT)))
    inter.write_bytes(certificate_pem(fleet.ca.certificate(INTERMEDIATE)))
    crls = tuple(fleet.ca.publish_crl(r, now=fleet.now) for r in (ROOT, INTERMEDIATE))
    for row in [r for r in fleet.ca.certificates() if r.key_id == key_id]:
        trust = TrustMaterial(certificate=load_certificate(row.pem.encode(), path="leaf"),
                              intermediates=(inter,), roots=(roots,), crls=crls, at=fleet.now,
                              tsa_roots=(roots,) if tsa else ())
        try:
            verify(image, trust)
            return True
        except VerificationError:
            continue
    return False


@pytest.mark.slow
def test_three_years_with_a_compromise_in_year_two(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [WEB])
    fleet.stamper_at = _stamper(fleet)
    fleet.run()
    first = fleet.active_key("web")
    old = fleet.image("web-old")
    fleet.now = T0 + 20 * DAY
    fleet.sign(old, first)
    restamp(old, fleet.stamper_at(fleet.now))
    fleet.track(old)

    _advance(fleet, T0 + 420 * DAY)  # year one: the key rotates, old is re-signed (with a token)
    second = fleet.active_key("web")
    assert second != first and verifies(old, verifier(fleet, second))
    bare, fresh = fleet.image("web-bare"), fleet.image("web-fresh")
    fleet.now = T0 + 500 * DAY
    fleet.sign(bare, second)  # signed outside the service, never timestamped
    fleet.now = T0 + 560 * DAY
    fleet.sign(fresh, second)
    restamp(fresh, fleet.stamper_at(fleet.now))  # timestamped, but after the compromise
    fleet.track(bare, fresh)

    compromised = T0 + 540 * DAY  # year two: the key leaked on day 540, found on day 570
    fleet.now = T0 + 570 * DAY
    fleet.ca.keys.transition(second, KeyState.COMPROMISED, "key leaked", at=compromised)
    results = {(r.kind, r.subject): r for r in _advance(fleet, T0 + 571 * DAY, DAY)}
    assert results[("purge", str(old))].status == "skipped"
    assert "before the compromise" in results[("purge", str(old))].detail
    for path in (bare, fresh):
        assert results[("purge", str(path))].status == "done"
        assert not verifies(path, verifier(fleet, second))

    _advance(fleet, T0 + 3 * 365 * DAY)  # year three: every certificate of the key has lapsed
    kept = [r for r in fleet.ca.certificates() if r.key_id == fleet.ca.keys.get(second).id]
    assert all(r.not_after < fleet.now for r in kept)
    assert verifies(old, verifier(fleet, second))  # the spared signature is still there
    assert _verify_at_proven_time(fleet, old, second, tmp_path, tsa=True)
    assert not _verify_at_proven_time(fleet, old, second, tmp_path, tsa=False)  # stock: stopped
