"""Keys at rest (finding 13): strong PBKDF2, legacy files upgraded on unlock, no short passphrases."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from lifecycle.cli.main import cli
from lifecycle.pki import keys
from lifecycle.pki.keystore import KeyDirectory
from lifecycle.tlog.keys import encrypt_signer
from lifecycle.tlog.note import NoteSigner
from tests.pki.conftest import PASSPHRASE


def kdf_of(pem: bytes) -> tuple[str, str, int, str]:
    """(scheme, KDF, iterations, PRF) of an encrypted PKCS#8 PEM, parsed independently."""
    algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(asn1_pem.unarmor(pem)[2])[
        "encryption_algorithm"]
    kdf = algorithm["parameters"]["key_derivation_func"]
    return (algorithm["parameters"]["encryption_scheme"]["algorithm"].native,
            kdf["algorithm"].native, kdf["parameters"]["iteration_count"].native,
            kdf["parameters"]["prf"]["algorithm"].native)  # fmt: skip


def test_fresh_key_files_use_pbkdf2_600k_and_openssl_reads_them(tmp_path: Path) -> None:
    key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    stored = KeyDirectory(tmp_path / "keys").save_pem(key, PASSPHRASE)
    path = tmp_path / "keys" / stored.file
    assert kdf_of(path.read_bytes()) == ("aes256_cbc", "pbkdf2", 600_000, "sha256")
    assert keys.weak_encryption(path.read_bytes()) is None
    parsed = subprocess.run(["openssl", "asn1parse", "-in", str(path)], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "PBES2" in parsed and "PBKDF2" in parsed and ":0927C0" in parsed  # 600,000
    subprocess.run(["openssl", "pkey", "-in", str(path), "-noout", "-passin",
                    f"pass:{PASSPHRASE.decode()}"], check=True)  # fmt: skip
    doc = json.loads(encrypt_signer(NoteSigner.generate("example.org/log"), PASSPHRASE))
    assert kdf_of(doc["private_key"].encode())[2] == 600_000  # the log key too


def test_weak_legacy_file_is_upgraded_on_first_unlock(tmp_path: Path) -> None:
    key = keys.generate_private_key(keys.KeyAlgorithm.ED25519)
    directory = KeyDirectory(tmp_path / "keys")
    stored = directory.save_pem(key, PASSPHRASE)
    path = directory.path(stored.file)
    legacy = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(PASSPHRASE))  # fmt: skip
    path.write_bytes(legacy)
    assert kdf_of(legacy)[1:3] == ("pbkdf2", 2048)
    assert keys.weak_encryption(legacy) == "PBKDF2-HMAC-SHA256 with 2048 iterations"
    unlocked = directory.load_pem(stored.file, PASSPHRASE)
    assert keys.public_pem(unlocked.public_key()) == keys.public_pem(key.public_key())
    upgraded = path.read_bytes()
    assert kdf_of(upgraded) == ("aes256_cbc", "pbkdf2", 600_000, "sha256")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    again = KeyDirectory(tmp_path / "keys").load_pem(stored.file, PASSPHRASE)
    assert keys.public_pem(again.public_key()) == keys.public_pem(key.public_key())
    assert path.read_bytes() == upgraded  # strong files are left alone


@pytest.mark.parametrize("command", [["ca", "init"], ["key", "generate"],
                                     ["tlog", "init", "--origin", "example.org/l"]])
def test_new_stores_and_keys_refuse_short_passphrases(tmp_path: Path, command: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "lifecycle.toml"
    config.write_text('[database]\npath = "db.sqlite"\n')
    env = {"SIF_LIFECYCLE_CONFIG": str(config), "SIF_LIFECYCLE_TLOG_DB": "tlog.db",
           "SIF_LIFECYCLE_TLOG_KEY": "tlog-key.json"}  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    short = runner.invoke(cli, command, env={**env, "SIF_LIFECYCLE_PASSPHRASE": "short"})
    assert short.exit_code == 2, short.output
    assert short.output.count("\n") == 1
    assert "passphrase from $SIF_LIFECYCLE_PASSPHRASE has 5 characters" in short.output
    assert "at least 12" in short.output
    assert not (tmp_path / "keys").exists() or not list((tmp_path / "keys").iterdir())
    if command[0] != "tlog":
        (tmp_path / "pass").write_text("tiny\n")
        from_file = runner.invoke(cli, [*command, "--passphrase-file", "pass"], env=env)
        assert from_file.exit_code == 2 and "--passphrase-file pass has 4" in from_file.output
    good = runner.invoke(cli, command, env={**env, "SIF_LIFECYCLE_PASSPHRASE": "twelve chars"})
    assert good.exit_code == 0, good.output
