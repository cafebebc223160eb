"""Shared fixtures: an in-memory CA for pure tests, a migrated store with a CA for the rest."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lifecycle.pki import ca, crl, keys
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from tests.conftest import require

PASSPHRASE = b"correct horse battery staple"
URLS = ca.CaUrls(crl_url="http://127.0.0.1:9/crl/intermediate.crl",
                 root_crl_url="http://127.0.0.1:9/crl/root.crl",
                 ocsp_url="http://127.0.0.1:9/ocsp",
                 ca_issuers_url="http://127.0.0.1:9/ca/intermediate.crt")


def tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, name)
    assert path is not None
    return path


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False,
                          **kwargs)  # type: ignore[call-overload,no-any-return]


def der(obj: x509.CertificateRevocationList) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER)


@dataclass
class MemoryCa:
    """A root, an intermediate and their keys, started a year ago, built with the pure API."""

    now: datetime
    root: x509.Certificate
    root_key: keys.PrivateKey
    inter: x509.Certificate
    inter_key: keys.PrivateKey

    def leaf(self, *, start: datetime, days: int, public: keys.PublicKey | None = None,
             name: str = "Signer") -> x509.Certificate:
        public = public or keys.generate_private_key(keys.KeyAlgorithm.ED25519).public_key()
        return ca.issue_code_signing(self.inter, self.inter_key, public, ca.name(name),
                                     not_before=start, lifetime=timedelta(days=days), urls=URLS)

    def crls(self, revoked: list[crl.RevokedEntry] | None = None, *,
             this_update: datetime | None = None, next_update: datetime | None = None
             ) -> list[bytes]:
        """[root CRL, intermediate CRL] with ``revoked`` on the intermediate's."""
        this = this_update or self.now
        nxt = next_update or this + timedelta(days=7)
        return [der(crl.build_crl(self.root, self.root_key, [], number=1, this_update=self.now,
                                  next_update=self.now + timedelta(days=7))),
                der(crl.build_crl(self.inter, self.inter_key, revoked or [], number=1,
                                  this_update=this, next_update=nxt))]


@pytest.fixture(scope="session")
def memory_ca() -> MemoryCa:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=365)
    root_key = keys.generate_private_key(keys.KeyAlgorithm.P384)
    inter_key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    root = ca.build_root(root_key, ca.name("Test Root"), not_before=start,
                         lifetime=timedelta(days=3650))
    inter = ca.build_intermediate(root, root_key, inter_key.public_key(), ca.name("Test Signing"),
                                  not_before=start, lifetime=timedelta(days=1825), urls=URLS)
    return MemoryCa(now, root, root_key, inter, inter_key)


@dataclass
class StoreCa:
    directory: Path
    url: str
    keys: KeyService
    ca: CaService

    def write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path


def open_store_ca(directory: Path) -> StoreCa:
    """The store in ``directory`` (``lifecycle.db`` and ``keys/``), e.g. a copy of another."""
    url = sqlite_url(directory / "lifecycle.db")
    service = KeyService(make_engine(url), directory / "keys")
    return StoreCa(directory, url, service, CaService(service, PASSPHRASE, CaSettings(urls=URLS)))


def make_store_ca(directory: Path) -> StoreCa:
    """A migrated SQLite store with an initialised CA (EC keys: fast) in ``directory``."""
    migrate.upgrade(sqlite_url(directory / "lifecycle.db"))
    made = open_store_ca(directory)
    made.ca.init(root_algorithm=keys.KeyAlgorithm.P384,
                 intermediate_algorithm=keys.KeyAlgorithm.P256,
                 root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    return made


@pytest.fixture
def store_ca(tmp_path: Path) -> StoreCa:
    """A migrated SQLite store with an initialised CA (EC keys: fast)."""
    return make_store_ca(tmp_path)
