"""A year-old world: CA, ephemeral CA and log created with a clock a year back, a fresh image."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from lifecycle.integrity.dsse import sign_pae
from lifecycle.pki import keys
from lifecycle.pki.certs import certificate_pem
from lifecycle.sif import create_image, json_spec, partition_spec
from lifecycle.store import migrate
from lifecycle.store.ca_service import EPHEMERAL, ROOT, CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import Log, NoteSigner, Submission
from lifecycle.tlog.client import LocalLogClient
from lifecycle.tlog.entry import digest_payload
from tests.pki.conftest import PASSPHRASE, URLS

ORIGIN = "example.org/sif-lifecycle/ephemeral-test"
IDENTITY = "builder@example.org"


TOKEN = "append-token-0123456789abcdef"


def signed_submission(ca: CaService, i: int, image_id: str | None = None) -> Submission:
    """What a real signer submits: a signature over a payload by a key ``ca``'s ephemeral CA
    certified (the certificate starts at the CA's clock)."""
    key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    issued = ca.issue_ephemeral(key.public_key(), x509.RFC822Name(IDENTITY), timedelta(minutes=10))
    payload = b"DSSEv1 payload %d" % i
    return Submission(digest_payload(payload), sign_pae(key, payload),
                      certificate_pem(issued.certificate), image_id or f"image-{i}",
                      payload=payload)


class Clock:
    """A clock the test sets by hand; starts a year ago."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=365)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    directory: Path
    clock: Clock
    ca: CaService
    log: Log
    signer: NoteSigner
    client: LocalLogClient

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier.verifier_key()

    def root(self) -> x509.Certificate:
        return self.ca.certificate(ROOT)

    def write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path

    def image(self, name: str = "image.sif", content: bytes = b"hsqs") -> Path:
        path = self.directory / name
        create_image(path, [partition_spec(content + bytes(64)), json_spec({"v": 1})])
        return path

    def trust_files(self) -> dict[str, Path]:
        """Root certificate, a fresh root CRL and the verifier key, as a verifier holds them."""
        return {
            "roots": self.write("root.pem", certificate_pem(self.root())),
            "crl": self.write("root.crl", self.ca.publish_crl(ROOT, force=True)),
            "vkey": self.write("log.vkey", (self.verifier_key + "\n").encode()),
        }


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    url = sqlite_url(tmp_path / "lifecycle.db")
    migrate.upgrade(url)
    engine = make_engine(url)
    service = CaService(KeyService(engine, tmp_path / "keys", clock=clock), PASSPHRASE,
                        CaSettings(urls=URLS))
    service.init(root_algorithm=keys.KeyAlgorithm.P256,
                 intermediate_algorithm=keys.KeyAlgorithm.P256,
                 root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    service.init_ephemeral()
    assert service.has_role(EPHEMERAL)
    signer = NoteSigner.generate(ORIGIN)
    log = Log(SqlLogStorage(engine), ORIGIN, signer, clock=clock)
    client = LocalLogClient(log, signer.verifier.verifier_key())
    yield World(tmp_path, clock, service, log, signer, client)
    engine.dispose()
