"""Aggregates of the inventory for /metrics, /healthz and notifications: a few GROUP BYs.

Nothing here reads one row per image: images are counted by set and status in SQL (the set is
stored by the scan), and certificates and keys are few (one current certificate per live key).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import exists, func, or_, select
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
    """The signing key's ('' for the CA's own)."""


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


def sets_of_keys(conn: Connection) -> dict[int, str]:
    """Key id -> its image set (the first by name, should a key serve two)."""
    sk = table(SetKeyRecord)
    found: dict[int, str] = {}
    for key_id, name in conn.execute(select(sk.c.key_id, sk.c.image_set).order_by(sk.c.image_set)).all():
        found.setdefault(key_id, name)
    return found


def current_certificates(conn: Connection, sets: dict[int, str] | None = None) -> list[CurrentCertificate]:
    """The newest certificate of each CA role and of each live signing key, unless revoked.

    Ephemeral leaves (minutes-long, one per signature) are left out: their CA's certificate is
    what expires. (A live key's newest certificate replaces the older ones, which are left to
    expire: their expiry is not what a renewal watches.) ``sets`` is :func:`sets_of_keys`, when
    the caller has it already.
    """
    c, r, k = (table(m) for m in (CertificateRecord, RevocationRecord, KeyRecord))
    newest = (select(func.max(c.c.id)).where(c.c.role != CaRole.EPHEMERAL_LEAF)
              .group_by(c.c.role, c.c.key_id))
    sets = sets_of_keys(conn) if sets is None else sets
    rows = conn.execute(
        select(c.c.role, c.c.serial, c.c.not_after, c.c.key_id, k.c.fingerprint)
        .outerjoin(k, k.c.id == c.c.key_id)
        .where(c.c.id.in_(newest), ~exists().where(r.c.certificate_id == c.c.id),  # an anti-join:
               # PostgreSQL plans it from the newest ids (a third faster than an outer join)
               or_(c.c.role != CaRole.LEAF, k.c.state.in_(list(LIVE))))
        .order_by(c.c.role, c.c.serial)).all()  # one fetch: row by row costs more than the query
    return [CurrentCertificate(role, serial, not_after,
                               sets.get(key_id, "") if role == CaRole.LEAF else "",
                               fingerprint or "" if role == CaRole.LEAF else "")
            for role, serial, not_after, key_id, fingerprint in rows]


def signing_keys(conn: Connection, sets: dict[int, str] | None = None) -> list[SigningKey]:
    """Every live signing key with its set and since when it signs (what rotation counts from);
    ``sets`` as for :func:`current_certificates`."""
    k, t = table(KeyRecord), table(KeyTransitionRecord)
    live = select(k.c.id).where(k.c.purpose == "signing", k.c.state.in_(list(LIVE)))
    activated = dict(conn.execute(
        select(t.c.key_id, func.max(t.c.at)).where(t.c.to_state == KeyState.ACTIVE,
                                                   t.c.key_id.in_(live)).group_by(t.c.key_id)).all())
    sets = sets_of_keys(conn) if sets is None else sets
    rows = conn.execute(
        select(k.c.id, k.c.fingerprint, k.c.state, k.c.created_at, k.c.expires_at)
        .where(k.c.id.in_(live)).order_by(k.c.fingerprint)).all()
    return [SigningKey(fpr, state, sets.get(key_id, ""), activated.get(key_id) or created, expires)
            for key_id, fpr, state, created, expires in rows]


def image_counts(conn: Connection) -> list[ImageCount]:
    """Images per (set, status); '' is the set of images in no managed set (or not scanned since)."""
    i = table(ImageRecord)
    rows = conn.execute(select(i.c.image_set, i.c.status, func.count())
                        .group_by(i.c.image_set, i.c.status).order_by(i.c.image_set, i.c.status))
    return [ImageCount(image_set or "", status, int(n)) for image_set, status, n in rows]


def tampered_paths(conn: Connection, image_set: str, limit: int) -> list[str]:
    """Up to ``limit`` tampered images of one set (the first tracked: in index order, no sort),
    for a notification's evidence."""
    i = table(ImageRecord)
    where = i.c.image_set == image_set if image_set else i.c.image_set.is_(None)
    return [path for (path,) in conn.execute(
        select(i.c.path).where(where, i.c.status == ImageStatus.TAMPERED).order_by(i.c.id).limit(limit))]
