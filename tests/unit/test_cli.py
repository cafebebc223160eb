"""The command line: exit codes, one-line errors naming the file, JSON results, passphrases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import cli
from lifecycle.sif import SifImage
from tests.keygen import write_pem_pair, write_pgp_pair


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def image(golden_images: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(golden_images / "two-groups.sif", tmp_path / "image.sif"))


def test_sign_then_verify_round_trip(runner: CliRunner, image: Path, tmp_path: Path) -> None:
    private, public = write_pem_pair(tmp_path, "k", "ed25519", passphrase=b"pw")
    env = {"SIF_LIFECYCLE_PASSPHRASE": "pw"}
    signed = runner.invoke(cli, ["sign", "--key", str(private), str(image)], env=env)
    assert signed.exit_code == 0, signed.output
    assert "Signature object 4 (added) for group 1 covers objects 1, 2" in signed.output
    verified = runner.invoke(cli, ["verify", "--key", str(public), str(image)])
    assert verified.exit_code == 0, verified.output
    assert f"Container verified: {image}" in verified.output
    assert "Objects verified:" in verified.output
    as_json = runner.invoke(cli, ["verify", "--key", str(public), "--json", str(image)])
    report = json.loads(as_json.output)
    assert report["ok"] is True
    assert [s["group"] for s in report["signatures"]] == [1, 2]
    assert report["signatures"][0]["signers"][0]["key"] == str(public)


def test_verification_failure_exits_1_with_reason(runner: CliRunner, image: Path, tmp_path: Path) -> None:
    private, _ = write_pem_pair(tmp_path, "a", "ed25519")
    _, other = write_pem_pair(tmp_path, "b", "ecdsa")
    assert runner.invoke(cli, ["sign", "--key", str(private), str(image)]).exit_code == 0
    result = runner.invoke(cli, ["verify", "--key", str(other), str(image)])
    assert result.exit_code == 1
    assert f"Error: {image}: verification failed: object group 1" in result.output
    as_json = runner.invoke(cli, ["verify", "--key", str(other), "--json", str(image)])
    assert as_json.exit_code == 1
    assert json.loads(as_json.output.split("\nError:")[0])["ok"] is False


def test_passphrase_file_and_wrong_passphrase(runner: CliRunner, image: Path, tmp_path: Path) -> None:
    private, _ = write_pem_pair(tmp_path, "k", "rsa", passphrase=b"right")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("nope\n")
    before = image.read_bytes()
    result = runner.invoke(cli, ["sign", "--key", str(private), "--passphrase-file", str(wrong), str(image)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {private}: cannot load private key: wrong passphrase or corrupt key"
    ]
    assert image.read_bytes() == before
    no_tty = runner.invoke(cli, ["sign", "--key", str(private), str(image)])
    assert no_tty.exit_code == 2 and "SIF_LIFECYCLE_PASSPHRASE" in no_tty.output
    right = tmp_path / "right.txt"
    right.write_text("right\n")
    ok = runner.invoke(cli, ["sign", "--key", str(private), "--passphrase-file", str(right), str(image)])
    assert ok.exit_code == 0, ok.output


def test_pgp_sign_and_verify_from_the_cli(runner: CliRunner, image: Path, tmp_path: Path) -> None:
    secret, public = write_pgp_pair(tmp_path, "team", "ed25519", passphrase="pw")
    signed = runner.invoke(cli, ["sign", "--key", str(secret), "-g", "2", str(image)],
                           env={"SIF_LIFECYCLE_PASSPHRASE": "pw"})  # fmt: skip
    assert signed.exit_code == 0, signed.output
    assert runner.invoke(cli, ["verify", "--key", str(public), "-g", "2", str(image)]).exit_code == 0
    everything = runner.invoke(cli, ["verify", "--key", str(public), str(image)])
    assert everything.exit_code == 1
    assert "signature not found for object group 1" in everything.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        (b"garbage", "not a PEM public key"),
        (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n", "PGP key"),
    ],
)
def test_corrupt_keys_are_one_line_errors(
    runner: CliRunner, image: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    key = tmp_path / "bad.key"
    key.write_bytes(content)
    result = runner.invoke(cli, ["verify", "--key", str(key), str(image)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {key}: ") and message in line


def test_hostile_image_is_a_named_error(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "cut.sif"
    bad.write_bytes(b"\0" * 200)
    _, public = write_pem_pair(tmp_path, "k", "ed25519")
    for args in (["sif", "list", str(bad)], ["verify", "--key", str(public), str(bad)]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        assert result.output.strip() == f"Error: {bad}: header.Magic: invalid SIF magic: not a SIF image"


def test_policy_and_usage_errors_exit_2(runner: CliRunner, image: Path, tmp_path: Path) -> None:
    _, public = write_pem_pair(tmp_path, "k", "ed25519")
    bad_policy = runner.invoke(cli, ["verify", "--key", str(public), "--policy", "most", str(image)])
    assert bad_policy.exit_code == 2 and "unknown policy 'most'" in bad_policy.output
    assert runner.invoke(cli, ["verify", str(image)]).exit_code == 2
    assert runner.invoke(cli, ["sign", str(image)]).exit_code == 2
    assert runner.invoke(cli, ["verify", "--nope"]).exit_code == 2


def test_sif_subcommands(runner: CliRunner, tmp_path: Path) -> None:
    sqfs = tmp_path / "root.sqfs"
    sqfs.write_bytes(b"hsqs" + bytes(1000))
    deffile = tmp_path / "app.def"
    deffile.write_text("Bootstrap: scratch\n")
    out = tmp_path / "new.sif"
    made = runner.invoke(cli, ["sif", "new", str(out), "--deffile", str(deffile), "--partition", str(sqfs),
                               "--arch", "arm64"])  # fmt: skip
    assert made.exit_code == 0, made.output
    listing = runner.invoke(cli, ["sif", "list", str(out)])
    assert "FS (Squashfs/Primary_System/arm64)" in listing.output and "Deffile" in listing.output
    dumped = runner.invoke(cli, ["sif", "dump", "1", str(out)])
    assert dumped.stdout_bytes == b"Bootstrap: scratch\n"
    header = runner.invoke(cli, ["sif", "header", str(out)])
    assert "Primary arch:       arm64" in header.output
    added = runner.invoke(cli, ["sif", "add", str(out), str(deffile), "--datatype", "labels", "--group", "2"])
    assert added.exit_code == 0 and "Added object 3" in added.output
    assert runner.invoke(cli, ["sif", "del", "3", str(out)]).exit_code == 0
    with SifImage.open(out) as img:
        assert [d.id for d in img.objects] == [1, 2]
    missing = runner.invoke(cli, ["sif", "dump", "9", str(out)])
    assert missing.exit_code == 2 and "no object with ID 9" in missing.output


def test_every_command_help_has_an_example(runner: CliRunner) -> None:
    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        commands = getattr(group, "commands", {})
        found = [prefix]
        for name, command in commands.items():
            found += walk(command, [*prefix, name])
        return found

    for path in walk(cli, []):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output, f"`sif-lifecycle {' '.join(path)} --help` has no example"


def test_shell_completion_script_and_candidates() -> None:
    import os
    import subprocess
    import sys

    base = [sys.executable, "-m", "lifecycle.cli.main"]
    script = subprocess.run(base, env={**os.environ, "_SIF_LIFECYCLE_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "_sif_lifecycle_completion" in script.stdout
    words = subprocess.run(
        base,
        env={**os.environ, "_SIF_LIFECYCLE_COMPLETE": "bash_complete", "COMP_WORDS": "sif-lifecycle ver",
             "COMP_CWORD": "1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "plain,verify" in words.stdout.split()
