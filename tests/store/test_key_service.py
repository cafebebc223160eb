"""KeyService.update_pgp: the key file and its row change together, or neither does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from lifecycle.errors import StoreError
from lifecycle.pki.pgp import PgpAlgorithm
from lifecycle.pki.pgp_maintenance import PgpRevocationReason, extend_expiry, revocation_at, revoke
from lifecycle.store import key_service, migrate
from lifecycle.store.db import make_engine
from lifecycle.store.key_service import KeyService

NOW = datetime(2027, 3, 1, tzinfo=UTC)
PASSPHRASE = b"store passphrase"


@pytest.fixture
def service(tmp_path: Path) -> KeyService:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    return KeyService(make_engine(url), tmp_path / "keys", clock=lambda: NOW)


def test_an_extension_is_stored_in_the_file_and_the_row(service: KeyService) -> None:
    row = service.generate_pgp(PgpAlgorithm.ED25519, "Set <set@example.org>", PASSPHRASE,
                               expires=NOW + timedelta(days=30))  # fmt: skip
    key = service.pgp_key(row)
    extend_expiry(key, PASSPHRASE.decode(), NOW + timedelta(days=400), now=NOW)
    updated = service.update_pgp(row, key, "pgp-extend", NOW)
    assert updated.expires_at is not None
    assert updated.expires_at.replace(tzinfo=UTC) == NOW + timedelta(days=400)
    assert service.get(row.fingerprint).expires_at == updated.expires_at


def test_a_revocation_the_store_cannot_record_leaves_the_key_file_as_it_was(
    service: KeyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = service.generate_pgp(PgpAlgorithm.ED25519, "Set <set@example.org>", PASSPHRASE,
                               expires=NOW + timedelta(days=30))  # fmt: skip
    path = service.files.path(row.file)
    before = path.read_bytes()
    key = revoke(service.pgp_key(row), PASSPHRASE.decode(), PgpRevocationReason.COMPROMISED, now=NOW)

    def refused(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO audit_log", {}, Exception("database is locked"))

    monkeypatch.setattr(key_service.audit, "record", refused)
    with pytest.raises(StoreError, match="database is locked"):
        service.update_pgp(row, key, "pgp-revoke", NOW)
    assert path.read_bytes() == before
    assert revocation_at(service.pgp_key(row)) is None  # not revoked in the file either
    assert service.get(row.fingerprint).expires_at == row.expires_at
