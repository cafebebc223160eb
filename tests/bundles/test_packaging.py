"""The bundle templates ship inside the package: an installed wheel renders them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_installed_wheel_finds_the_templates(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, timeout=300,
                   capture_output=True)
    wheel = next((tmp_path / "dist").glob("sif_lifecycle-*.whl"))
    templates = sorted(p.relative_to(REPO).as_posix()
                       for p in (REPO / "lifecycle/templates").rglob("*.j2"))
    assert templates
    assert set(templates) <= set(zipfile.ZipFile(wheel).namelist())
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300, capture_output=True)
    probe = ("import lifecycle.bundles.render as r, sys; print(r.__file__); "
             "sys.stdout.write(r.render('bundle/ecl.toml.j2', pem_sets=[], waiting_sets=[], "
             "groups=[dict(tagname='t', mode='whitelist', dirpath='/d', keyfp=['AB'])]).decode())")
    done = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(target)},
                          capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path)
    first, rest = done.stdout.split("\n", 1)
    assert first.startswith(str(target))  # the installed copy, not the source tree
    assert 'keyfp = ["AB"]' in rest
