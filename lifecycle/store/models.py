"""Tables: keys and their lifecycle, certificates, revocations, CRLs and the audit log.

Serial numbers are 159-bit, more than any SQL integer holds, so they are stored as lowercase hex.
Every timestamp column is :class:`UTCDateTime`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from lifecycle.store.db import UTCDateTime


def serial_hex(serial: int) -> str:
    return format(serial, "x")


class KeyRecord(SQLModel, table=True):
    __tablename__ = "keys"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(index=True, unique=True, max_length=64)
    dsse_keyid: str = Field(default="", index=True, max_length=100)
    kind: str = Field(max_length=8)  # "pem" or "pgp"
    algorithm: str = Field(max_length=16)
    # signing, ca-root, ca-intermediate or ocsp
    purpose: str = Field(default="signing", max_length=16)
    state: str = Field(max_length=16)
    file: str = Field(max_length=255)
    user_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class KeyTransitionRecord(SQLModel, table=True):
    __tablename__ = "key_transitions"

    id: int | None = Field(default=None, primary_key=True)
    key_id: int = Field(foreign_key="keys.id", index=True)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(sa_column=Column(Text, nullable=False))


class CertificateRecord(SQLModel, table=True):
    __tablename__ = "certificates"
    # the newest certificate of each role and key (/metrics) is found in this index
    __table_args__ = (Index("ix_certificates_role_key_id", "role", "key_id"),)

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(index=True, unique=True, max_length=64)
    role: str = Field(max_length=16)  # root, intermediate, leaf, ocsp
    subject: str = Field(max_length=1024)
    issuer_id: int | None = Field(default=None, foreign_key="certificates.id", index=True)
    key_id: int | None = Field(default=None, foreign_key="keys.id", index=True)
    reissue_of_id: int | None = Field(default=None, foreign_key="certificates.id")
    not_before: datetime = Field(sa_type=UTCDateTime)
    not_after: datetime = Field(sa_type=UTCDateTime)
    pem: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class RevocationRecord(SQLModel, table=True):
    __tablename__ = "revocations"

    id: int | None = Field(default=None, primary_key=True)
    certificate_id: int = Field(foreign_key="certificates.id", unique=True)
    issuer_id: int = Field(foreign_key="certificates.id", index=True)
    revoked_at: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(max_length=32)
    invalidity_date: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CrlRecord(SQLModel, table=True):
    __tablename__ = "crls"
    __table_args__ = (UniqueConstraint("issuer_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer_id: int = Field(foreign_key="certificates.id", index=True)
    number: int
    this_update: datetime = Field(sa_type=UTCDateTime)
    next_update: datetime = Field(sa_type=UTCDateTime)
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    action: str = Field(max_length=64)
    subject: str = Field(max_length=255)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class TsaSerialRecord(SQLModel, table=True):
    """The local TSA's next token serial: serials are reserved from here in blocks, so they only
    grow, across restarts and across servers sharing the database (RFC 3161 2.4.2)."""

    __tablename__ = "tsa_serials"

    id: int | None = Field(default=None, primary_key=True)
    next_serial: int = Field(sa_type=BigInteger)
