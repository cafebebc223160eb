"""``key push / pull / search / status`` and ``verify --url`` against a real sks; gpg fetches
what we pushed from it and verifies our clear-signed payloads."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.integrity.pgp import fingerprint, load_keys
from lifecycle.sif import SifImage, create_image, json_spec, partition_spec
from tests.conftest import require_tool
from tests.keygen import new_pgp_key
from tests.keyserver.hostile import Answer, hostile_server

PASSPHRASE = "keyserver cli passphrase"
ENV = {"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE}


def run(config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [*args[:2], "--config", str(config), *args[2:]], env=ENV)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def store(tmp_path: Path, sks: Any) -> tuple[Path, str]:
    """A config with sks as its keyserver, and the fingerprint of a stored PGP key."""
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "db.sqlite"\n[keyserver]\nurls = ["{sks.url}"]\n'
                      'timeout = "3s"\nretries = 0\n')
    assert CliRunner().invoke(cli, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    out = run(config, "key", "generate", "--pgp", "--algorithm", "ed25519", "--user-id",
              "Build Bot <bot@example.org>")
    return config, out.split()[0]


@pytest.fixture
def gnupg() -> Iterator[list[str]]:
    """gpg with a fresh, short home (dirmngr's socket path must stay short); stopped after."""
    gpg = require_tool("gpg")
    home = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))
    home.chmod(0o700)
    try:
        yield [gpg, "--homedir", str(home), "--batch", "--no-tty"]
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True,
                       check=False)
        shutil.rmtree(home, ignore_errors=True)


def signed_image(tmp_path: Path, config: Path, fingerprint: str) -> Path:
    image = create_image(tmp_path / "a.sif", [partition_spec(b"hsqs" + bytes(500)),
                                              json_spec({"k": "v"})])
    secret = tmp_path / "keys" / f"{fingerprint}.pgp.asc"
    signed = CliRunner().invoke(cli, ["sign", "--key", str(secret), str(image)], env=ENV)
    assert signed.exit_code == 0, signed.output
    return image


def test_push_status_search_pull(tmp_path: Path, sks: Any, store: tuple[Path, str]) -> None:
    config, fpr = store
    assert run(config, "key", "status").splitlines()[1].split()[2] == "pending"
    out = run(config, "key", "push", fpr[:12])
    assert out.startswith(f"pushed {fpr} (version ") and out.rstrip().endswith(f"to {sks.url}")
    assert "already has" in run(config, "key", "push", fpr)
    (line,) = run(config, "key", "status").splitlines()[1:]
    assert line.split()[0] == fpr and line.split()[2:4] == ["published", sks.url]
    found = run(config, "key", "search", "bot@example.org")
    assert f"{sks.url}: 1 key(s)" in found and f"  {fpr} 22/256 created " in found
    assert "    uid Build Bot <bot@example.org>" in found
    pulled = tmp_path / "pulled.asc"
    result = CliRunner().invoke(cli, ["key", "pull", "--config", str(config), fpr.lower(), "-o",
                                      str(pulled)])
    assert result.exit_code == 0, result.output
    assert f"fetched {fpr} from {sks.url}" in result.output
    ours = load_keys(run(config, "key", "export", fpr), "ours")[0]
    (theirs,) = load_keys(pulled.read_text(), "pulled")
    assert fingerprint(theirs) == fpr
    assert theirs.userids[0].selfsig.__sig__ == ours.userids[0].selfsig.__sig__  # sks re-frames packets


def test_gpg_receives_the_pushed_key_and_verifies_our_payload(
        tmp_path: Path, sks: Any, store: tuple[Path, str], gnupg: list[str]) -> None:
    config, fpr = store
    image = signed_image(tmp_path, config, fpr)
    run(config, "key", "push", fpr)
    received = subprocess.run([*gnupg, "--keyserver", sks.hkp, "--recv-keys", fpr],
                              capture_output=True, text=True, timeout=60)
    assert received.returncode == 0, received.stderr
    assert "imported: 1" in received.stderr
    with SifImage.open(image) as img:
        (payload,) = [img.read(d, limit=1 << 20) for d in img.objects if d.is_signature]
    (tmp_path / "payload.asc").write_bytes(payload)
    checked = subprocess.run([*gnupg, "--verify", str(tmp_path / "payload.asc")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "Good signature" in checked.stderr, checked.stderr
    assert fpr in checked.stderr.replace(" ", "")


def test_verify_url_fetches_the_signers_key(tmp_path: Path, sks: Any,
                                            store: tuple[Path, str]) -> None:
    config, fpr = store
    image = signed_image(tmp_path, config, fpr)
    missing = CliRunner().invoke(cli, ["verify", "--url", sks.url, str(image)])
    assert missing.exit_code == 1, missing.output
    assert f"PGP key {fpr} not fetched: no key 0x{fpr} on {sks.url}" in missing.output
    run(config, "key", "push", fpr)
    verified = CliRunner().invoke(cli, ["verify", "--url", sks.url, str(image)])
    assert verified.exit_code == 0, verified.output
    assert f"fetched PGP key {fpr} from {sks.url}" in verified.output
    assert f"Container verified: {image}" in verified.output


def test_verify_url_never_trusts_another_key(tmp_path: Path, store: tuple[Path, str]) -> None:
    config, fpr = store
    image = signed_image(tmp_path, config, fpr)
    impostor = str(new_pgp_key("ed25519", "Build Bot").pubkey).encode()
    with hostile_server(Answer(body=impostor)) as url:
        result = CliRunner().invoke(cli, ["verify", "--url", url, str(image)])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1
        assert f"answered 0x{fpr} with a different key" in result.output
        pulled = tmp_path / "pulled.asc"
        result = CliRunner().invoke(cli, ["key", "pull", "--url", url, fpr, "-o", str(pulled)])
        assert result.exit_code == 2 and "not trusted" in result.output
        assert not pulled.exists()
    for garbage in (b"<html>oops</html>", b"\x00" * 100):
        with hostile_server(Answer(body=garbage)) as url:
            result = CliRunner().invoke(cli, ["key", "pull", "--url", url, fpr])
            assert result.exit_code == 2 and "with no readable key" in result.output


def test_push_without_keyserver_or_pem_key_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[database]\npath = "db.sqlite"\n')
    assert CliRunner().invoke(cli, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    fpr = run(config, "key", "generate", "--algorithm", "p256").split()[0]
    assert "no keyserver configured" in run(config, "key", "push", fpr, code=2)
    out = run(config, "key", "push", fpr, "--url", "hkp://127.0.0.1:1", code=2)
    assert "is a pem key; only PGP keys go to a keyserver" in out
