"""Export: what a bundle holds, its manifest and signature, sizes, atomic writing, the outbox."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from lifecycle.bundles import export, export_to_outbox
from lifecycle.bundles import layout as lay
from lifecycle.bundles import manifest as mf
from lifecycle.bundles.archive import read_bundle
from lifecycle.bundles.exporter import BUNDLE_PURPOSE
from lifecycle.errors import BundleError
from lifecycle.integrity import dsse
from lifecycle.pki import keys
from lifecycle.store.ca_service import LEAF
from tests.bundles.conftest import Fleet, run_cli
from tests.conftest import require_tool


def test_bundle_holds_every_generation_crls_once_ocsp_keys_and_log(fleet: Fleet, tmp_path: Path
                                                                     ) -> None:
    report = export(fleet.ca, tmp_path / "b", log=fleet.log())
    files = read_bundle(tmp_path / "b")
    leaves = [c for c in fleet.ca.certificates() if c.role == LEAF]
    assert len(leaves) == 3  # A, A re-issued, B (revoked)
    for row in leaves:
        assert files[lay.leaf(row.serial)] == row.pem.encode()
        response = ocsp.load_der_ocsp_response(files[f"ocsp/{row.serial}.der"])
        assert response.serial_number == int(row.serial, 16)
        expected = (ocsp.OCSPCertStatus.REVOKED if row.serial == fleet.revoked_serial
                    else ocsp.OCSPCertStatus.GOOD)
        assert response.certificate_status == expected
    crl_files = sorted(p for p in files if p.startswith("crls/"))
    issuers = {x509.load_pem_x509_crl(files[p]).issuer for p in crl_files}
    assert len(crl_files) == len(issuers) == 2  # root's and intermediate's, each once
    revoked_list = x509.load_pem_x509_crl(files["crls/intermediate.crl.pem"])
    assert revoked_list.get_revoked_certificate_by_serial_number(int(fleet.revoked_serial, 16))
    assert files[lay.LOG_CHECKPOINT].startswith(b"example.org/fleet-log\n3\n")
    # the manifest lists every file but itself and its envelope, with true sizes and digests
    manifest = mf.Manifest.decode(files[mf.MANIFEST])
    assert {f.path for f in manifest.files} == set(files) - {mf.MANIFEST, mf.ENVELOPE}
    for entry in manifest.files:
        assert entry.size == len(files[entry.path])
        assert entry.sha256 == mf.sha256_hex(files[entry.path])
    assert manifest.format_version == mf.FORMAT_VERSION
    # valid_until is the promised validity (7 days by default), and every CRL and OCSP response
    # inside covers it (made so at export: the OCSP responder's own lifetime is 12 h)
    next_updates = [x509.load_pem_x509_crl(files[p]).next_update_utc for p in crl_files]
    next_updates += [ocsp.load_der_ocsp_response(files[p]).next_update_utc
                     for p in files if p.startswith("ocsp/")]
    assert manifest.valid_until == (manifest.created + timedelta(days=7)).replace(microsecond=0)
    assert all(t is not None and t >= manifest.valid_until for t in next_updates)
    assert manifest.version == 1
    # sizes per kind add up to everything written
    assert report.total == sum(len(d) for d in files.values())
    assert report.sizes["crl"] == sum(len(files[p]) for p in crl_files)
    assert set(report.sizes) >= {"certificate", "crl", "ocsp", "public-key", "pgp-keyring", "tlog"}


def test_manifest_is_signed_by_the_bundle_key_from_the_key_store(fleet: Fleet, tmp_path: Path
                                                                 ) -> None:
    first = export(fleet.ca, tmp_path / "one")
    second = export(fleet.ca, tmp_path / "two")
    assert first.created_key and not second.created_key
    rows = [r for r in fleet.ca.keys.list() if r.purpose == BUNDLE_PURPOSE]
    assert len(rows) == 1 and rows[0].state == "active"
    files = read_bundle(tmp_path / "two")
    signed = mf.parse_envelope(files[mf.ENVELOPE])
    assert signed.payload == files[mf.MANIFEST]
    public = keys.load_public_key(files[lay.BUNDLE_KEY], path="bundle key")
    assert signed.keyid == dsse.keyid(public) == second.bundle_keyid == rows[0].dsse_keyid
    mf.check_signature(signed, public)
    assert json.loads(files[mf.ENVELOPE])["payloadType"] == mf.PAYLOAD_TYPE


def test_securesystemslib_verifies_the_manifest_envelope(fleet: Fleet, tmp_path: Path) -> None:
    """An independent DSSE implementation accepts our envelope and key."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    export(fleet.ca, tmp_path / "b")
    files = read_bundle(tmp_path / "b")
    public = keys.load_public_key(files[lay.BUNDLE_KEY], path="bundle key")
    key = SSlibKey.from_crypto(public, keyid=dsse.keyid(public))
    envelope = Envelope.from_dict(json.loads(files[mf.ENVELOPE]))
    assert envelope.payload == files[mf.MANIFEST]
    verified = envelope.verify([key], 1)
    assert set(verified) == {dsse.keyid(public)}


def test_public_keys_keyring_and_ecl(fleet: Fleet, tmp_path: Path) -> None:
    export(fleet.ca, tmp_path / "b")
    files = read_bundle(tmp_path / "b")
    manifest = mf.Manifest.decode(files[mf.MANIFEST])
    by_kind: dict[str, list[mf.KeyEntry]] = {k.kind: [] for k in manifest.keys}
    for entry in manifest.keys:
        by_kind[entry.kind].append(entry)
    pgp_entry = by_kind["pgp"][0]
    revoked_key = next(k for k in by_kind["pem"] if lay.leaf(fleet.revoked_serial) in k.certificates)
    good_key = next(k for k in by_kind["pem"] if k is not revoked_key)
    assert len(good_key.certificates) == 2  # both generations
    assert revoked_key.file == ""  # never exported bare: stock `--key` would skip revocation
    assert keys.fingerprint(keys.load_public_key(files[good_key.file], path="k")) == \
        good_key.fingerprint
    ecl = tomllib.loads(files[lay.ECL].decode())
    assert ecl["activated"] is True
    assert ecl["execgroup"] == [{"tagname": "sif-lifecycle", "mode": "whitelist", "dirpath": "",
                                 "keyfp": [pgp_entry.fingerprint.upper()]}]
    readme = files[lay.README].decode()
    for serial in good_key.certificates:
        assert (f"singularity verify --certificate {serial} --certificate-intermediates "
                f"{lay.INTERMEDIATES} --certificate-roots {lay.ROOTS} IMAGE.sif") in readme
        assert f"apptainer verify --certificate {serial} " in readme
    assert f"singularity verify --key {good_key.file} IMAGE.sif" in readme
    assert f"REVOKED: certificate {lay.leaf(fleet.revoked_serial)}" in readme
    assert f"--certificate {lay.leaf(fleet.revoked_serial)}" not in readme


def test_gpg_imports_the_keyring(fleet: Fleet, tmp_path: Path) -> None:
    gpg = require_tool("gpg")
    export(fleet.ca, tmp_path / "b")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    done = subprocess.run([gpg, "--homedir", str(home), "--batch", "--import",
                           str(tmp_path / "b" / lay.PGP_KEYRING)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    listing = subprocess.run([gpg, "--homedir", str(home), "--with-colons", "--list-keys"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    fingerprint = next(r.fingerprint for r in fleet.ca.keys.list() if r.kind == "pgp")
    assert f"fpr:::::::::{fingerprint.upper()}:" in listing


def test_images_selects_the_keys_of_an_image_set(fleet: Fleet, tmp_path: Path) -> None:
    pgp_row = next(r for r in fleet.ca.keys.list() if r.kind == "pgp")
    export(fleet.ca, tmp_path / "b", images=[pgp_row.fingerprint])
    files = read_bundle(tmp_path / "b")
    manifest = mf.Manifest.decode(files[mf.MANIFEST])
    assert [k.fingerprint for k in manifest.keys] == [pgp_row.fingerprint]
    assert not any(p.startswith(("certs/leaves/", "ocsp/", "keys/")) and p != lay.PGP_KEYRING
                   for p in files)


@pytest.mark.parametrize("name", ["b.tar.gz", "b"])
def test_existing_target_is_refused_and_left_alone(fleet: Fleet, tmp_path: Path, name: str
                                                   ) -> None:
    target = tmp_path / name
    export(fleet.ca, target)
    before = read_bundle(target)
    with pytest.raises(BundleError, match="already exists"):
        export(fleet.ca, target)
    assert read_bundle(target) == before


@pytest.mark.parametrize("name", ["b.tar.gz", "b"])
def test_a_failed_write_leaves_nothing(fleet: Fleet, tmp_path: Path, name: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import lifecycle.bundles.archive as archive

    export(fleet.ca, tmp_path / "first")  # makes the bundle key: its file write fsyncs too

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setattr(archive.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        export(fleet.ca, out_dir / name)
    assert list(out_dir.iterdir()) == []


def test_a_log_without_its_key_is_refused_before_writing(fleet: Fleet, tmp_path: Path) -> None:
    log = fleet.log()
    log.signer = None
    with pytest.raises(BundleError, match="without its key"):
        export(fleet.ca, tmp_path / "b.tar.gz", log=log)
    assert not (tmp_path / "b.tar.gz").exists()


def test_outbox_writes_on_change_refreshes_before_stale_and_keeps_n(fleet: Fleet, tmp_path: Path
                                                                    ) -> None:
    outbox = tmp_path / "outbox"
    start = fleet.ca.clock()
    first = export_to_outbox(fleet.ca, outbox, 2, log=fleet.log(), now=start)
    assert first.written
    same = export_to_outbox(fleet.ca, outbox, 2, log=fleet.log(), now=start + timedelta(hours=1))
    assert not same.written and same.path == first.path
    fleet.grow_log(1)  # new checkpoint: new content
    grown = export_to_outbox(fleet.ca, outbox, 2, log=fleet.log(), now=start + timedelta(hours=2))
    assert grown.written and grown.path != first.path
    # unchanged, but less than half of its 12 h life left: refreshed
    later = start + timedelta(hours=2) + (grown.manifest.valid_until - grown.manifest.created) * 0.6
    refreshed = export_to_outbox(fleet.ca, outbox, 2, log=fleet.log(), now=later)
    assert refreshed.written
    names = sorted(p.name for p in outbox.iterdir())
    assert names == sorted([grown.path.name, refreshed.path.name])  # the oldest was pruned
    # the automatic consistency proof from the previous export's size
    proofs = json.loads(read_bundle(grown.path)[lay.LOG_CONSISTENCY])
    assert [(p["old_size"], p["new_size"]) for p in proofs] == [(3, 4)]


def test_cli_export_reports_sizes(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "site.tar.gz"
    result = run_cli("bundle", "export", "--config", fleet.config, "--tlog-db", fleet.tlog_db,
                     "--tlog-key", fleet.tlog_key, out)
    assert result.exit_code == 0, result.output
    assert "created the bundle-signing key SHA256:" in result.output
    assert f"wrote {out}" in result.output
    for kind in ("certificate", "crl", "ocsp", "pgp-keyring", "tlog", "manifest"):
        assert f"  {kind}" in result.output
    assert lay.LOG_CHECKPOINT in read_bundle(out)


def test_cli_export_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("bundle", "export", "--config", tmp_path / "missing.toml", tmp_path / "b")
    assert result.exit_code == 2
    assert "missing.toml: config file does not exist" in result.output
    assert not (tmp_path / "b").exists()


def test_cli_images_selects_the_keys_that_signed_them(fleet: Fleet, tmp_path: Path) -> None:
    chosen = tmp_path / "set"
    chosen.mkdir()
    for name in ("good-a", "pgp-c"):
        shutil.copy(fleet.images[name], chosen / f"{name}.sif")
    result = run_cli("bundle", "export", "--config", fleet.config, "--images", chosen,
                     tmp_path / "b")
    assert result.exit_code == 0, result.output
    manifest = mf.Manifest.decode((tmp_path / "b" / mf.MANIFEST).read_bytes())
    rows = {r.fingerprint: r for r in fleet.ca.keys.list() if r.purpose == "signing"}
    chosen_keys = {k.fingerprint for k in manifest.keys}
    assert len(chosen_keys) == 2 and chosen_keys < set(rows)
    assert {rows[f].kind for f in chosen_keys} == {"pem", "pgp"}
    assert lay.leaf(fleet.revoked_serial) not in read_bundle(tmp_path / "b")
    only_b = run_cli("bundle", "export", "--config", fleet.config, "--images",
                     fleet.images["revoked-b"], tmp_path / "b2")
    assert only_b.exit_code == 0, only_b.output
    assert lay.leaf(fleet.revoked_serial) in read_bundle(tmp_path / "b2")
    bad = run_cli("bundle", "export", "--config", fleet.config, "--images", fleet.config,
                  tmp_path / "b3")
    assert bad.exit_code == 2 and "config.toml: cannot read the image's signatures" in bad.output
    assert not (tmp_path / "b3").exists()


def test_outbox_keep_must_be_positive_and_an_unreadable_newest_bundle_is_replaced(
        fleet: Fleet, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with pytest.raises(BundleError, match="keep must be at least 1"):
        export_to_outbox(fleet.ca, outbox, 0)
    first = export_to_outbox(fleet.ca, outbox, 3)
    first.path.write_bytes(b"truncated by a full disk")
    second = export_to_outbox(fleet.ca, outbox, 3)
    assert second.written and second.path != first.path
    assert mf.MANIFEST in read_bundle(second.path)


@pytest.mark.postgres
def test_export_and_verify_from_a_postgresql_store(pg_url: str, tmp_path: Path) -> None:
    from datetime import timedelta as days

    from lifecycle.bundles import open_bundle
    from lifecycle.store.ca_service import CaService, CaSettings
    from lifecycle.store.db import make_engine
    from lifecycle.store.key_service import KeyService
    from lifecycle.store.migrate import upgrade
    from tests.pki.conftest import PASSPHRASE, URLS

    upgrade(pg_url)
    ca = CaService(KeyService(make_engine(pg_url), tmp_path / "keys"), PASSPHRASE,
                   CaSettings(urls=URLS))
    ca.init(root_algorithm=keys.KeyAlgorithm.P256, intermediate_algorithm=keys.KeyAlgorithm.P256,
            root_lifetime=days(days=365), intermediate_lifetime=days(days=180))
    row = ca.keys.generate(keys.KeyAlgorithm.ED25519, PASSPHRASE)
    ca.issue(row.fingerprint, "PG Signer", days(days=30))
    export(ca, tmp_path / "one.tar.gz")
    report = export(ca, tmp_path / "two.tar.gz")
    opened = open_bundle(tmp_path / "two.tar.gz", trust_store=tmp_path / "trust")
    assert opened.keyid == report.bundle_keyid
    assert [k.fingerprint for k in opened.manifest.keys] == [row.fingerprint]
    ca.engine.dispose()
