"""Which version of which PGP public key is published on which keyserver.

Each successful ``/pks/add`` is one audit record (``keyserver.publish``: subject the fingerprint,
detail the keyserver URL and the key's content digest, see
:func:`lifecycle.pki.pgp.pgp_content_digest`), written in the same transaction as nothing else:
the audit log is the record, so no table of its own is needed and history is kept.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from lifecycle.pki.keystore import KeyDirectory
from lifecycle.pki.pgp import pgp_content_digest
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.store.models import AuditRecord, KeyRecord
from lifecycle.store.queries import table

PUBLISH_EVENT = "keyserver.publish"


class Publication(NamedTuple):
    fingerprint: str
    digest: str
    url: str
    at: datetime


def record_publication(engine: Engine, now: datetime, fingerprint: str, digest: str,
                       url: str) -> None:
    with session_scope(engine) as session:
        audit.record(session, now, PUBLISH_EVENT, fingerprint, url=url, digest=digest)


def publications(conn: Connection) -> list[Publication]:
    """Every publication, oldest first."""
    a = table(AuditRecord)
    out = []
    for subject, at, detail in conn.execute(
            select(a.c.subject, a.c.at, a.c.detail).where(a.c.action == PUBLISH_EVENT)
            .order_by(a.c.id)):
        doc = json.loads(detail)
        out.append(Publication(subject, str(doc["digest"]), str(doc["url"]), at))
    return out


def published_versions(engine: Engine) -> frozenset[tuple[str, str, str]]:
    """(fingerprint, digest, url) of every key version any keyserver took."""
    with engine.connect() as conn:
        return frozenset((p.fingerprint, p.digest, p.url) for p in publications(conn))


def current_digests(conn: Connection, key_directory: Path) -> dict[str, str]:
    """Fingerprint -> content digest of every stored PGP signing key, read from its file."""
    k = table(KeyRecord)
    files = KeyDirectory(key_directory)
    return {fpr: pgp_content_digest(files.load_pgp(file)) for fpr, file in conn.execute(
        select(k.c.fingerprint, k.c.file).where(k.c.kind == "pgp", k.c.purpose == "signing")
        .order_by(k.c.id))}


class PublicationState(enum.StrEnum):
    PUBLISHED = "published"
    """The keyserver took the key's current version."""
    PENDING = "pending"
    """It holds an older version or none: the service still has to push it."""


class KeyPublicationStatus(NamedTuple):
    fingerprint: str
    digest: str
    url: str
    state: PublicationState
    published_at: datetime | None
    """When the current version went there (None while pending)."""
    older: str | None
    """The last older version that keyserver took, if any."""


def key_status(engine: Engine, key_directory: Path,
               urls: Sequence[str]) -> list[KeyPublicationStatus]:
    """For every stored PGP key and every keyserver: is its current version there?"""
    with engine.connect() as conn:
        current = current_digests(conn, key_directory)
        history = publications(conn)
    out = []
    for fpr, digest in current.items():
        for url in urls:
            here = [p for p in history if p.fingerprint == fpr and p.url == url]
            now = next((p for p in here if p.digest == digest), None)
            older = next((p.digest for p in reversed(here) if p.digest != digest), None)
            out.append(KeyPublicationStatus(
                fpr, digest, url,
                PublicationState.PUBLISHED if now else PublicationState.PENDING,
                now.at if now else None, older))
    return out
