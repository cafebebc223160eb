"""The demo's forecast, right by construction: every claim of its report, at four simulated
dates across its three years, checked against real verification (tests/reports/oracle.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.reports.forecast import Forecast
from lifecycle.reports.groups import group_forecasts
from tests.demo.conftest import CHECKED_AFTER, DemoRun
from tests.reports.test_browser import check_layout


@pytest.mark.slow
def test_every_forecast_claim_holds_under_verification(demo_run: DemoRun) -> None:
    assert len(demo_run.reports) == len(CHECKED_AFTER) + 1
    assert demo_run.oracle.violations == []
    checked = demo_run.oracle.checked
    # Not vacuous: every kind of claim the demo's fleet makes was checked, and held.
    for kind in ("certificate-now", "certificate-until", "certificate-no",
                 "certificate-ephemeral", "key-now", "key-no", "tool-logged", "tool-renewed"):
        assert checked[kind] > 0, (kind, checked)


@pytest.mark.slow
def test_ephemeral_images_are_judged_by_their_evidence(demo_run: DemoRun) -> None:
    last = demo_run.reports[-1]
    ci: list[Forecast] = [f for f in last.forecasts if f.image_set == "ci"]
    assert sorted(f.path.rsplit("/", 1)[1] for f in ci) == ["ci-nightly.sif", "ci-tool.sif"]
    for f in ci:
        assert f.signers == f.logged and len(f.logged) == 1
        assert f.tool.verifies and f.tool.until is None and f.tool.text == "indefinitely"
        assert "https://ci.demo.example/pipelines/main" in f.tool.basis
        assert not f.certificate.verifies
        assert f.certificate.basis.startswith("its 10-minute certificate expired ")
        assert not f.key.verifies and "ephemeral key" in f.key.basis
    [summary] = [s for s in last.sets if s.name == "ci"]
    assert summary.verifiable_until is None
    # Verifiable for good: listed after the images that depend on a renewal, not first.
    assert [g.first.image_set for g in group_forecasts(last.forecasts)][-2:] == ["ci", "ci"]


@pytest.mark.slow
def test_the_demo_report_in_chromium(demo_run: DemoRun, tmp_path: Path) -> None:
    """The demo's report (its busiest page): no overlapping labels, statuses in their colours."""
    ws = demo_run.result.workspace
    check_layout(tmp_path, (ws / "report.html").read_bytes(),
                 json.loads((ws / "report.json").read_text()))
