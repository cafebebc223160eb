"""The timeline's labels never overlap, however crowded a lane; CA lanes have their own section."""

from __future__ import annotations

from datetime import timedelta

from lifecycle.model.cert_status import CertStatus
from lifecycle.model.fleet import Action, ActionKind
from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.reports import ReportData
from lifecycle.reports.model import CertRow, CrlRow, KeyRow, SetSummary
from lifecycle.reports.timeline import LANE, Label, build_timeline, text_width
from tests.reports.test_forecast import ROTATED


def _box(label: Label) -> tuple[float, float, float, float]:
    width = text_width(label.text)
    left = label.x - width if label.anchor == "end" else label.x
    return left, left + width, label.y - 11, label.y + 3


def _crowded() -> ReportData:
    now = ROTATED
    key = KeyRow("aa" * 16, "web", KeyState.ACTIVE, now - timedelta(days=30), None, None)
    short_cert = CertRow("c1", key.fingerprint, "web", now - timedelta(days=2),
                         now + timedelta(days=5), None, None, "", False, CertStatus.CURRENT)
    # Resigns, drops and a publish on consecutive days of one set lane, a rotation on the key.
    actions = [Action(kind, f"/img/web/{kind}-{d}.sif", now + timedelta(days=d), now,
                      f"{kind} {d}", "web") for d in range(6)
               for kind in (ActionKind.RESIGN, ActionKind.DROP)]
    actions.append(Action(ActionKind.ROTATE, key.fingerprint, now + timedelta(days=3), now,
                          "rotate", "web"))
    summary = SetSummary("web", "resign", 12, 0, 0, (), now + timedelta(days=4),
                         now + timedelta(days=4))
    crls = (CrlRow(CaRole.ROOT, 3, now - timedelta(days=1), now + timedelta(days=29), False),)
    return ReportData(now, sets=(summary,), keys=(key,), certificates=(short_cert,), crls=crls,
                      actions=tuple(actions))


def test_labels_of_a_crowded_lane_do_not_overlap() -> None:
    tl = build_timeline(_crowded())
    lanes: dict[int, list[Label]] = {}
    for label in tl.labels:
        lanes.setdefault(int(label.y // LANE), []).append(label)
    for labels in lanes.values():
        boxes = [_box(label) for label in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert min(a[1], b[1]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[2], b[2]), (
                    a, b)
    drawn = {label.id.removeprefix("label-") for label in tl.labels}
    # Every label that found no room is still its marker's tooltip.
    left_off = [m for m in tl.markers if m.id not in drawn]
    assert left_off and all(m.label in m.title for m in left_off)
    assert "until-web" in drawn  # the set's horizon is always drawn: it goes first in its lane


def test_ca_lanes_are_their_own_section() -> None:
    tl = build_timeline(_crowded())
    kinds = [lane.kind for lane in tl.lanes]
    section = kinds.index("section")
    assert tl.lanes[section].label == "certificate authority"
    assert all(k == "crl" for k in kinds[section + 1:]) and "crl" not in kinds[:section]
