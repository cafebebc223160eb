"""Scan flags an image the inventory saw signed that lost its signatures or gained a foreign
signer, in every strategy; the planner plans nothing for it and apply never signs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session

from lifecycle.config import Config, ImageSetPolicy
from lifecycle.inventory.scan import scan
from lifecycle.reports import build_report
from lifecycle.store import audit
from lifecycle.strategies.apply import ApplyContext
from lifecycle.strategies.due import run_due
from tests.inventory.tamper import resign_foreign, strip_and_modify
from tests.strategies.conftest import Fleet, make_fleet
from tests.strategies.test_ephemeral import CI, _fleet_with_log

BASE = ImageSetPolicy("base", ("base-*.sif",), "reissue")
APPS = ImageSetPolicy("apps", ("apps-*.sif",), "resign")


def _scan(fleet: Fleet, *paths: Path) -> list[str]:
    """What ``sif-lifecycle scan --full`` does: the configured sets' signers are checked."""
    report = scan(fleet.engine, [str(p) for p in paths], fleet.now, full=True,
                  policies=fleet.policies)
    return report.tampered


def _audited(fleet: Fleet) -> list[dict[str, str]]:
    with Session(fleet.engine) as session:
        return [{"subject": r.subject, **json.loads(r.detail)}
                for r in audit.entries(session, action="image.tampered")]


def _planned_for(fleet: Fleet, path: Path) -> list[str]:
    return [a.kind for a in fleet.plan() if a.subject == str(path)]


@pytest.mark.parametrize("policy", [BASE, APPS], ids=["reissue", "resign"])
def test_a_foreign_signer_is_tampered_in_key_sets(tmp_path: Path, policy: ImageSetPolicy) -> None:
    fleet = make_fleet(tmp_path, [policy])
    fleet.run()
    [image] = fleet.signed_images(policy.name, 1)
    assert _scan(fleet, image) == []
    resign_foreign(image)
    assert _scan(fleet, image) == [str(image)]
    assert fleet.status(image) == "tampered"
    [record] = _audited(fleet)
    assert record["subject"] == str(image)
    assert f"not a signer of image set {policy.name}" in record["reason"]
    assert _planned_for(fleet, image) == []


def test_a_new_image_signed_by_a_foreign_key_is_tampered(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [APPS])
    fleet.run()
    image = fleet.image("apps-0")
    resign_foreign(image)
    assert _scan(fleet, image) == [str(image)]
    assert _planned_for(fleet, image) == []


def test_the_sets_own_signatures_are_not_flagged(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [APPS])
    fleet.run()
    [image] = fleet.signed_images("apps", 1)
    assert _scan(fleet, image) == []
    assert fleet.status(image) == "present" and _audited(fleet) == []


def test_a_signed_image_that_lost_its_signatures_is_tampered(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, [APPS])
    fleet.run()
    [image] = fleet.signed_images("apps", 1)
    strip_and_modify(image)
    assert _scan(fleet, image) == [str(image)]
    [record] = _audited(fleet)
    assert "carries no signature now" in record["reason"]
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    report = build_report(fleet.engine, config, fleet.now)
    assert [t.path for t in report.tampered] == [str(image)]
    assert report.to_dict()["tampered"][0]["path"] == str(image)


def _signed_ephemerally(tmp_path: Path) -> tuple[Fleet, ApplyContext, Path]:
    fleet, ctx, _ = _fleet_with_log(tmp_path)
    image = fleet.image("ci-tool")
    fleet.track(image)
    assert [r.status for r in run_due(ctx, fleet.now) if r.kind == "sign-ephemeral"] == ["done"]
    return fleet, ctx, image


@pytest.mark.parametrize("attack", [strip_and_modify, resign_foreign], ids=["strip", "foreign"])
def test_ephemeral_scan_flags_a_stripped_or_foreign_signed_image(
        tmp_path: Path, attack: Callable[[Path], None]) -> None:
    fleet, ctx, image = _signed_ephemerally(tmp_path)
    assert _scan(fleet, image) == []
    attack(image)
    assert _scan(fleet, image) == [str(image)]
    assert _planned_for(fleet, image) == []
    assert [r for r in run_due(ctx, fleet.now) if r.kind == "sign-ephemeral"] == []


def test_ephemeral_apply_refuses_a_stripped_image_before_any_scan(tmp_path: Path) -> None:
    """The reviewer's finding 1 without the scan: apply itself reads the image and refuses."""
    from lifecycle.model.fleet import Action, ActionKind
    from lifecycle.strategies.apply import apply

    fleet, ctx, image = _signed_ephemerally(tmp_path)
    strip_and_modify(image)
    action = Action(ActionKind.SIGN_EPHEMERAL, str(image), fleet.now, fleet.now, "test", "ci")
    result = apply(action, ctx, fleet.now)
    assert result.status == "refused" and "carries no signature now" in result.detail
    assert fleet.status(image) == "tampered"


def test_ephemeral_rebuilt_image_that_is_re_tracked_is_signed(tmp_path: Path) -> None:
    """``track`` is the operator registering the image as it is now: not held against it."""
    fleet, ctx, image = _signed_ephemerally(tmp_path)
    strip_and_modify(image)
    fleet.track(image)
    assert fleet.status(image) == "present"
    assert [r.status for r in run_due(ctx, fleet.now) if r.kind == "sign-ephemeral"] == ["done"]


def test_tracked_ephemeral_images_signed_elsewhere_are_left_to_apply(tmp_path: Path) -> None:
    fleet, _, _ = _fleet_with_log(tmp_path)
    assert CI.strategy == "ephemeral"
    image = fleet.image("ci-new")
    resign_foreign(image)
    assert _scan(fleet, image) == []  # new: apply verifies it through the log, and refuses
