"""Shared fixtures: the golden corpus, keys, and independent peer tools (Go reference, gpg, ...).

A peer that is missing fails the test under CI (``CI=true``) and skips it on a developer machine:
interop tests never silently skip in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "interop" / "sylabs-sif"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("SIF_LIFECYCLE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a peer or resource the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (install it in scripts/test)")
    pytest.skip(f"{what} is not available")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"the `{name}` command")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def golden_images() -> Path:
    require((GOLDEN / "images").is_dir(), f"the golden corpus at {GOLDEN}")
    return GOLDEN / "images"


@pytest.fixture(scope="session")
def golden_keys() -> Path:
    require((GOLDEN / "keys").is_dir(), f"the golden keys at {GOLDEN}")
    return GOLDEN / "keys"


def build_go_program(source: Path, out_dir: Path) -> Path:
    """Build a Go program offline against Debian's Go packages (GOPATH mode).

    Debian installs module ``github.com/sylabs/sif/v2`` without the ``/v2`` directory, so a
    private GOPATH entry maps it; everything else comes from /usr/share/gocode.
    """
    require_tool("go")
    gocode = Path("/usr/share/gocode/src")
    require((gocode / "github.com/sylabs/sif/pkg/integrity").is_dir(),
            "Debian package golang-github-sylabs-sif-dev")  # fmt: skip
    gopath = out_dir / "gopath"
    alias = gopath / "src/github.com/sylabs/sif/v2"
    alias.parent.mkdir(parents=True, exist_ok=True)
    if not alias.exists():
        alias.symlink_to(gocode / "github.com/sylabs/sif")
    binary = out_dir / source.name
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}:/usr/share/gocode",
        "GOCACHE": str(out_dir / "gocache"),
        "GOFLAGS": "",
    }
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=source, env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    return binary


@pytest.fixture(scope="session")
def sifcheck(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the reference Go implementation (tests/interop/sifcheck) on an image."""
    binary = build_go_program(REPO / "tests/interop/sifcheck", tmp_path_factory.mktemp("go"))

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    return run


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL on a fresh schema of the local PostgreSQL (a real server, no mocks), dropped afterwards."""
    from lifecycle.store.db import make_engine

    admin = make_engine(PG_URL)
    try:
        with admin.connect():
            pass
    except Exception:  # any driver/connection failure means: no server to test against
        admin.dispose()
        require(False, f"PostgreSQL at {PG_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
