"""The commands end to end, verifying inside a network namespace with no network at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.sif import create_image, json_spec, partition_spec
from tests.pki.conftest import PASSPHRASE

REPO = Path(__file__).resolve().parents[2]


def _unshare_works() -> bool:
    tool = shutil.which("unshare")
    return tool is not None and subprocess.run(
        [tool, "-n", "true"], capture_output=True, timeout=30).returncode == 0


UNSHARE = _unshare_works()
NO_SOCKETS = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("network use during offline verification")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
from lifecycle.cli.main import main
main(sys.argv[1:])
"""


@pytest.fixture
def cli(tmp_path: Path) -> object:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE.decode(),
           "SIF_LIFECYCLE_TLOG_DB": "tlog.db", "SIF_LIFECYCLE_TLOG_KEY": "tlog-key.json",
           "SIF_LIFECYCLE_CONFIG": "lifecycle.toml"}
    (tmp_path / "lifecycle.toml").write_text('[database]\npath = "lifecycle.db"\n')

    def run(*args: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "lifecycle.cli.main", *args]
        if offline:
            # a network namespace with no interfaces; where not permitted, sockets that refuse
            command = ["unshare", "-n", *command] if UNSHARE else [
                sys.executable, "-c", NO_SOCKETS, *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
    return run


@pytest.mark.slow
def test_sign_ephemeral_and_verify_offline(cli: object, tmp_path: Path) -> None:
    run = cli  # type: ignore[assignment]
    assert run("db", "upgrade").returncode == 0  # type: ignore[operator]
    assert run("ca", "init", "--ephemeral").returncode == 0  # type: ignore[operator]
    vkey = run("tlog", "init", "--origin", "example.org/cli-log")  # type: ignore[operator]
    assert vkey.returncode == 0, vkey.stderr
    (tmp_path / "log.vkey").write_text(vkey.stdout)
    create_image(tmp_path / "image.sif", [partition_spec(b"hsqs" + bytes(64)), json_spec({})])
    signed = run("sign", "--ephemeral", "--identity", "builder@example.org",  # type: ignore[operator]
                 "--lifetime", "5", "image.sif")
    assert signed.returncode == 0, signed.stderr
    assert "the key was destroyed" in signed.stdout
    assert run("ca", "certificate", "root", "-o", "root.pem").returncode == 0  # type: ignore[operator]
    assert run("ca", "crl", "--issuer", "root", "-o", "root.crl").returncode == 0  # type: ignore[operator]
    base = ["verify", "--log-key", "log.vkey", "--certificate-roots", "root.pem",
            "--crl", "root.crl", "--checkpoint-store", "cps"]
    ok = run(*base, "--identity", "builder@example.org", "--json", "image.sif",  # type: ignore[operator]
             offline=True)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    doc = json.loads(ok.stdout)
    (longterm,) = doc["signatures"][0]["longterm"]
    assert longterm["identity"] == "builder@example.org"
    assert longterm["log_index"] == 0 and longterm["checkpoint_size"] == 1
    assert longterm["logged_at"] and longterm["ok"]
    wrong = run(*base, "--identity", "mallory@example.org", "image.sif",  # type: ignore[operator]
                offline=True)
    assert wrong.returncode == 1 and "does not match" in wrong.stderr
    missing = run("verify", "--log-key", "log.vkey", "--certificate-roots",  # type: ignore[operator]
                  "root.pem", "--crl", "root.crl", "image.sif", offline=True)
    assert missing.returncode == 1 and "--identity" in missing.stderr
    usage = run("verify", "--identity", "x@example.org", "image.sif")  # type: ignore[operator]
    assert usage.returncode == 2 and "--log-key" in usage.stderr


@pytest.mark.slow
def test_sign_ephemeral_uses_the_configured_log(tmp_path: Path) -> None:
    """With a [tlog] section and no --log-db, signing appends to the store's own log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIF_LIFECYCLE_TLOG")}
    env.update(PYTHONPATH=str(REPO), SIF_LIFECYCLE_PASSPHRASE=PASSPHRASE.decode(),
               SIF_LIFECYCLE_CONFIG="lifecycle.toml")
    (tmp_path / "lifecycle.toml").write_text(
        '[database]\npath = "lifecycle.db"\n[tlog]\norigin = "example.org/configured"\n'
        'key_file = "configured-key.json"\n')

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lifecycle.cli.main", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip

    for args in (("db", "upgrade"), ("ca", "init", "--ephemeral"), ("tlog", "init")):
        assert run(*args).returncode == 0, args
    create_image(tmp_path / "image.sif", [partition_spec(b"hsqs" + bytes(64)), json_spec({})])
    signed = run("sign", "--ephemeral", "--identity", "builder@example.org", "image.sif")
    assert signed.returncode == 0, signed.stderr
    assert "logged as example.org/configured #0" in signed.stdout
    assert not (tmp_path / "tlog.db").exists()
    entry = run("tlog", "get", "0")
    assert entry.returncode == 0 and "example.org/configured" not in entry.stderr


def test_identity_of_any_realistic_length(cli: object, tmp_path: Path) -> None:
    """A 200-character workflow URI (finding 10): full in the SAN, the CN shortened but valid."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    run = cli  # type: ignore[assignment]
    identity = ("https://github.com/example-organisation/" + "a" * 80
                + "/.github/workflows/release.yml@refs/heads/main")
    identity += "x" * (200 - len(identity))
    assert run("db", "upgrade").returncode == 0  # type: ignore[operator]
    assert run("ca", "init", "--ephemeral").returncode == 0  # type: ignore[operator]
    vkey = run("tlog", "init", "--origin", "example.org/long-ids")  # type: ignore[operator]
    (tmp_path / "log.vkey").write_text(vkey.stdout)
    create_image(tmp_path / "image.sif", [partition_spec(b"hsqs" + bytes(64)), json_spec({})])
    signed = run("sign", "--ephemeral", "--identity", identity, "image.sif")  # type: ignore[operator]
    assert signed.returncode == 0, signed.stderr
    assert run("ca", "certificate", "root", "-o", "root.pem").returncode == 0  # type: ignore[operator]
    assert run("ca", "crl", "--issuer", "root", "-o", "root.crl").returncode == 0  # type: ignore[operator]
    base = ["verify", "--log-key", "log.vkey", "--certificate-roots", "root.pem",
            "--crl", "root.crl", "--json"]
    ok = run(*base, "--identity", identity, "image.sif")  # type: ignore[operator]
    assert ok.returncode == 0, ok.stderr + ok.stdout
    (longterm,) = json.loads(ok.stdout)["signatures"][0]["longterm"]
    assert longterm["identity"] == identity
    shorter = run(*base, "--identity", identity[:64], "image.sif")  # type: ignore[operator]
    assert shorter.returncode == 1, shorter.stdout
    from lifecycle.pki import ca

    subject = ca.name(identity, "O" * 100)
    cn = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == identity[:61] + "..." and isinstance(subject, x509.Name)
