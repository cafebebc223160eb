"""The quick ``verify`` path (lifecycle/cli/quick.py) says and does exactly what the click command does.

Each command line runs twice in fresh interpreters: through the installed entry point's
function (quick path when it applies) and through click (``python -m lifecycle.cli.main``).
Output, error lines and exit status must be identical, and the trust material the click
command builds must equal the quick path's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lifecycle.cli import quick, sign_commands
from lifecycle.cli.main import cli
from lifecycle.verify import TrustMaterial
from tests.conftest import SignedImage

ENTRY = "import sys; from lifecycle.cli.quick import main; sys.argv[0] = 'sif-lifecycle'; main()"


def run(args: list[str], *, through_click: bool, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    head = ["-m", "lifecycle.cli.main"] if through_click else ["-c", ENTRY]
    done = subprocess.run([sys.executable, *head, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def workspace(tmp_path: Path, small_signed_images: dict[str, SignedImage], golden_keys: Path) -> Path:
    for kind, image in small_signed_images.items():
        shutil.copy(image.path, tmp_path / f"{kind}.sif")
    tampered = bytearray(small_signed_images["dsse"].data)
    tampered[-1] ^= 1  # the last byte belongs to the signed partition's data
    (tmp_path / "tampered.sif").write_bytes(bytes(tampered))
    for name in ("ed25519-public.pem", "rsa-public.pem", "private.asc"):
        shutil.copy(golden_keys / name, tmp_path / name)
    (tmp_path / "junk.pem").write_text("not a key\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


CASES = {
    "verified": ["verify", "--key", "ed25519-public.pem", "dsse.sif"],
    "json": ["verify", "--key=ed25519-public.pem", "--json", "dsse.sif"],
    "pgp": ["verify", "--key", "private.asc", "pgp.sif"],
    "wrong key": ["verify", "--key", "rsa-public.pem", "dsse.sif"],
    "two keys, threshold": ["verify", "--key", "rsa-public.pem", "--key", "ed25519-public.pem",
                            "--policy", "threshold:2", "dsse.sif"],
    "any": ["verify", "--policy=any", "--key", "ed25519-public.pem", "dsse.sif"],
    "tampered": ["verify", "--key", "ed25519-public.pem", "tampered.sif"],
    "bad policy": ["verify", "--key", "ed25519-public.pem", "--policy", "most", "dsse.sif"],
    "not a key": ["verify", "--key", "junk.pem", "dsse.sif"],
    "key is the image": ["verify", "--key", "dsse.sif", "dsse.sif"],
    "image is a key": ["verify", "--key", "ed25519-public.pem", "ed25519-public.pem"],
}  # fmt: skip
"""Command lines the quick path runs itself: the output must be click's."""

HANDED_ON = {
    "missing image": ["verify", "--key", "ed25519-public.pem", "nothing.sif"],
    "missing key": ["verify", "--key", "nothing.pem", "dsse.sif"],
    "directory": ["verify", "--key", "ed25519-public.pem", "adir"],
    "no key": ["verify", "dsse.sif"],
    "no value": ["verify", "dsse.sif", "--key"],
    "flag with a value": ["verify", "--key", "ed25519-public.pem", "--json=yes", "dsse.sif"],
    "two policies": ["verify", "--key", "ed25519-public.pem", "--policy", "any", "--policy", "all",
                     "dsse.sif"],
    "other option": ["verify", "--key", "ed25519-public.pem", "--at", "2026-01-01", "dsse.sif"],
    "several images": ["verify", "--key", "ed25519-public.pem", "dsse.sif", "tampered.sif"],
    "help": ["verify", "--help"],
    "end of options": ["verify", "--key", "ed25519-public.pem", "--", "dsse.sif"],
    "global option first": ["--log-level", "info", "verify", "--key", "ed25519-public.pem", "dsse.sif"],
    "another command": ["sif", "list", "dsse.sif"],
}  # fmt: skip
"""Command lines the quick path hands to click: the output is click's by construction."""


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_quick_path_prints_and_exits_as_click_does(
    name: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = CASES[name]
    monkeypatch.chdir(workspace)
    assert quick.parse(args) is not None, "the quick path must run this command line itself"
    mine = run(args, through_click=False, cwd=workspace)
    theirs = run(args, through_click=True, cwd=workspace)
    assert mine == theirs
    expected = {"verified": 0, "json": 0, "pgp": 0, "two keys, threshold": 1, "any": 0,
                "wrong key": 1, "tampered": 1, "bad policy": 2, "not a key": 2,
                "key is the image": 2, "image is a key": 2}[name]  # fmt: skip
    assert mine[0] == expected, mine
    if expected:
        assert mine[2].strip().splitlines()[-1].startswith("Error: "), mine
    else:
        assert "Traceback" not in mine[2]


@pytest.mark.parametrize("name", sorted(HANDED_ON))
def test_everything_else_goes_to_click(name: str, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = HANDED_ON[name]
    monkeypatch.chdir(workspace)
    assert quick.parse(args) is None
    assert run(args, through_click=False, cwd=workspace) == run(args, through_click=True, cwd=workspace)


@pytest.mark.parametrize("name", ["verified", "two keys, threshold", "any", "json"])
def test_the_click_command_builds_the_same_trust_material(
    name: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every option the quick path leaves out has, in click, the value TrustMaterial defaults to."""
    seen: list[tuple[Path, TrustMaterial, bool]] = []

    def capture(image: Path, trust: TrustMaterial, as_json: bool) -> None:
        seen.append((image, trust, as_json))

    monkeypatch.setattr(sign_commands, "verify_and_show", capture)
    monkeypatch.chdir(workspace)
    args = CASES[name]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    command = quick.parse(args)
    assert command is not None
    expected: Any = (command.image, quick.trust(command), command.as_json)
    assert seen == [expected]
