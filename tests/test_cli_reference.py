"""docs/cli.md is generated from the command tree; it must match what the CLI says today."""

from __future__ import annotations

import difflib

from lifecycle.cli.reference import render
from tests.conftest import REPO


def test_cli_reference_is_current() -> None:
    committed = (REPO / "docs" / "cli.md").read_text().splitlines()
    current = render().splitlines()
    stale = "\n".join(difflib.unified_diff(committed, current, "docs/cli.md", "CLI", lineterm=""))
    assert not stale, f"docs/cli.md is stale: run python -m lifecycle.cli.reference > docs/cli.md\n{stale}"
