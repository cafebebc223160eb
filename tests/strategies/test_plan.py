"""plan() is pure: hand-built states, hand-computed dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from lifecycle.config import ImageSetPolicy, Policies
from lifecycle.model.fleet import Action, CertInfo, CrlInfo, FleetState, ImageState, KeyInfo
from lifecycle.strategies.plan import TIDY_WINDOW, notes, plan

JAN1 = datetime(2027, 1, 1, tzinfo=UTC)
WEB = ImageSetPolicy("web", ("/img/web/*.sif",), "resign", overlap=timedelta(days=30))
BASE = ImageSetPolicy("base", ("/img/base/**",), "reissue")


def key(fpr: str, state: str = "active", *, image_set: str = "web",
        activated: datetime | None = JAN1, retiring: datetime | None = None) -> KeyInfo:
    return KeyInfo(fpr, f"SHA256:{fpr}", state, JAN1, activated, retiring, image_set)


def cert(serial: str, fpr: str, start: datetime = JAN1, days: int = 90, **kw: bool) -> CertInfo:
    return CertInfo(serial, fpr, start, start + timedelta(days=days),
                    kw.get("revoked", False), kw.get("superseded", False))


def by_kind(actions: list[Action], kind: str) -> list[Action]:
    return [a for a in actions if a.kind == kind]


def test_empty_set_is_provisioned_now() -> None:
    actions = plan(FleetState(), Policies((WEB,)), JAN1)
    assert [(a.kind, a.key, a.not_before, a.due) for a in actions] == [
        ("provision", "provision:web", JAN1, JAN1)]


def test_renewal_window_at_two_thirds_of_the_lifetime() -> None:
    state = FleetState(keys=(key("aa"),), certificates=(cert("5f01", "aa"),))
    [reissue] = by_kind(plan(state, Policies((WEB,)), JAN1), "reissue")
    # 90 days from 2027-01-01 ends 2027-04-01; 2/3 of 90 days = 60 days -> 2027-03-02.
    assert reissue.not_before == datetime(2027, 3, 2, tzinfo=UTC)
    assert reissue.due == datetime(2027, 4, 1, tzinfo=UTC)
    assert reissue.key == "reissue:5f01"
    assert reissue.reason == ("certificate 5F01 expires 2027-04-01; renewal window opened "
                              "2027-03-02")
    assert not reissue.ready(datetime(2027, 3, 1, tzinfo=UTC))
    assert reissue.ready(datetime(2027, 3, 2, tzinfo=UTC))


def test_absolute_lead_and_distribution_lead() -> None:
    policy = ImageSetPolicy("web", ("/img/*",), "reissue", renew_before=timedelta(days=10))
    state = FleetState(keys=(key("aa"),), certificates=(cert("01", "aa"),))
    [reissue] = by_kind(plan(state, Policies((policy,)), JAN1), "reissue")
    assert reissue.not_before == datetime(2027, 3, 22, tzinfo=UTC)  # April 1 - 10 days
    air_gapped = ImageSetPolicy("web", ("/img/*",), "reissue", renewal=Fraction(3, 4),
                                distribution_lead=timedelta(days=40))
    [reissue] = by_kind(plan(state, Policies((air_gapped,)), JAN1), "reissue")
    # 3/4 of 90 days would be 2027-03-09; the lead moves it to April 1 - 40 days = Feb 20.
    assert reissue.not_before == datetime(2027, 2, 20, tzinfo=UTC)
    assert reissue.due == datetime(2027, 2, 20, tzinfo=UTC)
    assert "published 40 days ahead" in reissue.reason


def test_superseded_revoked_and_expired_certificates_are_not_renewed() -> None:
    state = FleetState(keys=(key("aa"),), certificates=(
        cert("01", "aa", superseded=True), cert("02", "aa", JAN1 + timedelta(days=60)),
        cert("03", "aa", revoked=True)))
    assert [a.subject for a in by_kind(plan(state, Policies((WEB,)), JAN1), "reissue")] == ["02"]
    expired = FleetState(keys=(key("aa"),), certificates=(cert("01", "aa"),))
    later = JAN1 + timedelta(days=91)
    [certify] = by_kind(plan(expired, Policies((WEB,)), later), "certify")
    assert certify.subject == "aa" and certify.ready(later)


def test_rotation_after_the_rotation_period_and_preparation_ahead() -> None:
    state = FleetState(keys=(key("aa"),), certificates=(cert("01", "aa"),))
    [rotate] = by_kind(plan(state, Policies((WEB,)), JAN1), "rotate")
    assert rotate.not_before == datetime(2028, 1, 1, tzinfo=UTC)  # 365 days later
    assert rotate.key == "rotate:web:aa"
    lead = ImageSetPolicy("web", ("/img/*",), "resign", distribution_lead=timedelta(days=14))
    [prepare] = by_kind(plan(state, Policies((lead,)), JAN1), "prepare")
    assert prepare.not_before == datetime(2027, 12, 18, tzinfo=UTC)
    assert not by_kind(plan(state, Policies((BASE,)), JAN1), "rotate")  # reissue keeps its key


def test_resign_drop_and_retire_follow_the_overlap() -> None:
    new_active = datetime(2028, 1, 1, tzinfo=UTC)
    state = FleetState(
        keys=(key("old", "retiring", retiring=new_active), key("new", activated=new_active)),
        certificates=(cert("01", "old", new_active), cert("02", "new", new_active)),
        images=(ImageState("/img/web/a.sif", "present", frozenset({"SHA256:old"})),
                ImageState("/img/web/b.sif", "present", frozenset({"SHA256:old", "SHA256:new"})),
                ImageState("/img/web/c.sif", "tampered", frozenset({"SHA256:old"})),
                ImageState("/img/other/d.sif", "present", frozenset({"SHA256:old"}))))
    actions = plan(state, Policies((WEB,)), new_active)
    [resign] = by_kind(actions, "resign")
    assert resign.subject == "/img/web/a.sif"  # not b (done), c (tampered) or d (no set)
    assert resign.not_before == new_active and resign.due == datetime(2028, 1, 31, tzinfo=UTC)
    [drop] = by_kind(actions, "drop")  # a lacks the new signature: its old one is kept
    assert drop.subject == "/img/web/b.sif"
    assert drop.not_before == datetime(2028, 1, 31, tzinfo=UTC)
    assert drop.due == drop.not_before + TIDY_WINDOW
    assert not by_kind(actions, "retire")
    # The retiring key's certificate expires after the overlap: it is not renewed.
    assert [a.subject for a in by_kind(actions, "reissue")] == ["02"]
    done = FleetState(keys=state.keys, certificates=state.certificates, images=(
        ImageState("/img/web/a.sif", "present", frozenset({"SHA256:new"})),))
    [retire] = by_kind(plan(done, Policies((WEB,)), new_active), "retire")
    assert retire.subject == "old" and retire.not_before == datetime(2028, 1, 31, tzinfo=UTC)


def test_compromised_key_revoked_purged_and_replaced() -> None:
    state = FleetState(
        keys=(key("bad", "compromised"),),
        certificates=(cert("01", "bad"), cert("02", "bad", revoked=True)),
        images=(ImageState("/img/web/a.sif", "present", frozenset({"SHA256:bad"})),))
    now = JAN1 + timedelta(days=5)
    actions = plan(state, Policies((WEB,)), now)
    assert [(a.kind, a.subject) for a in actions] == [
        ("revoke", "01"), ("provision", "web"), ("purge", "/img/web/a.sif")]
    assert all(a.ready(now) for a in actions)


def test_crl_refresh_at_half_life_and_publish_when_stale() -> None:
    state = FleetState(crls=(CrlInfo("intermediate", 4, JAN1, JAN1 + timedelta(days=7)),),
                       trust_revision="r2", published={"web": "r1"})
    actions = plan(state, Policies((WEB,)), JAN1)
    [crl] = by_kind(actions, "crl-refresh")
    assert crl.key == "crl-refresh:intermediate:4"
    assert crl.not_before == datetime(2027, 1, 4, 12, tzinfo=UTC)
    assert crl.due == datetime(2027, 1, 8, tzinfo=UTC)
    [publish] = by_kind(actions, "publish")
    assert publish.key == "publish:web:r2"
    current = FleetState(trust_revision="r2", published={"web": "r2"})
    assert not by_kind(plan(current, Policies((WEB,)), JAN1), "publish")


def test_plan_is_deterministic_sorted_and_pure() -> None:
    state = FleetState(keys=(key("aa"), key("bb", image_set="base")),
                       certificates=(cert("01", "aa"), cert("02", "bb", JAN1 - timedelta(days=1))),
                       images=tuple(ImageState(f"/img/web/{i}.sif", "present",
                                               frozenset({"SHA256:zz"})) for i in range(5)))
    first = plan(state, Policies((WEB, BASE)), JAN1)
    assert first == plan(state, Policies((WEB, BASE)), JAN1)
    assert first == sorted(first, key=Action.sort_key)
    assert len({a.key for a in first}) == len(first)
    assert [a.key for a in first][:5] == [f"resign:/img/web/{i}.sif:aa" for i in range(5)]
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(state, Policies((WEB,)), datetime(2027, 1, 1))


CI = ImageSetPolicy("fast", ("/x/*",), "ephemeral", identity="ci@example.org")


def test_ephemeral_signs_unsigned_and_unlogged_images_only() -> None:
    images = (ImageState("/x/new.sif", "present", frozenset()),
              ImageState("/x/done.sif", "present", frozenset({"SHA256:e1", "SHA256:dev"})),
              ImageState("/x/foreign.sif", "present", frozenset({"SHA256:dev"})),
              ImageState("/x/other-identity.sif", "present", frozenset({"SHA256:e2"})),
              ImageState("/x/bad.sif", "tampered", frozenset()),
              ImageState("/x/gone.sif", "removed", frozenset()))
    state = FleetState(images=images, logged={"ci@example.org": frozenset({"SHA256:e1"}),
                                              "mallory@example.org": frozenset({"SHA256:e2"})})
    actions = plan(state, Policies((CI,)), JAN1)
    signing = [a for a in actions if a.kind == "sign-ephemeral"]
    assert sorted(a.subject for a in signing) == ["/x/foreign.sif", "/x/new.sif",
                                                   "/x/other-identity.sif"]
    assert all(a.due == a.not_before == JAN1 and a.image_set == "fast" for a in signing)
    by_subject = {a.subject: a for a in signing}
    assert "is not signed" in by_subject["/x/new.sif"].reason
    assert "none logged for ci@example.org" in by_subject["/x/foreign.sif"].reason
    assert not any(a.kind in ("provision", "certify", "reissue") for a in actions)  # no keys
    assert "signs ephemerally as ci@example.org" in notes(Policies((CI,)))[0]


def test_ephemeral_key_changes_when_the_image_is_rebuilt() -> None:
    def key_for(signers: frozenset[str]) -> str:
        state = FleetState(images=(ImageState("/x/a.sif", "present", signers),))
        return plan(state, Policies((CI,)), JAN1)[0].key

    assert key_for(frozenset()) != key_for(frozenset({"SHA256:dev"}))
    assert key_for(frozenset()) == key_for(frozenset())


def test_action_round_trips_through_json() -> None:
    action = plan(FleetState(), Policies((WEB,)), JAN1)[0]
    import json

    assert Action.from_dict(json.loads(json.dumps(action.to_dict()))) == action
