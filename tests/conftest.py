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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from lifecycle.integrity.keys import (
    KeySet,
    load_pgp_signing_key,
    load_signing_key,
    load_verifier_keys,
    no_passphrase,
)
from lifecycle.integrity.sign import DsseSigner, PgpSigner, Signer, SignOptions, sign_image
from lifecycle.sif import DataType, ObjectSpec, create_image
from lifecycle.sif.format import HEADER_SIZE

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
        "GOCACHE": str(out_dir.parent / "gocache"),  # shared by the session's builds
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


@pytest.fixture(scope="session")
def stockocsp(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run tests/interop/stockocsp: stock ``--ocsp-verify``'s acceptance rules, in Go."""
    require((Path("/usr/share/gocode/src/golang.org/x/crypto/ocsp")).is_dir(),
            "Debian package golang-golang-x-crypto-dev")  # fmt: skip
    binary = build_go_program(REPO / "tests/interop/stockocsp", tmp_path_factory.mktemp("go"))

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


# ---------------------------------------------------------------- small signed images (robustness tests)


@dataclass(frozen=True)
class SignedImage:
    """A tiny signed image's bytes and the parsed key material that verifies it."""

    kind: str
    path: Path
    """The signed file (shared: tests copy it before changing anything)."""
    data: bytes
    keys: KeySet


@dataclass(frozen=True)
class SigningKit:
    """Test keys parsed once per session: parsing dominates the cost of small verifications."""

    dsse: DsseSigner
    dsse_keys: KeySet
    pgp: PgpSigner
    pgp_keys: KeySet

    def signer(self, kind: str) -> Signer:
        return self.dsse if kind == "dsse" else self.pgp

    def keys(self, kind: str) -> KeySet:
        return self.dsse_keys if kind == "dsse" else self.pgp_keys


@pytest.fixture(scope="session")
def signing_kit(golden_keys: Path) -> SigningKit:
    return SigningKit(
        DsseSigner((load_signing_key(golden_keys / "ed25519-private.pem", no_passphrase),)),
        load_verifier_keys(golden_keys / "ed25519-public.pem"),
        PgpSigner(load_pgp_signing_key(golden_keys / "private.asc", no_passphrase)),
        load_verifier_keys(golden_keys / "private.asc"),
    )


def small_objects() -> list[ObjectSpec]:
    """Two groups (one with a single object) and an alignment gap: every layout case, few bytes."""
    return [
        ObjectSpec(DataType.GENERIC, b"abc", group=1),
        ObjectSpec(DataType.GENERIC_JSON, b"{}", group=1, name=b"data.json", alignment=16),
        ObjectSpec(DataType.GENERIC, b"xyz", group=2),
    ]


@pytest.fixture(scope="session")
def small_signed_images(
    signing_kit: SigningKit, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, SignedImage]:
    """The small image signed with DSSE (Ed25519) and, separately, with PGP (golden private.asc).

    Six descriptor slots (one stays free) after a 64-byte gap keep the file near 5 KiB.
    """
    out = {}
    for kind in ("dsse", "pgp"):
        path = tmp_path_factory.mktemp("small") / f"{kind}.sif"
        create_image(path, small_objects(), capacity=6, descriptors_offset=HEADER_SIZE + 64,
                     deterministic=True)  # fmt: skip
        sign_image(str(path), signing_kit.signer(kind), SignOptions(deterministic=True))
        out[kind] = SignedImage(kind, path, path.read_bytes(), signing_kit.keys(kind))
    return out


# Hypothesis profiles for the property tests: few examples by default so the suite stays fast.
settings.register_profile("fuzz", max_examples=60, deadline=timedelta(seconds=2), derandomize=False,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
settings.register_profile("fuzz-thorough", parent=settings.get_profile("fuzz"), max_examples=2000)


@pytest.fixture
def sks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real HKP keyserver (Debian sks) on loopback with an empty database (tests/sks.py)."""
    from tests.sks import SKS, running_sks

    require(Path(SKS).is_file(), "Debian package sks")
    with running_sks(tmp_path_factory.mktemp("sks")) as server:
        yield server


@pytest.fixture(scope="session")
def keyclient(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Apptainer's HKP client library (tests/interop/keyclient): pull, search, push."""
    require(Path("/usr/share/gocode/src/github.com/apptainer/container-key-client/client").is_dir(),
            "Debian package golang-github-apptainer-container-key-client-dev")
    binary = build_go_program(REPO / "tests/interop/keyclient", tmp_path_factory.mktemp("go"))

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    return run
