"""Rollback and freeze: an older bundle is never accepted again, an expired one only when asked.

The scenario of issue 11: export A, revoke the signing key (keyCompromise), export B, verify B
(the image is rejected), then A: it must be refused, whether or not it carries a log (with a log
whose size did not change, the checkpoint alone cannot tell them apart), as a directory or a
``.tar.gz``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from lifecycle.bundles import export, open_bundle
from lifecycle.bundles import exporter as ex
from lifecycle.bundles.archive import read_bundle
from lifecycle.errors import BundleVerificationError
from lifecycle.store.ca_service import LEAF
from tests.bundles.conftest import Fleet, run_cli


def _revoke_key_a(fleet: Fleet) -> None:
    signed_by_a = next(c for c in fleet.ca.certificates()
                       if c.role == LEAF and c.serial != fleet.revoked_serial)
    for cert in fleet.ca.certificates():
        if cert.role == LEAF and cert.key_id == signed_by_a.key_id:
            fleet.ca.revoke(cert.serial, x509.ReasonFlags.key_compromise)


@pytest.mark.parametrize("with_log", [True, False], ids=["with-log", "no-log"])
@pytest.mark.parametrize("form", ["tar.gz", "dir"])
def test_bundle_from_before_a_revocation_is_refused_after_a_newer_one(
        fleet: Fleet, tmp_path: Path, form: str, with_log: bool) -> None:
    suffix = ".tar.gz" if form == "tar.gz" else ""
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    export(fleet.ca, a, log=fleet.log() if with_log else None)
    env = {"SIF_LIFECYCLE_TRUST_STORE": str(tmp_path / "trust")}
    image = fleet.images["good-a"]
    before = run_cli("verify", "--bundle", a, image, env=env)
    assert before.exit_code == 0, before.output
    _revoke_key_a(fleet)
    export(fleet.ca, b, log=fleet.log() if with_log else None)  # the log did not grow
    after = run_cli("verify", "--bundle", b, image, env=env)
    assert after.exit_code == 1 and "Container verified" not in after.output
    replay = run_cli("bundle", "verify", a, env=env)
    assert replay.exit_code == 1
    assert "ROLLBACK: this bundle is version 1" in replay.output
    assert "older than version 2 imported before" in replay.output
    replayed_verify = run_cli("verify", "--bundle", a, image, env=env)
    assert replayed_verify.exit_code == 1 and "ROLLBACK" in replayed_verify.output
    assert "Container verified" not in replayed_verify.output
    # the stale override is no way around it
    forced = run_cli("verify", "--bundle", a, "--allow-stale", "please", image, env=env)
    assert forced.exit_code == 1 and "ROLLBACK" in forced.output
    # B itself stays acceptable (same version, same content) and still rejects the image
    again = run_cli("bundle", "verify", b, env=env)
    assert again.exit_code == 0 and "version 2, as imported before" in again.output


def test_versions_grow_per_bundle_key_and_are_signed(fleet: Fleet, tmp_path: Path) -> None:
    versions = [export(fleet.ca, tmp_path / f"b{i}").manifest.version for i in range(3)]
    assert versions == [1, 2, 3]
    trust = tmp_path / "trust"
    for i in (0, 2):
        open_bundle(tmp_path / f"b{i}", trust_store=trust)
    with pytest.raises(BundleVerificationError, match="ROLLBACK: this bundle is version 2"):
        open_bundle(tmp_path / "b1", trust_store=trust)  # skipped versions are fine, lower not


def test_same_version_with_other_content_is_refused(fleet: Fleet, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "next_version", lambda _ca, _kid: 7)
    export(fleet.ca, tmp_path / "one")
    _revoke_key_a(fleet)
    export(fleet.ca, tmp_path / "two")
    trust = tmp_path / "trust"
    open_bundle(tmp_path / "one", trust_store=trust)
    with pytest.raises(BundleVerificationError, match="is version 7 but differs from the version 7"):
        open_bundle(tmp_path / "two", trust_store=trust)


def test_expired_bundle_is_refused_by_verify_bundle_and_override_says_so(
        fleet: Fleet, tmp_path: Path) -> None:
    report = export(fleet.ca, tmp_path / "b.tar.gz", now=fleet.ca.clock() - timedelta(days=8))
    assert report.manifest.valid_until < fleet.ca.clock()
    env = {"SIF_LIFECYCLE_TRUST_STORE": str(tmp_path / "trust")}
    image = fleet.images["pgp-c"]
    refused = run_cli("verify", "--bundle", tmp_path / "b.tar.gz", image, env=env)
    assert refused.exit_code == 1 and "bundle is STALE" in refused.output
    assert "Container verified" not in refused.output
    forced = run_cli("verify", "--bundle", tmp_path / "b.tar.gz", "--allow-stale",
                     "inventory before the courier", image, env=env)
    assert forced.exit_code == 0, forced.output
    assert ("WARNING: bundle is STALE" in forced.output
            and "ACCEPTED ONLY BECAUSE --allow-stale: inventory before the courier" in forced.output)


def test_export_refuses_a_validity_its_crls_cannot_cover(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    result = run_cli("bundle", "export", "--config", fleet.config, "--validity-days", "8", out)
    assert result.exit_code == 2
    assert "cannot promise a validity of 8 days: crls/" in result.output
    assert result.output.count("\n") == 1 and not out.exists()
    ok = run_cli("bundle", "export", "--config", fleet.config, "--validity-days", "7", out)
    assert ok.exit_code == 0, ok.output
    assert "version 1, valid until" in ok.output
    assert len(read_bundle(out)) == int(ok.output.split(": ", 1)[1].split(" files")[0])
