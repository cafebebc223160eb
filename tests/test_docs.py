"""Every ```sh example in docs/ runs as written, in a fresh directory, one shell per page; the
```python examples of the API guide then run too, in order, in the same directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = sorted((REPO / "docs").rglob("*.md"))
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PYTHON_PAGES = {REPO / "docs" / "api.md"}
"""Pages whose Python examples are programs (elsewhere they may be fragments)."""


def examples(page: Path) -> str:
    return "\n".join(SH_BLOCK.findall(page.read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in DOCS if examples(p)], ids=lambda p: str(p.relative_to(REPO)))
def test_doc_examples_run(page: Path, tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + examples(page)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, f"{page.name} examples failed:\n{result.stdout}\n{result.stderr}"
    if page in PYTHON_PAGES:
        for number, block in enumerate(PYTHON_BLOCK.findall(page.read_text()), 1):
            done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
            assert done.returncode == 0, f"{page.name} python example {number}:\n{block}\n{done.stderr}"


def test_api_guide_has_python_examples() -> None:
    """The Python runner above must find something to run."""
    assert all(PYTHON_BLOCK.findall(p.read_text()) for p in PYTHON_PAGES)
