"""The README's first command on a fresh clone in a new virtualenv: ``./scripts/demo`` sets up
.venv (pip may use its cache), runs the demo, and every image it made verifies offline against
its bundle with the new venv's ``sif-lifecycle``. (The README's second command, ``./scripts/test``
= ``.ci/run``, is what runs this suite, so it is not run again from here.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, require

README_COMMANDS = ["./scripts/demo", "./scripts/test"]


def test_readme_shows_exactly_the_two_commands() -> None:
    first_screen = (REPO / "README.md").read_text(encoding="utf-8").split("\n---\n")[0]
    assert re.findall(r"^    (\S.*)$", first_screen, re.M) == README_COMMANDS
    assert os.access(REPO / "scripts" / "demo", os.X_OK)


@pytest.mark.slow
def test_fresh_clone_demo_then_verify_every_image(tmp_path: Path) -> None:
    require(shutil.which("git") is not None, "git")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SIF_LIFECYCLE_", "VIRTUAL_ENV")) and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if ".venv" not in p)
    demo = subprocess.run(["./scripts/demo"], cwd=clone, env=env, capture_output=True,
                          text=True, check=False, timeout=900)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    workspace = clone / "sif-lifecycle-demo"
    assert f"Workspace: {workspace}" in demo.stdout
    images = sorted(workspace.glob("images/*/*.sif"))
    assert len(images) == 7  # apps, base, ci (ephemeral) and the PGP legacy set
    assert (workspace / "report.html").stat().st_size > 0
    report = (workspace / "report.json").read_text(encoding="utf-8")  # lists every image
    venv_cli = clone / ".venv" / "bin" / "sif-lifecycle"
    env["SIF_LIFECYCLE_TRUST_STORE"] = str(tmp_path / "offline-trust")
    for image in images:
        relative = str(image.relative_to(workspace))
        assert image.name in report
        # every kind, ephemeral too: the bundle brings the log's key and the set's identity
        command = [str(venv_cli), "verify", "--bundle", str(workspace / "bundle.tar.gz")]
        done = subprocess.run([*command, str(image)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{relative}: {done.stdout}{done.stderr}"
        assert "Container verified" in done.stdout
        if image.parent.name == "ci":
            assert "Logged signature" in done.stdout
    # The venv is the clone's own: the package it runs is the clone's source.
    where = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                            "import lifecycle; print(lifecycle.__file__)"], env=env,
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(clone))
