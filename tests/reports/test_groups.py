"""Per-image rows fold into groups people can read; the Markdown shows the counts."""

from __future__ import annotations

from datetime import timedelta

from lifecycle.model.cert_status import CertStatus
from lifecycle.model.fleet import FleetState, short
from lifecycle.reports import ReportData, render
from lifecycle.reports.forecast import FleetIndex, forecast
from lifecycle.reports.groups import SHOWN_PATHS, group_actions, group_forecasts
from lifecycle.reports.model import CertRow, KeyRow, SetSummary
from lifecycle.reports.timeline import MAX_CERTIFICATES, MAX_KEYS, build_timeline
from lifecycle.strategies.plan import plan
from tests.reports.test_forecast import POLICIES, ROTATED, cert, image, key


def test_identical_forecasts_and_per_image_actions_fold() -> None:
    paths = [f"/img/web/{i:02}.sif" for i in range(12)]
    state = FleetState(
        keys=(key("old", "web", "retiring", retiring=ROTATED), key("new", "web", activated=ROTATED)),
        certificates=(cert("01", "old", ROTATED), cert("02", "new", ROTATED)),
        images=(*(image(p, "old") for p in paths),
                image("/img/web/t.sif", "old", status="tampered")))
    now = ROTATED + timedelta(days=1)
    actions = plan(state, POLICIES, now)
    index = FleetIndex.build(state.keys, state.certificates, actions)
    forecasts = [forecast(i, POLICIES.set_for(i.path), index, now) for i in state.images]
    groups = group_forecasts(forecasts)
    assert [g.count for g in groups] == [1, 12]  # the tampered image first: it does not verify
    assert groups[0].paths == ("/img/web/t.sif",)
    assert groups[1].shown == tuple(paths[:SHOWN_PATHS]) and groups[1].more == 12 - SHOWN_PATHS
    rows = group_actions(actions)
    [resign] = [r for r in rows if r.first.kind == "resign"]
    assert resign.count == 12 and set(resign.keys) == {a.key for a in actions
                                                        if a.kind == "resign"}
    assert resign.reason.startswith("12 images: ") and "(and 11 more like it)" in resign.reason
    assert all(r.count == 1 for r in rows if r.first.kind != "resign")
    md = render(ReportData(now, actions=tuple(actions), forecasts=tuple(forecasts)),
                "md").decode()
    assert "| resign ×12 | web |" in md
    assert f"and {12 - SHOWN_PATHS} more |" in md


def test_timeline_caps_key_and_certificate_lanes() -> None:
    now = ROTATED
    keys = tuple(KeyRow(f"{i:02}" * 4, "web", "active" if i == 9 else "retired",
                        now - timedelta(days=100 - i), None, None) for i in range(10))
    certs = tuple(CertRow(f"c{j}", keys[9].fingerprint, "web", now - timedelta(days=90 - 10 * j),
                          now + timedelta(days=10 * j), None, None, "", j < 4,
                          CertStatus.SUPERSEDED if j < 4 else CertStatus.CURRENT)
                  for j in range(5))
    tl = build_timeline(ReportData(now, sets=(SetSummary("web", "resign", 1, 0, 0, (), None,
                                                         None),), keys=keys, certificates=certs))
    lanes = [lane.label for lane in tl.lanes]
    assert lanes[1] == f"key {short(keys[9].fingerprint)}"  # the active key comes first
    assert len([x for x in lanes if x.startswith("key ")]) == MAX_KEYS
    assert lanes[-1] == f"and {10 - MAX_KEYS} more keys"
    shown = [b.id for b in tl.bars if b.kind == "certificate"]
    assert shown == [f"cert-c{j}" for j in range(5 - MAX_CERTIFICATES, 5)]  # the newest ones
