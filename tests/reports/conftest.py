"""A small fixture fleet for reports, built with the real store, CA, planner and applier.

Two image sets on a simulated clock: ``base`` (reissue) and ``web`` (resign), two images each.
At 2027-03-05 both certificates were re-issued; the superseded ``base`` certificate was then
revoked, one ``web`` image tampered with, a bundle exported and a log entry made for ``base-0``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from lifecycle.bundles import ExportOptions, export
from lifecycle.config import Config, ImageSetPolicy
from lifecycle.reports import ReportData, build_report
from lifecycle.sif import SifImage
from lifecycle.store.tlog import SqlLogStorage, write_meta
from lifecycle.tlog import Log, NoteSigner, Submission
from lifecycle.verification.longterm import image_id
from tests.strategies.conftest import Fleet, make_fleet

T0 = datetime(2027, 1, 1, tzinfo=UTC)
REISSUED = datetime(2027, 3, 5, tzinfo=UTC)
NOW = datetime(2027, 3, 10, tzinfo=UTC)
ORIGIN = "example.org/report-log"


@dataclass
class ReportFleet:
    fleet: Fleet
    config: Config
    images: dict[str, Path]
    revoked_serial: str
    reissued_serials: dict[str, str]
    """Image set -> serial of its current (re-issued) certificate."""
    verifier_key: str


def tamper(path: Path) -> None:
    with SifImage.open(path) as image:
        offset = next(d.offset for d in image.objects if not d.is_signature)
    with path.open("r+b") as handle:
        handle.seek(offset + 4)
        handle.write(b"!")


def build(tmp_path: Path, url: str = "") -> ReportFleet:
    fleet = make_fleet(tmp_path, [ImageSetPolicy("base", ("base-*.sif",), "reissue"),
                                  ImageSetPolicy("web", ("web-*.sif",), "resign")], url)
    fleet.run()
    paths = fleet.signed_images("base", 2) + fleet.signed_images("web", 2)
    images = {p.stem: p for p in paths}
    first = {c.key_fingerprint: c.serial for c in fleet.state().certificates}
    signer = NoteSigner.generate(ORIGIN)
    write_meta(fleet.engine, {"origin": ORIGIN,
                              "verifier_key": signer.verifier.verifier_key()})
    log = Log(SqlLogStorage(fleet.engine), ORIGIN, signer, clock=lambda: fleet.now)
    with SifImage.open(images["base-0"]) as image:
        ident = image_id(image)
    log.append(Submission(hashlib.sha256(b"base-0").digest(), b"sig", b"cert", ident))
    fleet.now = REISSUED
    fleet.run()
    state = fleet.state()
    base_key = fleet.active_key("base")
    current = {next(k.image_set for k in state.keys if k.fingerprint == c.key_fingerprint):
               c.serial for c in state.certificates if not c.superseded}
    revoked = first[base_key]
    fleet.ca.revoke(revoked, x509.ReasonFlags.superseded)
    tamper(images["web-1"])
    fleet.now = REISSUED + timedelta(days=1)
    fleet.track(images["web-1"])
    export(fleet.ca, tmp_path / "bundle.tar.gz", now=fleet.now,  # stale at NOW: 1-day validity
           options=ExportOptions(validity=timedelta(days=1)))
    fleet.now = NOW
    config = Config(fleet.url, tmp_path / "keys", fleet.ca.settings, policies=fleet.policies)
    return ReportFleet(fleet, config, images, revoked, current, signer.verifier.verifier_key())


@pytest.fixture(scope="session")
def report_fleet(tmp_path_factory: pytest.TempPathFactory) -> ReportFleet:
    """Built once: the tests only read it (building takes a few seconds of signing)."""
    return build(tmp_path_factory.mktemp("report-fleet"))


@pytest.fixture(scope="session")
def report_data(report_fleet: ReportFleet) -> ReportData:
    return build_report(report_fleet.fleet.engine, report_fleet.config, NOW)
