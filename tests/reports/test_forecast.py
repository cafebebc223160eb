"""forecast() is pure: hand-built fleets, hand-computed dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifecycle.config import ImageSetPolicy, Policies
from lifecycle.model.fleet import CertInfo, FleetState, ImageState, KeyInfo
from lifecycle.reports.forecast import FleetIndex, forecast
from lifecycle.strategies.plan import plan

JAN1 = datetime(2027, 1, 1, tzinfo=UTC)
ROTATED = datetime(2028, 1, 1, tzinfo=UTC)
BASE = ImageSetPolicy("base", ("/img/base/*",), "reissue")
WEB = ImageSetPolicy("web", ("/img/web/*",), "resign", overlap=timedelta(days=30))
CI = ImageSetPolicy("ci", ("/img/ci/*",), "ephemeral", identity="https://ci.example/main")
POLICIES = Policies((BASE, WEB, CI))


def key(fpr: str, image_set: str, state: str = "active", activated: datetime = JAN1,
        retiring: datetime | None = None) -> KeyInfo:
    return KeyInfo(fpr, f"SHA256:{fpr}", state, JAN1, activated, retiring, image_set)


def cert(serial: str, fpr: str, start: datetime, days: int = 90, *,
         revoked: bool = False) -> CertInfo:
    return CertInfo(serial, fpr, start, start + timedelta(days=days), revoked, False)


def image(path: str, *signers: str, status: str = "present") -> ImageState:
    return ImageState(path, status, frozenset(f"SHA256:{s}" for s in signers))


def run(state: FleetState, path: str, now: datetime, *,  # type: ignore[no-untyped-def]
        logged: frozenset[str] = frozenset(), ephemeral: tuple[CertInfo, ...] = ()):
    actions = plan(state, POLICIES, now)
    target = next(i for i in state.images if i.path == path)
    index = FleetIndex.build(state.keys, state.certificates, actions, ephemeral)
    return forecast(target, POLICIES.set_for(path), index, now, logged=logged)


def test_reissue_certificate_expiring_on_a_known_date() -> None:
    # A 90-day certificate from 2027-01-01 expires 2027-04-01; 2/3 of it is 2027-03-02.
    state = FleetState(keys=(key("aa", "base"),), certificates=(cert("01", "aa", JAN1),),
                       images=(image("/img/base/a.sif", "aa"),))
    f = run(state, "/img/base/a.sif", datetime(2027, 2, 1, tzinfo=UTC))
    assert f.certificate.verifies and f.certificate.until == datetime(2027, 4, 1, tzinfo=UTC)
    assert f.key.verifies and f.key.until is None and f.key.text == "indefinitely"
    assert f.tool.verifies and f.tool.until is None and "reissue" in f.tool.basis
    assert f.keeps_verifiable is not None
    assert (f.keeps_verifiable.key, f.keeps_verifiable.not_before) == (
        "reissue:01", datetime(2027, 3, 2, tzinfo=UTC))
    # Re-issued on 2027-03-02 for 90 days: stock --certificate now lasts until 2027-05-31.
    reissued = FleetState(keys=state.keys, certificates=(
        CertInfo("01", "aa", JAN1, JAN1 + timedelta(days=90), False, True),
        cert("02", "aa", datetime(2027, 3, 2, tzinfo=UTC))), images=state.images)
    f = run(reissued, "/img/base/a.sif", datetime(2027, 3, 3, tzinfo=UTC))
    assert f.certificate.until == datetime(2027, 5, 31, tzinfo=UTC)
    assert f.keeps_verifiable is not None and f.keeps_verifiable.key == "reissue:02"
    # Past the certificate's end with nothing renewing it, stock and this tool both say no.
    expired = FleetState(keys=(key("aa", "base", "retired"),),
                         certificates=(cert("01", "aa", JAN1),), images=state.images)
    f = run(expired, "/img/base/a.sif", datetime(2027, 5, 1, tzinfo=UTC))
    assert not f.certificate.verifies and not f.tool.verifies and not f.key.verifies
    assert f.tool.text == "no" and f.keeps_verifiable is None


def test_key_rotated_on_a_known_date() -> None:
    # Key "old" started retiring when "new" became active on 2028-01-01; the overlap is 30 days.
    state = FleetState(
        keys=(key("old", "web", "retiring", retiring=ROTATED),
              key("new", "web", activated=ROTATED)),
        certificates=(cert("01", "old", datetime(2027, 12, 1, tzinfo=UTC)),
                      cert("02", "new", ROTATED)),
        images=(image("/img/web/a.sif", "old"), image("/img/web/b.sif", "old", "new")))
    now = ROTATED + timedelta(days=2)
    a = run(state, "/img/web/a.sif", now)
    # Only "old" signed a: stock --key works until its signature is dropped on 2028-01-31,
    # --certificate until old's certificate ends (2027-12-01 + 90 days = 2028-02-29).
    assert a.key.until == datetime(2028, 1, 31, tzinfo=UTC)
    assert a.certificate.until == datetime(2028, 2, 29, tzinfo=UTC)
    assert a.keeps_verifiable is not None and a.keeps_verifiable.kind == "resign"
    assert a.keeps_verifiable.not_before == ROTATED
    assert a.tool.until is None and "resign" in a.tool.basis
    b = run(state, "/img/web/b.sif", now)
    # b also carries "new", which rotates 365 days after 2028-01-01 (a leap year: 2028-12-31)
    # and is dropped 30 days later; its certificate (2028-01-01 + 90 days) ends 2028-03-31.
    assert b.key.until == datetime(2029, 1, 30, tzinfo=UTC)
    assert b.certificate.until == datetime(2028, 3, 31, tzinfo=UTC)
    assert b.signers == ("old", "new")
    assert b.keeps_verifiable is not None and b.keeps_verifiable.key == "reissue:02"


def test_revoked_tampered_and_logged() -> None:
    state = FleetState(keys=(key("aa", "base"),),
                       certificates=(cert("01", "aa", JAN1, revoked=True),),
                       images=(image("/img/base/a.sif", "aa"),
                               image("/img/base/t.sif", "aa", status="tampered")))
    now = JAN1 + timedelta(days=10)
    f = run(state, "/img/base/a.sif", now)
    assert not f.certificate.verifies and "revoked" in f.certificate.basis
    assert not f.tool.verifies  # a revoked certificate is not renewed by a mere plan
    assert f.keeps_verifiable is not None and f.keeps_verifiable.kind == "certify"
    t = run(state, "/img/base/t.sif", now)
    assert (t.certificate.verifies, t.key.verifies, t.tool.verifies) == (False, False, False)
    assert "no longer matches" in t.tool.basis
    assert t.to_dict()["tool"] == {"verifies": False, "until": None, "text": "no",
                                   "basis": t.tool.basis}


def test_an_ephemeral_image_is_judged_by_its_log_evidence() -> None:
    """Its key is gone and its certificate lasted 10 minutes; the log keeps it verifiable."""
    signed = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    leaf = CertInfo("e1", "SHA256:ephemeralKeyId", signed, signed + timedelta(minutes=10),
                    False, False)
    state = FleetState(images=(image("/img/ci/a.sif", "ephemeralKeyId"),
                               image("/img/ci/b.sif", "otherKeyId")),
                       logged={CI.identity: frozenset({"SHA256:ephemeralKeyId"})})
    logged = frozenset(state.logged[CI.identity])
    fresh = run(state, "/img/ci/a.sif", signed + timedelta(minutes=4), logged=logged,
                ephemeral=(leaf,))
    assert fresh.certificate.verifies and fresh.certificate.until == leaf.not_after
    assert "10-minute certificate" in fresh.certificate.basis
    assert fresh.signers == fresh.logged == ("SHA256:ephemeralKeyId",)
    assert fresh.identity == CI.identity
    later = run(state, "/img/ci/a.sif", signed + timedelta(days=400), logged=logged,
                ephemeral=(leaf,))
    assert not later.certificate.verifies
    assert later.certificate.basis == "its 10-minute certificate expired 2027-02-01 09:10 UTC"
    assert not later.key.verifies and "ephemeral key" in later.key.basis
    assert later.tool.verifies and later.tool.until is None
    assert CI.identity in later.tool.basis and "transparency-log evidence" in later.tool.basis
    assert later.to_dict()["signers"] == ["SHA256:ephemeralKeyId"]
    # A signature the service never logged is not judged by evidence it does not have.
    unlogged = run(state, "/img/ci/b.sif", signed + timedelta(days=400), logged=logged,
                   ephemeral=(leaf,))
    assert not (unlogged.certificate.verifies or unlogged.key.verifies or unlogged.tool.verifies)
    assert unlogged.signers == ()
