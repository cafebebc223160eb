"""build_report over a real fleet; html, md and json carry the same facts; the command."""

from __future__ import annotations

import html
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.bundles import export_to_outbox
from lifecycle.cli.main import cli
from lifecycle.model.cert_status import CertStatus
from lifecycle.reports import ReportData, build_report, render, write_report
from lifecycle.reports.timeline import build_timeline
from tests.reports.conftest import NOW, REISSUED, T0, ReportFleet, build

JUN3 = datetime(2027, 6, 3, tzinfo=UTC)  # re-issued 2027-03-05 for 90 days
MAY4 = datetime(2027, 5, 4, tzinfo=UTC)  # 2/3 of those 90 days


def by_path(data: ReportData, name: str):  # type: ignore[no-untyped-def]
    return next(f for f in data.forecasts if Path(f.path).stem == name)


def test_fleet_report_data(report_fleet: ReportFleet, report_data: ReportData) -> None:
    check_fleet_report(report_fleet, report_data)


@pytest.mark.postgres
def test_fleet_report_on_postgres(tmp_path: Path, pg_url: str) -> None:
    fleet = build(tmp_path, pg_url)
    check_fleet_report(fleet, build_report(fleet.fleet.engine, fleet.config, NOW))


def check_fleet_report(report_fleet: ReportFleet, data: ReportData) -> None:
    """The fixture fleet's facts, computed by hand from its simulated dates."""
    sets = {s.name: s for s in data.sets}
    assert (sets["base"].present, sets["base"].tampered) == (2, 0)
    assert (sets["web"].present, sets["web"].tampered) == (1, 1)
    fleet = report_fleet.fleet
    assert sets["base"].signed_by == (fleet.active_key("base"),)
    assert sets["base"].certificate_until == JUN3 and sets["base"].verifiable_until is None
    base0, base1, web0, web1 = (by_path(data, n) for n in ("base-0", "base-1", "web-0", "web-1"))
    assert base0.certificate.until == base1.certificate.until == web0.certificate.until == JUN3
    # base-0 has a log entry, but its signature carries no evidence: judged like base-1.
    assert base0.tool == base1.tool and not base0.logged
    assert "reissue" in base1.tool.basis and base1.tool.until is None
    assert base1.keeps_verifiable is not None
    assert base1.keeps_verifiable.key == "reissue:" + report_fleet.reissued_serials["base"]
    assert base1.keeps_verifiable.not_before == MAY4
    # web's key became active at T0; it rotates 365 days later and is dropped 30 days after.
    assert web0.key.until == datetime(2028, 1, 31, tzinfo=UTC) and base0.key.until is None
    assert not (web1.certificate.verifies or web1.key.verifies or web1.tool.verifies)
    [tampered] = data.tampered
    assert Path(tampered.path).stem == "web-1" and tampered.event == "tampered"
    assert "integrity" in tampered.detail
    revoked = next(c for c in data.certificates if c.serial == report_fleet.revoked_serial)
    assert revoked.status == "revoked" and revoked.revoked_at == REISSUED
    current = {c.serial for c in data.certificates if c.status == CertStatus.CURRENT}
    assert current == set(report_fleet.reissued_serials.values())
    assert data.expiring == ()  # both end within 90 days, but their re-issues are planned
    assert {c.role for c in data.crls} == {"root", "intermediate"}
    assert data.log is not None and data.log.size == 1 and data.log.newest_entry == T0
    assert data.log.verifier_key == report_fleet.verifier_key
    assert data.bundle is not None and data.bundle.stale  # exported with a 1-day validity
    assert data.bundle.path.endswith("bundle.tar.gz")
    kinds = {a.key.split(":")[0] for a in data.actions}
    assert {"reissue", "rotate", "crl-refresh"} <= kinds


def test_formats_carry_the_same_facts(report_data: ReportData) -> None:
    doc = json.loads(render(report_data, "json"))
    assert doc == json.loads(json.dumps(report_data.to_dict()))
    for f, item in zip(report_data.forecasts, doc["forecasts"], strict=True):
        assert item["path"] == f.path and item["status"] == f.status
        for name in ("certificate", "key", "tool"):
            horizon = getattr(f, name)
            assert item[name]["verifies"] == horizon.verifies
            assert item[name]["until"] == (horizon.until.isoformat() if horizon.until else None)
    assert [s["name"] for s in doc["sets"]] == [s.name for s in report_data.sets]
    assert doc["log"]["size"] == 1 and doc["bundle"]["stale"] is True
    assert [a["key"] for a in doc["actions"]] == [a.key for a in report_data.actions]
    md = render(report_data, "md").decode()
    page = html.unescape(render(report_data, "html").decode())
    for f in report_data.forecasts:
        line = next(x for x in md.splitlines() if x.startswith("| ") and f"`{f.path}`" in x)
        for horizon in (f.certificate, f.key, f.tool):
            assert f"{horizon.text} ({horizon.basis})" in line
            assert horizon.basis in page
        assert f'data-path="{f.path}"' in page
    for action in report_data.actions:
        assert action.reason in md and action.reason in page
    for tampered in report_data.tampered:
        assert tampered.detail in md and tampered.detail in page
    assert report_data.log is not None
    assert report_data.log.verifier_key in md and report_data.log.verifier_key in page
    assert "stale: export a new bundle" in md and "stale: export a new bundle" in page
    # One status per certificate, the same in the JSON, the cards and the Markdown.
    counts = Counter(c.status for c in report_data.certificates)
    assert doc["certificate_statuses"] == {s.value: counts[s] for s in CertStatus}
    assert [c["status"] for c in doc["certificates"]] == [c.status for c in report_data.certificates]
    assert "Certificates: " + ", ".join(f"{counts[s]} {s}" for s in CertStatus) + "." in md
    assert f'{counts[CertStatus.CURRENT]} current</b>' in page
    for status in CertStatus:
        if counts[status] and status != CertStatus.CURRENT:
            assert f'<span data-status="{status}">{counts[status]} {status}</span>' in page


def test_timeline_lays_out_the_fleet(report_fleet: ReportFleet, report_data: ReportData) -> None:
    tl = build_timeline(report_data)
    bars = {b.id: b for b in tl.bars}
    for cert in report_data.certificates:
        assert f"cert-{cert.serial}" in bars
    for serial in report_fleet.reissued_serials.values():
        cert_bar, window = bars[f"cert-{serial}"], bars[f"renewal-{serial}"]
        assert window.x + window.width == cert_bar.x + cert_bar.width  # both end at notAfter
        assert window.x > cert_bar.x
    assert {f"key-{k.fingerprint}" for k in report_data.keys} <= set(bars)
    markers = {key: m for m in tl.markers for key in m.keys}
    assert {a.key for a in report_data.actions} == set(markers)  # every action has a marker
    reissue = markers["reissue:" + report_fleet.reissued_serials["web"]]
    assert reissue.due == "2027-06-03" and reissue.x == bars[
        "cert-" + report_fleet.reissued_serials["web"]].x + bars[
        "cert-" + report_fleet.reissued_serials["web"]].width
    assert tl.ticks[0].label == "2027" and {t.label for t in tl.ticks} >= {"Feb", "2028"}
    assert 0 < tl.now_x < tl.width


def _config_file(report_fleet: ReportFleet, directory: Path) -> Path:
    sets = "".join(
        f'\n[[image_sets]]\nname = "{p.name}"\npaths = {json.dumps(list(p.paths))}\n'
        f'strategy = "{p.strategy}"\npublish_directory = "{p.publish_directory}"\n'
        for p in report_fleet.config.policies.image_sets)
    path = directory / "lifecycle.toml"
    path.write_text(f'[database]\nurl = "{report_fleet.fleet.url}"\n{sets}')
    return path


def test_report_command(report_fleet: ReportFleet, report_data: ReportData,
                        tmp_path: Path) -> None:
    config = _config_file(report_fleet, tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "--config", str(config), "--at", NOW.isoformat(),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(render(report_data, "json"))
    out = tmp_path / "out" / "report.md"
    result = runner.invoke(cli, ["report", "--config", str(config), "--at", NOW.isoformat(),
                                 "--format", "md", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == render(report_data, "md")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(cli, ["report", "--config", str(config), "--out",
                                 str(blocker / "report.html")])
    assert result.exit_code == 2 and "cannot write the report" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(cli, ["report", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "missing.toml" in result.output


def test_report_command_log_database(report_fleet: ReportFleet, tmp_path: Path) -> None:
    config = str(_config_file(report_fleet, tmp_path))
    runner = CliRunner()
    store_file = report_fleet.fleet.url.removeprefix("sqlite:///")
    result = runner.invoke(cli, ["report", "--config", config, "--format", "json",
                                 "--tlog-db", store_file])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["log"]["verifier_key"] == report_fleet.verifier_key
    missing = tmp_path / "nolog.db"
    result = runner.invoke(cli, ["report", "--config", config, "--tlog-db", str(missing)])
    assert result.exit_code == 2 and f"{missing}: no such log database" in result.output
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    result = runner.invoke(cli, ["report", "--config", config, "--tlog-db", str(empty)])
    assert result.exit_code == 2 and "has no transparency log" in result.output


def test_write_report_writes_three_formats(report_fleet: ReportFleet, report_data: ReportData,
                                           tmp_path: Path) -> None:
    paths = write_report(report_fleet.fleet.engine, report_fleet.config, NOW, tmp_path / "r")
    assert [p.name for p in paths] == ["report.html", "report.md", "report.json"]
    for path, fmt in zip(paths, ("html", "md", "json"), strict=True):
        assert path.read_bytes() == render(report_data, fmt)
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.startswith(".")]


def test_bundle_freshness_from_an_outbox(report_fleet: ReportFleet, tmp_path: Path) -> None:
    # Exported after NOW, so the shared fixture's reports (as of NOW) do not see its audit row.
    later = NOW + timedelta(days=1)
    made = export_to_outbox(report_fleet.fleet.ca, tmp_path / "outbox", 2, now=later)
    data = build_report(report_fleet.fleet.engine, report_fleet.config, later,
                        outbox=tmp_path / "outbox")
    assert data.bundle is not None and data.bundle.path == str(made.path)
    assert (data.bundle.created, data.bundle.valid_until) == (later, made.manifest.valid_until)
    assert not data.bundle.stale
    stale = build_report(report_fleet.fleet.engine, report_fleet.config,
                         made.manifest.valid_until, outbox=tmp_path / "outbox")
    assert stale.bundle is not None and stale.bundle.stale
