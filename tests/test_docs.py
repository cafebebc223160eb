"""Every ```sh example in docs/ runs as written, in a fresh directory, one shell per page."""

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
