"""Start-up cost is what a small verification costs: these tests pin which modules it imports.

Each command runs in a fresh interpreter (``python -c``) exactly as the ``sif-lifecycle`` entry
point runs it, and reports ``sys.modules`` at exit; a module in the forbidden set means a
verification paid for machinery it does not use (see docs/performance.md for the figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from lifecycle.cli.main import COMMANDS, SUMMARIES, cli
from tests.conftest import SignedImage

HEAVY = {
    "pgpy", "sqlalchemy", "sqlmodel", "alembic", "psycopg", "apscheduler", "jinja2", "pydantic",
    "pyhanko_certvalidator", "asn1crypto", "waitress", "tomllib", "tomli_w",
}  # fmt: skip
"""Third-party (and TOML) packages that no key-based verification needs."""
NOT_FOR_VERIFY = {
    "lifecycle.config", "lifecycle.store", "lifecycle.service", "lifecycle.reports",
    "lifecycle.strategies", "lifecycle.inventory", "lifecycle.bundles", "lifecycle.tlog",
    "lifecycle.pki.keys", "lifecycle.pki.ca", "lifecycle.integrity.sign", "lifecycle.ephemeral",
    "cryptography.x509",  # certificates: only for --certificate, certificate files, logs, bundles
}  # fmt: skip

RUN = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "sif-lifecycle"
from lifecycle.cli.quick import main  # the installed entry point
main()
"""


def imported(*args: str | Path) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", RUN, *map(str, args)], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "verified" in run.stdout or "Commands:" in run.stdout, run.stdout + run.stderr
    return set(json.loads(run.stderr.strip().splitlines()[-1]))


def loaded(modules: set[str], prefixes: set[str]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_a_dsse_verify_imports_only_what_dsse_needs(
    small_signed_images: dict[str, SignedImage], golden_keys: Path
) -> None:
    modules = imported("verify", "--key", golden_keys / "ed25519-public.pem",
                       small_signed_images["dsse"].path)  # fmt: skip
    assert loaded(modules, HEAVY | NOT_FOR_VERIFY) == set()
    assert "cryptography.hazmat.primitives.asymmetric.ed25519" in modules  # the check did run
    assert loaded(modules, {"lifecycle.cli"}) == {  # the quick path: not click's command modules
        "lifecycle.cli", "lifecycle.cli.quick", "lifecycle.cli.failure", "lifecycle.cli.verify_output",
        "lifecycle.cli.progress",
    }  # fmt: skip
    assert loaded(modules, {"click", "logging", "lifecycle.integrity.pgp", "threading"}) == set()
    # what generating dataclass methods, datetime's pure-Python module and RSA/EC support cost
    # a small Ed25519 verification (docs/performance.md): none of it is needed
    assert loaded(modules, {"dataclasses", "datetime", "cryptography.hazmat.primitives.asymmetric.rsa",
                            "cryptography.hazmat.primitives.asymmetric.ec",
                            "cryptography.hazmat.primitives.serialization"}) == set()  # fmt: skip


def test_pgp_is_imported_only_for_pgp(
    small_signed_images: dict[str, SignedImage], golden_keys: Path
) -> None:
    modules = imported("verify", "--key", golden_keys / "private.asc",
                       small_signed_images["pgp"].path)  # fmt: skip
    assert "pgpy" in modules  # the same test would see it: it is needed here, and only here
    assert loaded(modules, (HEAVY - {"pgpy"}) | NOT_FOR_VERIFY) == set()


def test_help_imports_no_command_module() -> None:
    modules = imported("--help")
    assert loaded(modules, {"lifecycle.cli"}) == {
        "lifecycle.cli", "lifecycle.cli.quick", "lifecycle.cli.main", "lifecycle.cli.failure",
    }  # fmt: skip
    assert loaded(modules, {"logging", "lifecycle.verify", "lifecycle.integrity", "pathlib"}) == set()
    assert loaded(modules, HEAVY | {"cryptography"}) == set()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_help_summaries_are_the_commands_own(width: int) -> None:
    """``--help`` prints SUMMARIES instead of loading every command: they must say the same."""
    assert set(SUMMARIES) == set(COMMANDS), "add the new command's first help sentence to SUMMARIES"
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        limit = width - 6 - max(map(len, COMMANDS))
        listed = click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit)
        assert listed == command.get_short_help_str(limit), name
