"""Migrations on SQLite and PostgreSQL, UTC round trips, WAL, and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from sqlmodel import select

from lifecycle.model.key_state import KeyState
from lifecycle.pki.keys import KeyAlgorithm
from lifecycle.store import audit, migrate
from lifecycle.store.db import make_engine, session_scope, sqlite_url
from lifecycle.store.models import AuditRecord, KeyTransitionRecord
from tests.pki.conftest import PASSPHRASE, StoreCa

TABLES = {"keys", "key_transitions", "certificates", "revocations", "crls", "audit_log",
          "tlog_entry", "tlog_hash", "tlog_intent", "tlog_meta",
          "images", "image_signatures", "image_events", "image_set_keys",
          "work_items", "service_jobs", "apscheduler_jobs", "tsa_serials", "notifications"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _drift(url: str) -> list[object]:
    """Differences between the migrated schema and the models: migrations must not lag behind."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import lifecycle.inventory.models
    import lifecycle.store.models
    import lifecycle.store.tlog  # noqa: F401 - every table on SQLModel.metadata

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def _cycle(url: str) -> None:
    migrate.upgrade(url)
    assert _tables(url) == TABLES
    assert migrate.current(url) == migrate.head()
    assert _drift(url) == []
    migrate.downgrade(url, "base")
    assert _tables(url) == set()
    migrate.upgrade(url)
    assert _tables(url) == TABLES


def test_migrations_sqlite_up_down_up(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "db.sqlite")
    _cycle(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.mark.postgres
def test_migrations_postgres_up_down_up(pg_url: str) -> None:
    _cycle(pg_url)


@pytest.mark.postgres
def test_postgres_round_trips_aware_utc(pg_url: str) -> None:
    _round_trip(pg_url)


def test_sqlite_round_trips_aware_utc(tmp_path: Path) -> None:
    _round_trip(sqlite_url(tmp_path / "db.sqlite"))


def _round_trip(url: str) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    at = datetime(2030, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with session_scope(engine) as session:
        audit.record(session, at, "test", "subject", n=1)
    with session_scope(engine) as session:
        row = session.exec(select(AuditRecord)).one()
    engine.dispose()
    assert row.at == at and row.at.tzinfo == UTC and row.at.hour == 12


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "db.sqlite")
    migrate.upgrade(url)
    engine = make_engine(url)
    with pytest.raises(Exception, match="naive"), session_scope(engine) as session:
        audit.record(session, datetime(2030, 1, 1), "test", "x")
    engine.dispose()


def test_ca_actions_leave_transitions_and_audit_rows(store_ca: StoreCa) -> None:
    row = store_ca.keys.generate(KeyAlgorithm.P256, PASSPHRASE)
    store_ca.keys.transition(row.fingerprint[:12], KeyState.ACTIVE, "first use")
    leaf = store_ca.ca.issue(row.dsse_keyid, "Audit", timedelta(days=10)).certificate
    store_ca.ca.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.superseded)
    with session_scope(store_ca.keys.engine) as session:
        actions = [r.action for r in audit.entries(session)]
        moves = session.exec(select(KeyTransitionRecord).where(
            KeyTransitionRecord.key_id == row.id)).all()
    assert {"key.add", "key.transition", "cert.leaf", "cert.revoke", "crl.publish"} <= set(actions)
    assert [(m.from_state, m.to_state, m.reason) for m in moves] == [
        (None, "pending", "added to the store"), ("pending", "active", "first use")]
    assert all(m.at.tzinfo == UTC for m in moves)
    crl = x509.load_der_x509_crl(store_ca.ca.publish_crl("intermediate"))
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    again = x509.load_der_x509_crl(store_ca.ca.publish_crl("intermediate", force=True))
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
