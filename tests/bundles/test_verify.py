"""Offline bundle verification: pinning, tampering, staleness, and the log's consistency."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.bundles import export, open_bundle
from lifecycle.bundles import layout as lay
from lifecycle.bundles import manifest as mf
from lifecycle.bundles.archive import read_bundle, write_bundle
from lifecycle.bundles.freshness import StaleOverride
from lifecycle.errors import BundleError, BundleVerificationError, LogForkError
from lifecycle.pki import keys
from lifecycle.store.db import make_engine
from lifecycle.store.migrate import open_migrated
from lifecycle.store.tlog import SqlLogStorage, read_meta, write_meta
from lifecycle.tlog import Log, Submission
from tests.bundles.conftest import Fleet, run_cli


@pytest.fixture
def trust(tmp_path: Path) -> Path:
    return tmp_path / "trust"


def _rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of bundle ``source`` (same form) with files replaced, added or (None) removed."""
    files = read_bundle(source)
    created = mf.Manifest.decode(files[mf.MANIFEST]).created
    for name, data in change.items():
        if data is None:
            del files[name]
        else:
            files[name] = data
    write_bundle(target, files, created)
    return target


@pytest.mark.parametrize("name", ["b.tar.gz", "b"])
def test_both_forms_verify_and_first_use_pins_loudly(fleet: Fleet, tmp_path: Path, trust: Path,
                                                     name: str) -> None:
    report = export(fleet.ca, tmp_path / name, log=fleet.log())
    opened = open_bundle(tmp_path / name, trust_store=trust)
    assert opened.keyid == report.bundle_keyid and not opened.stale
    assert any("TRUST ON FIRST USE" in n and report.bundle_keyid in n for n in opened.notes)
    again = open_bundle(tmp_path / name, trust_store=trust)
    assert not any("TRUST ON FIRST USE" in n for n in again.notes)


def test_cli_verify_reports_pinning_and_freshness(fleet: Fleet, tmp_path: Path, trust: Path
                                                  ) -> None:
    export(fleet.ca, tmp_path / "b.tar.gz")
    result = run_cli("bundle", "verify", "--trust-store", trust, tmp_path / "b.tar.gz")
    assert result.exit_code == 0, result.output
    assert "WARNING: TRUST ON FIRST USE: pinned bundle key SHA256:" in result.output
    assert "verified:" in result.output and "(fresh)" in result.output


TAMPERS = {
    "changed": ({lay.ROOTS: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
                "certs/roots.pem does not match its manifest digest"),
    "added": ({"keys/rogue.pub": b"rogue"}, "not listed in the manifest were added: keys/rogue.pub"),
    "removed": ({lay.LOG_CHECKPOINT: None}, "are missing: tlog/checkpoint.txt"),
    "manifest-edited": ({mf.MANIFEST: b"{}"}, "manifest.json differs from the signed manifest"),
    "envelope-removed": ({mf.ENVELOPE: None}, "manifest.dsse.json is missing"),
}


@pytest.mark.parametrize("form", ["b.tar.gz", "b"])
@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_bundle_is_rejected(fleet: Fleet, tmp_path: Path, trust: Path, tamper: str,
                                     form: str) -> None:
    export(fleet.ca, tmp_path / form, log=fleet.log())
    open_bundle(tmp_path / form, trust_store=trust)  # pins the genuine key
    change, message = TAMPERS[tamper]
    bad = _rewrite(tmp_path / form, tmp_path / f"bad-{form}", change)
    with pytest.raises(BundleVerificationError, match=message):
        open_bundle(bad, trust_store=trust)
    result = run_cli("bundle", "verify", "--trust-store", trust, bad)
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1


def _resigned(source: Path, target: Path) -> Path:
    """What an attacker can do: add a key, rebuild the manifest, sign it with their own key."""
    files = read_bundle(source)
    attacker = keys.generate_private_key(keys.KeyAlgorithm.P256)
    files["keys/rogue.pub"] = keys.public_pem(attacker.public_key())
    files[lay.BUNDLE_KEY] = keys.public_pem(attacker.public_key())
    old = mf.Manifest.decode(files.pop(mf.MANIFEST))
    del files[mf.ENVELOPE]
    manifest = dataclasses.replace(old, files=tuple(
        mf.FileEntry(p, "public-key", len(d), mf.sha256_hex(d)) for p, d in sorted(files.items())))
    payload = manifest.encode()
    files[mf.MANIFEST], files[mf.ENVELOPE] = payload, mf.sign_manifest(payload, attacker)
    write_bundle(target, files, old.created)
    return target


def test_manifest_resigned_by_another_key_is_rejected_after_pinning(fleet: Fleet, tmp_path: Path,
                                                                    trust: Path) -> None:
    export(fleet.ca, tmp_path / "b")
    bad = _resigned(tmp_path / "b", tmp_path / "bad")
    open_bundle(bad, trust_store=tmp_path / "elsewhere")  # self-consistent: TOFU alone accepts it
    open_bundle(tmp_path / "b", trust_store=trust)
    with pytest.raises(BundleVerificationError, match="but this trust store pins"):
        open_bundle(bad, trust_store=trust)


def test_trust_key_pins_explicitly_and_rejects_other_signers(fleet: Fleet, tmp_path: Path,
                                                             trust: Path) -> None:
    export(fleet.ca, tmp_path / "b")
    pinned = tmp_path / "bundle-key.pub"
    shutil.copy(tmp_path / "b" / lay.BUNDLE_KEY, pinned)
    bad = _resigned(tmp_path / "b", tmp_path / "bad")
    with pytest.raises(BundleVerificationError, match="not by the pinned bundle key"):
        open_bundle(bad, trust_store=trust, trust_key=pinned)
    result = run_cli("bundle", "verify", "--trust-store", trust, "--trust-key", pinned,
                     tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert "pinned bundle key SHA256:" in result.output and "explicitly" in result.output
    assert "TRUST ON FIRST USE" not in result.output


def test_expired_bundle_is_refused_unless_overridden_with_a_reason(
        fleet: Fleet, tmp_path: Path, trust: Path) -> None:
    report = export(fleet.ca, tmp_path / "b.tar.gz")
    late = report.manifest.valid_until + timedelta(seconds=1)
    with pytest.raises(BundleVerificationError, match="bundle is STALE: valid until"):
        open_bundle(tmp_path / "b.tar.gz", trust_store=trust, at=late)
    assert not (trust / "trust.json").exists()  # nothing imported from a refused bundle
    opened = open_bundle(tmp_path / "b.tar.gz", trust_store=trust, at=late,
                         allow_stale=StaleOverride("courier delayed"))
    assert opened.stale
    assert any(n.startswith("WARNING: bundle is STALE") and n.endswith(
        "ACCEPTED ONLY BECAUSE --allow-stale: courier delayed") for n in opened.notes)
    at = late.isoformat()
    refused = run_cli("bundle", "verify", "--trust-store", trust, "--at", at, tmp_path / "b.tar.gz")
    assert refused.exit_code == 1 and "bundle is STALE: valid until" in refused.output
    assert "--allow-stale REASON" in refused.output
    lenient = run_cli("bundle", "verify", "--trust-store", trust, "--at", at, "--allow-stale",
                      "site cut off", tmp_path / "b.tar.gz")
    assert lenient.exit_code == 0 and "(STALE)" in lenient.output
    assert "ACCEPTED ONLY BECAUSE --allow-stale: site cut off" in lenient.output
    empty = run_cli("bundle", "verify", "--trust-store", trust, "--at", at, "--allow-stale", " ",
                    tmp_path / "b.tar.gz")
    assert empty.exit_code == 2 and "--allow-stale needs a reason" in empty.output
    fresh = run_cli("bundle", "verify", "--trust-store", trust,
                    "--at", (report.manifest.valid_until - timedelta(seconds=1)).isoformat(),
                    tmp_path / "b.tar.gz")
    assert fresh.exit_code == 0 and "(fresh)" in fresh.output


def test_newer_bundle_must_prove_the_log_grew(fleet: Fleet, tmp_path: Path, trust: Path) -> None:
    export(fleet.ca, tmp_path / "old", log=fleet.log())
    fleet.grow_log(2)
    export(fleet.ca, tmp_path / "new", log=fleet.log())  # proves 3 -> 5 (size of the last export)
    open_bundle(tmp_path / "old", trust_store=trust)
    opened = open_bundle(tmp_path / "new", trust_store=trust)
    assert "grew from size 3 to 5, consistent" in opened.notes[-1]
    with pytest.raises(BundleVerificationError, match="ROLLBACK: this bundle is version 1"):
        open_bundle(tmp_path / "old", trust_store=trust)


def test_newer_bundle_without_a_proof_is_rejected(fleet: Fleet, tmp_path: Path, trust: Path
                                                  ) -> None:
    from lifecycle.bundles.exporter import ExportOptions

    export(fleet.ca, tmp_path / "old", log=fleet.log())
    open_bundle(tmp_path / "old", trust_store=trust)
    fleet.grow_log(2)
    export(fleet.ca, tmp_path / "new", log=fleet.log(), options=ExportOptions(proof_history=0))
    with pytest.raises(BundleVerificationError, match="re-export with --consistency-from 3"):
        open_bundle(tmp_path / "new", trust_store=trust)
    export(fleet.ca, tmp_path / "fixed", log=fleet.log(),
           options=ExportOptions(proof_history=0, consistency_from=(3,)))
    assert "grew from size 3 to 5" in open_bundle(tmp_path / "fixed", trust_store=trust).notes[-1]


def _forked_log(fleet: Fleet, tmp_path: Path) -> Log:
    """The same log key and origin over a different history: what a compromised log would show."""
    original = fleet.log()
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    engine = open_migrated(url)
    write_meta(engine, read_meta(make_engine(f"sqlite:///{fleet.tlog_db}")))
    fork = Log(SqlLogStorage(engine), original.origin, original.signer)
    for i in range(5):
        fork.append(Submission(bytes([i]) * 32, b"other", b"cert", f"forged-{i}"))
    return fork


def test_forked_log_between_two_bundles_is_rejected(fleet: Fleet, tmp_path: Path, trust: Path
                                                    ) -> None:
    from lifecycle.bundles.exporter import ExportOptions

    export(fleet.ca, tmp_path / "old", log=fleet.log())
    open_bundle(tmp_path / "old", trust_store=trust)
    fork = _forked_log(fleet, tmp_path)
    export(fleet.ca, tmp_path / "forked", log=fork, options=ExportOptions(consistency_from=(3,)))
    with pytest.raises(LogForkError, match="does not extend the remembered"):
        open_bundle(tmp_path / "forked", trust_store=trust)
    result = run_cli("bundle", "verify", "--trust-store", trust, tmp_path / "forked")
    assert result.exit_code == 1 and "does not extend the remembered" in result.output


def test_same_size_different_root_is_a_fork(fleet: Fleet, tmp_path: Path, trust: Path) -> None:
    fleet.grow_log(2)
    export(fleet.ca, tmp_path / "honest", log=fleet.log())
    open_bundle(tmp_path / "honest", trust_store=trust)
    export(fleet.ca, tmp_path / "forked", log=_forked_log(fleet, tmp_path))
    with pytest.raises(LogForkError, match="signed two roots for size 5"):
        open_bundle(tmp_path / "forked", trust_store=trust)


@pytest.mark.parametrize("content", [b"not a tar", b""])
def test_unreadable_bundle_is_exit_2(tmp_path: Path, trust: Path, content: bytes) -> None:
    path = tmp_path / "junk.tar.gz"
    path.write_bytes(content)
    with pytest.raises(BundleError, match=r"not a readable tar\.gz bundle"):
        open_bundle(path, trust_store=trust)
    result = run_cli("bundle", "verify", "--trust-store", trust, path)
    assert result.exit_code == 2 and "junk.tar.gz: not a readable tar.gz bundle" in result.output


def test_archive_with_a_link_or_traversal_is_refused(tmp_path: Path, trust: Path) -> None:
    import io
    import tarfile

    for name, kind in (("../escape", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)):
        path = tmp_path / f"{kind!r}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(BundleError, match=r"unsafe name|not a regular file"):
            open_bundle(path, trust_store=trust)


def test_unusable_trust_key_is_exit_2(fleet: Fleet, tmp_path: Path, trust: Path) -> None:
    export(fleet.ca, tmp_path / "b")
    bad_key = tmp_path / "not-a-key.pub"
    bad_key.write_text("hello")
    result = run_cli("bundle", "verify", "--trust-store", trust, "--trust-key", bad_key,
                     tmp_path / "b")
    assert result.exit_code == 2 and "not-a-key.pub" in result.output
    assert not (trust / "trust.json").exists()
