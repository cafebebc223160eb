"""``key import`` of an existing singularity/apptainer keyring (made by gpg, the same format):
binary or armored, several keys, re-protected under the store passphrase; bad input changes
nothing."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.sif import create_image, json_spec, partition_spec
from tests.conftest import require_tool

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgpy

STORE = "keyserver import store passphrase"
SOURCE = "the old sypgp passphrase"


@pytest.fixture(scope="module")
def keyrings() -> Iterator[dict[str, Path | list[str]]]:
    """Two gpg keys protected with SOURCE: secret/public keyrings, binary and armored."""
    gpg = require_tool("gpg")
    home = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))
    home.chmod(0o700)
    base = [gpg, "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
            "--passphrase", SOURCE]
    try:
        for uid in ("Site Signer <signer@example.org>", "Old Signer <old@example.org>"):
            subprocess.run([*base, "--quick-gen-key", uid, "ed25519", "sign", "never"],
                           check=True, capture_output=True, timeout=60)
        listing = subprocess.run([*base, "--with-colons", "--list-secret-keys"], check=True,
                                 capture_output=True, text=True).stdout
        fprs = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
        out: dict[str, Path | list[str]] = {"fingerprints": fprs}
        for name, args in {"pgp-secret": ["--export-secret-keys"],
                           "secret.asc": ["--export-secret-keys", "--armor"],
                           "pgp-public": ["--export"]}.items():
            path = home / name
            path.write_bytes(subprocess.run([*base, *args], check=True, capture_output=True).stdout)
            out[name] = path
        source = home / "source.pass"
        source.write_text(SOURCE + "\n")
        out["source"] = source
        yield out
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True,
                       check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[database]\npath = "db.sqlite"\n'
                    '[[image_sets]]\nname = "apps"\npaths = ["images/*.sif"]\nstrategy = "resign"\n')
    assert CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)]).exit_code == 0
    return path


def key(config: Path, *args: str | Path, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["key", str(args[0]), "--config", str(config),
                                      *map(str, args[1:])],
                                env={"SIF_LIFECYCLE_PASSPHRASE": STORE})
    assert result.exit_code == code, result.output
    return result.output


def stored_files(config: Path) -> list[Path]:
    keys = config.parent / "keys"
    return sorted(keys.iterdir()) if keys.exists() else []


def test_binary_keyring_with_two_keys_is_reprotected(config: Path, keyrings: dict) -> None:
    out = key(config, "import", keyrings["pgp-secret"], "--source-passphrase-file",
              keyrings["source"])
    assert [line.split()[:2] for line in out.splitlines()] == \
        [[f, "pgp"] for f in keyrings["fingerprints"]]
    for path in stored_files(config):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stored, _ = pgpy.PGPKey.from_blob(path.read_bytes())
        assert stored.is_protected and not stored.is_public
        assert path.stat().st_mode & 0o777 == 0o600
        with pytest.raises(pgpy.errors.PGPDecryptionError), stored.unlock(SOURCE):
            pass
        with stored.unlock(STORE):
            pass
    listed = key(config, "list")
    assert all(f in listed for f in keyrings["fingerprints"])


def test_armored_export_and_one_fingerprint(config: Path, keyrings: dict) -> None:
    wanted = keyrings["fingerprints"][1]
    out = key(config, "import", keyrings["secret.asc"], "--source-passphrase-file",
              keyrings["source"], "--fingerprint", wanted.lower())
    assert [line.split()[0] for line in out.splitlines()] == [wanted]


@pytest.mark.parametrize(("name", "extra", "message"), [
    ("pgp-public", [], "no secret key in this keyring (2 public key(s))"),
    ("pgp-secret", [], "cannot unlock PGP key"),
    ("pgp-secret", ["--fingerprint", "AB" * 20], f"no secret key {'AB' * 20} in this keyring"),
])
def test_bad_keyrings_change_nothing(config: Path, keyrings: dict, name: str, extra: list[str],
                                     message: str) -> None:
    args = [*extra] if "--fingerprint" not in extra or name != "pgp-secret" else extra
    if message != "cannot unlock PGP key":
        args += ["--source-passphrase-file", str(keyrings["source"])]
    out = key(config, "import", keyrings[name], *args, code=2)
    assert message in out and out.count("\n") == 1 and str(keyrings[name]) in out
    assert stored_files(config) == [] and key(config, "list") == ""


def test_garbage_and_duplicates_change_nothing(config: Path, keyrings: dict,
                                               tmp_path: Path) -> None:
    garbage = tmp_path / "pgp-secret"
    garbage.write_bytes(b"\x95" + bytes(200))
    out = key(config, "import", garbage, code=2)
    assert "not an OpenPGP keyring" in out and out.count("\n") == 1
    first = keyrings["fingerprints"][0]
    key(config, "import", keyrings["secret.asc"], "--source-passphrase-file", keyrings["source"],
        "--fingerprint", first)
    before = stored_files(config)
    out = key(config, "import", keyrings["pgp-secret"], "--source-passphrase-file",
              keyrings["source"], code=2)
    assert f"key {first} is already in the store" in out
    assert stored_files(config) == before and len(key(config, "list").splitlines()) == 1


def test_an_existing_pgp_signed_fleet_is_tracked_without_resigning(
        config: Path, keyrings: dict, tmp_path: Path) -> None:
    signer = keyrings["fingerprints"][0]
    out = key(config, "import", keyrings["pgp-secret"], "--source-passphrase-file",
              keyrings["source"], "--fingerprint", signer, "--image-set", "apps")
    assert out.split()[:4] == [signer, "pgp", "ed25519", "active"]
    images = tmp_path / "images"
    images.mkdir()
    image = create_image(images / "a.sif", [partition_spec(b"hsqs" + bytes(500)),
                                            json_spec({"k": "v"})])
    signed = CliRunner().invoke(cli, ["sign", "--key", str(config.parent / "keys" /
                                                         f"{signer}.pgp.asc"), str(image)],
                                env={"SIF_LIFECYCLE_PASSPHRASE": STORE})
    assert signed.exit_code == 0, signed.output
    before = image.read_bytes()
    env = {"SIF_LIFECYCLE_PASSPHRASE": STORE}
    tracked = CliRunner().invoke(cli, ["track", "--config", str(config), str(image)], env=env)
    assert tracked.exit_code == 0, tracked.output
    listed = CliRunner().invoke(cli, ["images", "--config", str(config)], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.split()[:2] == ["present", "apps"]
    assert listed.output.rstrip().endswith(f"signed by {signer}")
    planned = CliRunner().invoke(cli, ["plan", "--config", str(config)], env=env)
    assert planned.exit_code == 0, planned.output
    assert " resign " not in planned.output, planned.output
    assert image.read_bytes() == before


def test_unknown_image_set_is_refused_first(config: Path, keyrings: dict) -> None:
    out = key(config, "import", keyrings["pgp-secret"], "--source-passphrase-file",
              keyrings["source"], "--image-set", "nope", code=2)
    assert "'nope' is not in the configuration" in out and stored_files(config) == []
