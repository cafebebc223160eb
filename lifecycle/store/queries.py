"""Small read-only queries over the store's tables, for callers that must not touch tables.

Reports and publishing read a few columns each; giving them functions keeps SQL (and its
``__table__`` typing gaps) inside ``store``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cryptography import x509
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection, Engine

from lifecycle.model.fleet import CertInfo
from lifecycle.model.roles import CaRole
from lifecycle.pki.keys import dsse_keyid
from lifecycle.store.models import AuditRecord, CertificateRecord, CrlRecord, RevocationRecord
from lifecycle.store.queue import ServiceJobRecord, WorkItemRecord, WorkState
from lifecycle.store.tlog import TlogEntryRow


def table(model: type) -> Table:
    """The Core table of a SQLModel class (SQLModel does not type ``__table__``)."""
    found: Table = model.__table__  # type: ignore[attr-defined]
    return found


class AuditEntry(NamedTuple):
    at: datetime
    subject: str
    detail: str


def revocations_by_serial(engine: Engine) -> dict[str, tuple[datetime, str]]:
    """Serial -> (revoked at, reason) of every revoked certificate."""
    c, r = table(CertificateRecord), table(RevocationRecord)
    with engine.connect() as conn:
        rows = conn.execute(select(c.c.serial, r.c.revoked_at, r.c.reason)
                            .join(c, c.c.id == r.c.certificate_id))
        return {serial: (at, reason) for serial, at, reason in rows}


def latest_audit(engine: Engine, action: str, until: datetime) -> AuditEntry | None:
    """The newest audit row of ``action`` at or before ``until``."""
    a = table(AuditRecord)
    with engine.connect() as conn:
        row = conn.execute(select(a.c.at, a.c.subject, a.c.detail).where(
            a.c.action == action, a.c.at <= until).order_by(a.c.at.desc(), a.c.id.desc())
        ).first()
    return None if row is None else AuditEntry(row[0], row[1], row[2])


def certificate_pems(engine: Engine) -> dict[str, str]:
    """Serial -> PEM of every certificate the CA issued."""
    c = table(CertificateRecord)
    with engine.connect() as conn:
        return {serial: pem for serial, pem in conn.execute(select(c.c.serial, c.c.pem))}


def ephemeral_leaves(engine: Engine) -> list[CertInfo]:
    """Every ephemeral leaf certificate, keyed (``key_fingerprint``) by the DSSE key id of the
    key it certifies: how an image's logged signature finds its certificate."""
    c, r = table(CertificateRecord), table(RevocationRecord)
    with engine.connect() as conn:
        rows = conn.execute(select(c.c.serial, c.c.pem, c.c.not_before, c.c.not_after,
                                   r.c.id).outerjoin(r, r.c.certificate_id == c.c.id)
                            .where(c.c.role == CaRole.EPHEMERAL_LEAF)).all()
    out = []
    for serial, pem, not_before, not_after, revocation in rows:
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        out.append(CertInfo(serial, dsse_keyid(key), not_before, not_after,  # type: ignore[arg-type]
                            revocation is not None, False))
    return out


def latest_certificate_pem(engine: Engine, role: CaRole) -> str | None:
    """The PEM of the newest certificate of ``role`` (the CA root, say), if any."""
    c = table(CertificateRecord)
    with engine.connect() as conn:
        pem: str | None = conn.execute(select(c.c.pem).where(c.c.role == role)
                                       .order_by(c.c.id.desc())).scalar()
    return pem


def latest_crl(engine: Engine, role: CaRole) -> bytes | None:
    """The DER of the newest CRL of the newest certificate of ``role`` (None: never published)."""
    c, crl = table(CertificateRecord), table(CrlRecord)
    with engine.connect() as conn:
        issuer: Any = conn.execute(select(c.c.id).where(c.c.role == role)
                                   .order_by(c.c.id.desc())).scalar()
        der: bytes | None = conn.execute(select(crl.c.der).where(crl.c.issuer_id == issuer)
                                         .order_by(crl.c.number.desc())).scalar()
    return der


# -- what /metrics, /healthz and notifications read: aggregates, bounded however big the store ----


class CrlRow(NamedTuple):
    role: str
    number: int
    next_update: datetime


class WorkCount(NamedTuple):
    kind: str
    state: str
    total: int


class JobRun(NamedTuple):
    job: str
    last_started: datetime
    last_success: datetime | None
    last_failure: datetime | None


class FailedItem(NamedTuple):
    id: int
    key: str
    attempts: int
    error: str
    image_set: str


def latest_crls(conn: Connection) -> list[CrlRow]:
    """The newest CRL of each issuer, with the issuer's role (one row per CA certificate)."""
    c, crl = table(CertificateRecord), table(CrlRecord)
    newest = select(func.max(crl.c.id)).group_by(crl.c.issuer_id)
    rows = conn.execute(select(c.c.role, crl.c.number, crl.c.next_update)
                        .join(c, c.c.id == crl.c.issuer_id).where(crl.c.id.in_(newest))
                        .order_by(c.c.role, crl.c.number))
    return [CrlRow(*row) for row in rows]


def work_counts(conn: Connection) -> list[WorkCount]:
    """Work items per (kind, state)."""
    w = table(WorkItemRecord)
    rows = conn.execute(select(w.c.kind, w.c.state, func.count()).group_by(w.c.kind, w.c.state)
                        .order_by(w.c.kind, w.c.state))
    return [WorkCount(kind, state, int(n)) for kind, state, n in rows]


def oldest_due(conn: Connection, now: datetime) -> datetime | None:
    """The due time of the longest-waiting unfinished item that is already due (None: none)."""
    w = table(WorkItemRecord)
    found: datetime | None = conn.execute(select(func.min(w.c.due)).where(
        w.c.state.in_((WorkState.PENDING, WorkState.CLAIMED)), w.c.due <= now)).scalar()
    return found


def failed_items(conn: Connection, limit: int) -> list[FailedItem]:
    """Up to ``limit`` items that failed for good, newest first, with their last error."""
    w = table(WorkItemRecord)
    rows = conn.execute(select(w.c.id, w.c.key, w.c.attempts, w.c.result, w.c.action)
                        .where(w.c.state == WorkState.FAILED)
                        .order_by(w.c.updated_at.desc(), w.c.id.desc()).limit(limit))
    return [FailedItem(item_id, key, attempts, _field(result, "error"), _field(action, "image_set"))
            for item_id, key, attempts, result, action in rows]


def _field(text: str | None, name: str) -> str:
    """One string field of a stored JSON object ('' when absent or unreadable)."""
    try:
        doc = json.loads(text or "{}")
    except ValueError:
        return ""
    return str(doc.get(name, "")) if isinstance(doc, dict) else ""


def job_runs(conn: Connection) -> list[JobRun]:
    """The last start, success and failure of every scheduled job that ever ran."""
    j = table(ServiceJobRecord)
    rows = conn.execute(select(j.c.job_id, j.c.last_started, j.c.last_success, j.c.last_failure)
                        .order_by(j.c.job_id))
    return [JobRun(*row) for row in rows]


def tlog_stats(conn: Connection) -> tuple[int, datetime | None]:
    """(entries, time of the newest) of the transparency log kept in this database."""
    e = table(TlogEntryRow)
    size, newest = conn.execute(select(func.count(), func.max(e.c.integrated_time))).one()
    if isinstance(newest, str):  # SQLite returns the aggregate of a plain DateTime column as text
        newest = datetime.fromisoformat(newest)
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    return int(size), newest
