"""The command-line examples in docs/tlog.md run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_examples_in_docs_run(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "tlog.md").read_text()
    section = doc.split("## Command line", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, re.S)
    assert script is not None
    prelude = f'sif-lifecycle() {{ "{sys.executable}" -m lifecycle.cli.main "$@"; }}\n'
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", prelude + script[1]],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "consistent: example.org/sif-lifecycle/log grew from 1 to 2 entries" in result.stdout
    assert '"type": "inclusion"' in result.stdout
    assert "sif-lifecycle/tlog-timestamp/v1" in result.stdout
    checkpoint = (tmp_path / "checkpoint-2.txt").read_text()
    assert checkpoint.startswith("example.org/sif-lifecycle/log\n2\n")
