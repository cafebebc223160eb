"""Aggregates of the inventory for /metrics, /healthz and notifications: a few GROUP BYs.

Nothing here reads one row per image: images are counted by set and status in SQL (the set is
stored by the scan), and certificates and keys are few (one current certificate per live key).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from lifecycle.inventory.models import ImageRecord, SetKeyRecord
from lifecycle.model.fleet import LIVE
from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageStatus
from lifecycle.store.models import CertificateRecord, KeyRecord, KeyTransitionRecord, RevocationRecord
from lifecycle.store.queries import table


class CurrentCertificate(NamedTuple):
    role: str
    serial: str
    not_after: datetime
    image_set: str
    """'' for the CA's own certificates and keys in no set."""
    fingerprint: str


class SigningKey(NamedTuple):
    fingerprint: str
    state: str
    image_set: str
    active_since: datetime
    """When it became active (its creation time while it is pending)."""
    expires_at: datetime | None


class ImageCount(NamedTuple):
    image_set: str
    status: str
    total: int


def current_certificates(conn: Connection) -> list[CurrentCertificate]:
    """The newest unrevoked certificate of each CA role and of each live signing key.

    Ephemeral leaves (minutes-long, one per signature) are left out: their CA's certificate is
    what expires.
    """
    c, r, k, sk = (table(m) for m in (CertificateRecord, RevocationRecord, KeyRecord, SetKeyRecord))
    newest = (select(func.max(c.c.id)).outerjoin(r, r.c.certificate_id == c.c.id)
              .where(r.c.id.is_(None), c.c.role != CaRole.EPHEMERAL_LEAF)
              .group_by(c.c.role, c.c.key_id))
    sets = select(sk.c.key_id, func.min(sk.c.image_set).label("image_set")).group_by(
        sk.c.key_id).subquery()
    rows = conn.execute(
        select(c.c.role, c.c.serial, c.c.not_after, sets.c.image_set, k.c.fingerprint)
        .outerjoin(k, k.c.id == c.c.key_id).outerjoin(sets, sets.c.key_id == c.c.key_id)
        .where(c.c.id.in_(newest), or_(c.c.role != CaRole.LEAF, k.c.state.in_(list(LIVE))))
        .order_by(c.c.role, c.c.serial))
    return [CurrentCertificate(role, serial, not_after, image_set or "", fingerprint or "")
            for role, serial, not_after, image_set, fingerprint in rows]


def signing_keys(conn: Connection) -> list[SigningKey]:
    """Every live signing key with its set and since when it signs (what rotation counts from)."""
    k, t, sk = (table(m) for m in (KeyRecord, KeyTransitionRecord, SetKeyRecord))
    activated = (select(t.c.key_id, func.max(t.c.at).label("at"))
                 .where(t.c.to_state == KeyState.ACTIVE).group_by(t.c.key_id).subquery())
    sets = select(sk.c.key_id, func.min(sk.c.image_set).label("image_set")).group_by(
        sk.c.key_id).subquery()
    rows = conn.execute(
        select(k.c.fingerprint, k.c.state, sets.c.image_set, k.c.created_at, activated.c.at,
               k.c.expires_at)
        .outerjoin(sets, sets.c.key_id == k.c.id).outerjoin(activated, activated.c.key_id == k.c.id)
        .where(k.c.purpose == "signing", k.c.state.in_(list(LIVE))).order_by(k.c.fingerprint))
    return [SigningKey(fpr, state, image_set or "", active or created, expires)
            for fpr, state, image_set, created, active, expires in rows]


def image_counts(conn: Connection) -> list[ImageCount]:
    """Images per (set, status); '' is the set of images in no managed set (or not scanned since)."""
    i = table(ImageRecord)
    rows = conn.execute(select(i.c.image_set, i.c.status, func.count())
                        .group_by(i.c.image_set, i.c.status).order_by(i.c.image_set, i.c.status))
    return [ImageCount(image_set or "", status, int(n)) for image_set, status, n in rows]


def tampered_paths(conn: Connection, image_set: str, limit: int) -> list[str]:
    """Up to ``limit`` tampered images of one set (by path), for a notification's evidence."""
    i = table(ImageRecord)
    where = i.c.image_set == image_set if image_set else i.c.image_set.is_(None)
    return [path for (path,) in conn.execute(
        select(i.c.path).where(where, i.c.status == ImageStatus.TAMPERED).order_by(i.c.path).limit(limit))]
