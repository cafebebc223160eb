"""The report's "verifies now" claims are confirmed by the one verdict, not by the model alone."""

from __future__ import annotations

from pathlib import Path

from lifecycle.reports import Forecast, ReportData, build_report
from tests.reports.conftest import NOW, build, tamper


def _by_path(data: ReportData) -> dict[str, Forecast]:
    return {f.path: f for f in data.forecasts}


def test_claims_are_confirmed_and_a_silently_changed_image_is_refuted(tmp_path: Path) -> None:
    fleet = build(tmp_path)
    engine, config = fleet.fleet.engine, fleet.config
    checked = _by_path(build_report(engine, config, NOW, verify_images=True))
    modelled = _by_path(build_report(engine, config, NOW))
    assert checked == modelled  # every claim of the intact fleet holds under verify()
    changed = str(fleet.images["base-1"])
    assert modelled[changed].key.verifies

    tamper(fleet.images["base-1"])  # after the last scan: the inventory still says present
    still_modelled = _by_path(build_report(engine, config, NOW))[changed]
    assert still_modelled.key.verifies
    refuted = _by_path(build_report(engine, config, NOW, verify_images=True))[changed]
    for horizon in (refuted.certificate, refuted.key, refuted.tool):
        assert not horizon.verifies and horizon.basis.startswith("verification fails now")

    fleet.images["base-1"].unlink()  # vanished since the scan: no claim, one-line reason
    gone = _by_path(build_report(engine, config, NOW, verify_images=True))[changed]
    assert not gone.key.verifies and gone.key.basis.startswith("cannot be verified now")
