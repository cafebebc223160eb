"""A fixture fleet: a CA in a SQLite store, three signing keys (one PGP), a re-issued and a revoked
certificate, tiny images signed by each key, and a transparency log with a few entries."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from lifecycle.cli.main import cli
from lifecycle.config import load_config
from lifecycle.integrity.keys import load_pgp_signing_key
from lifecycle.integrity.sign import DsseSigner, PgpSigner, Signer, SignOptions, sign_image
from lifecycle.model.key_state import KeyState
from lifecycle.pki import keys, pgp
from lifecycle.sif import DataType, ObjectSpec, create_image
from lifecycle.store.ca_service import CaService
from lifecycle.store.db import make_engine
from lifecycle.store.migrate import upgrade
from lifecycle.store.tlog import SqlLogStorage, read_meta
from lifecycle.tlog import Log, Submission
from lifecycle.tlog.keys import decrypt_signer
from tests.conftest import REPO, require
from tests.pki.conftest import PASSPHRASE, URLS

ENV = {"SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE.decode()}


@dataclass
class Fleet:
    directory: Path
    config: Path
    ca: CaService
    images: dict[str, Path]
    """good-a (key A, certificate re-issued), revoked-b (key B, certificate revoked), pgp-c."""
    tlog_db: Path
    tlog_key: Path
    revoked_serial: str

    def log(self) -> Log:
        url = f"sqlite:///{self.tlog_db}"
        engine = make_engine(url)
        meta = read_meta(engine)
        signer = decrypt_signer(self.tlog_key.read_bytes(), PASSPHRASE)
        return Log(SqlLogStorage(engine), meta["origin"], signer)

    def grow_log(self, n: int) -> None:
        log = self.log()
        for i in range(n):
            digest = hashlib.sha256(f"{log.size}-{i}".encode()).digest()
            log.append(Submission(digest, b"sig", b"cert", f"image-{log.size}"))


def netns_prefix() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    require(unshare is not None, "unshare (util-linux)")
    assert unshare is not None
    probe = subprocess.run([unshare, "-n", "ip", "-o", "link"], capture_output=True, text=True,
                           timeout=30, check=False)
    require(probe.returncode == 0, f"permission to create a network namespace ({probe.stderr})")
    links = [line.split(":")[1].strip() for line in probe.stdout.splitlines()]
    assert links == ["lo"]  # nothing but an unconfigured loopback
    return (unshare, "-n")


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env={**ENV, **(env or {})},
                              catch_exceptions=False)


def run_subprocess(*args: str | Path, prefix: tuple[str, ...] = (),
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **ENV, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([*prefix, sys.executable, "-m", "lifecycle.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=full_env, check=False)


def _image(path: Path, signer: Signer, payload: bytes) -> Path:
    create_image(path, [ObjectSpec(DataType.GENERIC, payload, group=1)], deterministic=True)
    sign_image(str(path), signer, SignOptions(deterministic=True))
    return path


def build_fleet(base: Path) -> Fleet:
    base.mkdir(parents=True, exist_ok=True)
    config = base / "config.toml"
    config.write_text('[database]\npath = "lifecycle.db"\n[keys]\ndirectory = "keys"\n'
                      f'[ca]\npublic_url = "{URLS.ocsp_url.rsplit("/", 1)[0]}"\n')
    settings = load_config(config)
    upgrade(settings.database_url)
    from lifecycle.cli.pki_options import ca_service

    ca = ca_service(settings, PASSPHRASE)
    ca.init(root_algorithm=keys.KeyAlgorithm.P384, intermediate_algorithm=keys.KeyAlgorithm.P256,
            root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    key_a = ca.keys.generate(keys.KeyAlgorithm.P256, PASSPHRASE)
    key_b = ca.keys.generate(keys.KeyAlgorithm.ED25519, PASSPHRASE)
    key_c = ca.keys.generate_pgp(pgp.PgpAlgorithm.ED25519, "Fleet Signer <fleet@example.org>",
                                 PASSPHRASE)
    for row in (key_a, key_b, key_c):
        ca.keys.transition(row.fingerprint, KeyState.ACTIVE, "fixture")
    first = ca.issue(key_a.fingerprint, "Signer A", timedelta(days=30))
    ca.reissue(first.record.serial, timedelta(days=60))
    revoked = ca.issue(key_b.fingerprint, "Signer B", timedelta(days=30))
    ca.revoke(revoked.record.serial, x509.ReasonFlags.key_compromise)
    images_dir = base / "images"
    images_dir.mkdir()
    pgp_key = load_pgp_signing_key(ca.keys.files.path(key_c.file), lambda _p: PASSPHRASE)
    images = {
        "good-a": _image(images_dir / "good-a.sif",
                         DsseSigner((ca.keys.private_key(key_a, PASSPHRASE),)), b"alpha"),
        "revoked-b": _image(images_dir / "revoked-b.sif",
                            DsseSigner((ca.keys.private_key(key_b, PASSPHRASE),)), b"bravo"),
        "pgp-c": _image(images_dir / "pgp-c.sif", PgpSigner(pgp_key), b"charlie"),
    }
    tlog_db, tlog_key = base / "tlog.db", base / "tlog-key.json"
    result = run_cli("tlog", "init", "--origin", "example.org/fleet-log", "--db", tlog_db,
                     "--key", tlog_key)
    assert result.exit_code == 0, result.output
    fleet = Fleet(base, config, ca, images, tlog_db, tlog_key, revoked.record.serial)
    fleet.grow_log(3)
    return fleet


@pytest.fixture(scope="session")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once; tests get a copy (exports change the store: the bundle key, the audit log)."""
    base = tmp_path_factory.mktemp("fleet") / "fleet"
    build_fleet(base)
    return base


@pytest.fixture
def fleet(fleet_template: Path, tmp_path: Path) -> Iterator[Fleet]:
    base = tmp_path / "fleet"
    shutil.copytree(fleet_template, base)
    settings = load_config(base / "config.toml")
    from lifecycle.cli.pki_options import ca_service

    ca = ca_service(settings, PASSPHRASE)
    revoked = next(c.serial for c in ca.certificates() if ca.revocation(c) is not None)
    images = {p.stem: p for p in (base / "images").glob("*.sif")}
    yield Fleet(base, base / "config.toml", ca, images, base / "tlog.db", base / "tlog-key.json",
                revoked)
    ca.engine.dispose()
