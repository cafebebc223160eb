"""Small read-only queries over the store's tables, for callers that must not touch tables.

Reports and publishing read a few columns each; giving them functions keeps SQL (and its
``__table__`` typing gaps) inside ``store``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from cryptography import x509
from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from lifecycle.model.fleet import CertInfo
from lifecycle.model.roles import CaRole
from lifecycle.pki.keys import dsse_keyid
from lifecycle.store.models import AuditRecord, CertificateRecord, CrlRecord, RevocationRecord


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
