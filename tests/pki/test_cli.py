"""The key/ca/db commands end to end, and bad input: one line, exit 2, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from lifecycle.cli import main
from lifecycle.pki.certs import load_certificate
from lifecycle.pki.validate import validate_signing_certificate

Cli = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    config = tmp_path / "lifecycle.toml"
    config.write_text('[database]\npath = "db.sqlite"\n[keys]\ndirectory = "keys"\n'
                      '[ca]\npublic_url = "http://127.0.0.1:9"\n')
    monkeypatch.setenv("SIF_LIFECYCLE_CONFIG", str(config))
    monkeypatch.setenv("SIF_LIFECYCLE_PASSPHRASE", "pki cli test passphrase")
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main.cli, list(args), catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    return invoke


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails_cleanly(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]


def _signing_key(cli: Cli) -> str:
    return _ok(cli("key", "generate", "--algorithm", "p256")).split()[0]


def test_ca_workflow_issue_reissue_revoke_crl(cli: Cli, tmp_path: Path) -> None:
    _ok(cli("ca", "init", "--root-days", "3650", "--intermediate-days", "1000"))
    fingerprint = _signing_key(cli)
    _ok(cli("key", "transition", fingerprint[:10], "active", "--reason", "ready"))
    assert " active " in _ok(cli("key", "list"))
    _ok(cli("ca", "issue", fingerprint, "--name", "Bot", "--days", "30", "-o", "old.crt"))
    old = load_certificate((tmp_path / "old.crt").read_bytes(), path="old.crt")
    _ok(cli("ca", "reissue", f"{old.serial_number:x}", "--days", "60", "-o", "new.crt"))
    new = load_certificate((tmp_path / "new.crt").read_bytes(), path="new.crt")
    assert new.public_key() == old.public_key() and new.serial_number != old.serial_number
    root = x509.load_pem_x509_certificate(_ok(cli("ca", "certificate", "root")).encode())
    inter = x509.load_pem_x509_certificate(_ok(cli("ca", "certificate", "intermediate")).encode())
    _ok(cli("ca", "revoke", f"{old.serial_number:x}", "--reason", "superseded"))
    _ok(cli("ca", "crl", "-o", "inter.crl"))
    _ok(cli("ca", "crl", "--issuer", "root", "-o", "root.crl"))
    crls = [(tmp_path / n).read_bytes() for n in ("inter.crl", "root.crl")]
    crl = x509.load_pem_x509_crl(crls[0])
    assert crl.get_revoked_certificate_by_serial_number(old.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None
    assert validate_signing_certificate(new, [inter], [root], crls=crls).leaf == new


def test_reissue_intermediate_keeps_key_and_chains_existing_leaves(cli: Cli, tmp_path: Path,
                                                                     ) -> None:
    _ok(cli("ca", "init", "--root-days", "3650", "--intermediate-days", "1000"))
    fingerprint = _signing_key(cli)
    _ok(cli("ca", "issue", fingerprint, "--name", "Bot", "--days", "30", "-o", "leaf.crt"))
    leaf = load_certificate((tmp_path / "leaf.crt").read_bytes(), path="leaf.crt")
    old = x509.load_pem_x509_certificate(_ok(cli("ca", "certificate", "intermediate")).encode())
    _ok(cli("ca", "revoke", f"{leaf.serial_number:x}", "--reason", "superseded"))
    _ok(cli("ca", "reissue-intermediate", "--days", "500", "-o", "inter-2.pem"))
    new = load_certificate((tmp_path / "inter-2.pem").read_bytes(), path="inter-2.pem")
    assert new.public_key() == old.public_key() and new.subject == old.subject
    assert new.serial_number != old.serial_number
    assert (new.not_valid_after_utc - new.not_valid_before_utc).days == 500
    aia = new.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == ["http://127.0.0.1:9/ocsp"]
    current = x509.load_pem_x509_certificate(_ok(cli("ca", "certificate", "intermediate")).encode())
    assert current == new
    # the new intermediate's CRL goes on numbering and still lists what the old one revoked
    _ok(cli("ca", "crl", "-o", "inter.crl"))
    crl = x509.load_pem_x509_crl((tmp_path / "inter.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 3


def test_pgp_key_generate_and_export(cli: Cli, tmp_path: Path) -> None:
    line = _ok(cli("key", "generate", "--pgp", "--algorithm", "ed25519", "--user-id",
                   "Bot <bot@example.org>", "--expires", "2031-01-01"))
    assert "pgp ed25519 pending" in line
    armored = _ok(cli("key", "export", line.split()[0][:16]))
    assert armored.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_key_import_then_export_and_keyid(cli: Cli, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from lifecycle.integrity.dsse import keyid
    from lifecycle.pki.keys import KeyAlgorithm, generate_private_key

    key = generate_private_key(KeyAlgorithm.ED25519)
    (tmp_path / "in.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"other")))
    (tmp_path / "other.pass").write_text("other\n")
    line = _ok(cli("key", "import", "in.pem", "--source-passphrase-file", "other.pass"))
    assert f"keyid {keyid(key.public_key())}" in line
    exported = _ok(cli("key", "export", keyid(key.public_key()), "-o", "out.pub"))
    assert exported == ""
    stored = serialization.load_pem_public_key((tmp_path / "out.pub").read_bytes())
    assert stored == key.public_key()


def _files(tmp_path: Path) -> set[str]:
    return {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "db.sqlite" not in p.name}


def test_wrong_passphrase(cli: Cli, tmp_path: Path) -> None:
    _ok(cli("ca", "init"))
    fingerprint = _signing_key(cli)
    (tmp_path / "wrong.pass").write_text("wrong\n")
    before = _files(tmp_path)
    _fails_cleanly(cli("ca", "issue", fingerprint, "--name", "X", "--passphrase-file",
                       "wrong.pass", "-o", "x.crt"), "wrong passphrase", ".key.pem")
    assert _files(tmp_path) == before


def test_corrupt_pem_import(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "corrupt.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n")
    before = _files(tmp_path)
    _fails_cleanly(cli("key", "import", "corrupt.pem"), "corrupt.pem", "not a valid PEM")
    assert _files(tmp_path) == before
    assert _ok(cli("key", "list")) == ""


def test_unknown_key_id(cli: Cli, tmp_path: Path) -> None:
    _ok(cli("ca", "init"))
    before = _files(tmp_path)
    _fails_cleanly(cli("ca", "issue", "deadbeefdeadbeef", "--name", "X", "-o", "x.crt"),
                   "no key 'deadbeefdeadbeef'")
    _fails_cleanly(cli("key", "export", "SHA256:nope"), "no key")
    assert _files(tmp_path) == before


def test_not_a_code_signing_certificate_is_refused(cli: Cli, tmp_path: Path) -> None:
    _ok(cli("ca", "init"))
    ocsp_serial = next(line.split()[0] for line in _ok(cli("ca", "list")).splitlines()
                       if " ocsp " in line)
    before = _files(tmp_path)
    _fails_cleanly(cli("ca", "reissue", ocsp_serial, "-o", "x.crt"),
                   "only code-signing leaves are re-issued")
    assert _files(tmp_path) == before


def test_invalid_key_transition(cli: Cli) -> None:
    fingerprint = _signing_key(cli)
    _fails_cleanly(cli("key", "transition", fingerprint, "retired", "--reason", "x"),
                   "cannot move from pending to retired")


def test_every_command_help_has_an_example(cli: Cli) -> None:
    for path in (["ca"], ["key"], ["db"], ["serve"], ["ca", "init"], ["ca", "issue"],
                 ["ca", "reissue"], ["ca", "reissue-intermediate"], ["ca", "revoke"],
                 ["ca", "crl"], ["ca", "certificate"],
                 ["ca", "list"], ["key", "generate"], ["key", "import"], ["key", "export"],
                 ["key", "list"], ["key", "transition"], ["db", "upgrade"], ["db", "downgrade"],
                 ["db", "current"]):
        out = _ok(cli(*path, "--help"))
        assert "Example:" in out and "sif-lifecycle " in out, path
