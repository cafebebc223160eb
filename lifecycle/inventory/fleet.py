"""Load the fleet the planner sees (:mod:`lifecycle.model.fleet`) in a handful of bulk queries.

Planning a fleet of 100,000 images must take well under two seconds, so nothing here is an ORM
object: each query selects only the columns ``plan`` reads, and rows become named tuples. It
lives in the inventory because it joins the inventory's tables (images, set keys) with the
store's (keys, certificates, CRLs).
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine

from lifecycle.inventory.models import (
    ImageEventRecord,
    ImageRecord,
    ImageSignatureRecord,
    SetKeyRecord,
)
from lifecycle.model.fleet import CertInfo, CrlInfo, FleetState, ImageState, KeyInfo, Trust
from lifecycle.model.key_state import KeyState
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageEvent, ImageStatus
from lifecycle.store.key_publications import current_digests, publications
from lifecycle.store.models import (
    AuditRecord,
    CertificateRecord,
    CrlRecord,
    KeyRecord,
    KeyTransitionRecord,
    RevocationRecord,
)
from lifecycle.store.queries import table

MANIFEST = "manifest.json"


def read_published(directory: Path | None) -> str:
    """The trust revision a publish directory holds ('' when never published)."""
    if directory is None:
        return ""
    try:
        doc = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(doc.get("revision", "")) if isinstance(doc, dict) else ""


def _key_rows(conn: Connection, image_set: str | None
              ) -> tuple[list[tuple[int, KeyInfo]], dict[int, str]]:
    """(database id, KeyInfo) of signing keys (of one set only, when given)."""
    k, t, sk = (table(m) for m in (KeyRecord, KeyTransitionRecord, SetKeyRecord))
    links = select(sk.c.image_set, sk.c.key_id).order_by(sk.c.id)
    transitions = select(t.c.key_id, t.c.to_state, func.max(t.c.at))
    keys = select(k.c.id, k.c.fingerprint, k.c.dsse_keyid, k.c.state, k.c.created_at, k.c.kind,
                  k.c.expires_at).where(k.c.purpose == "signing")
    if image_set is not None:
        links = links.where(sk.c.image_set == image_set)
        members = select(sk.c.key_id).where(sk.c.image_set == image_set)
        transitions = transitions.where(t.c.key_id.in_(members))
        keys = keys.where(k.c.id.in_(members))
    sets = {key_id: name for name, key_id in conn.execute(links)}
    since: dict[tuple[int, str], datetime] = {
        (key_id, state): at for key_id, state, at in conn.execute(
            transitions.group_by(t.c.key_id, t.c.to_state))}
    revoked = pgp_revoked(conn)
    rows = [(key_id, KeyInfo(fpr, kid, KeyState(state), created,
                             since.get((key_id, KeyState.ACTIVE)),
                             since.get((key_id, KeyState.RETIRING)), sets.get(key_id),
                             kind == "pgp", expires, fpr in revoked))
            for key_id, fpr, kid, state, created, kind, expires in
            conn.execute(keys.order_by(k.c.id))]
    return rows, {key_id: key.fingerprint for key_id, key in rows}


PGP_REVOKED = "key.pgp-revoke"
"""The audit action :meth:`KeyService.update_pgp` records when a PGP key gets its revocation."""


def pgp_revoked(conn: Connection) -> frozenset[str]:
    """Fingerprints of the PGP keys that carry a revocation signature."""
    a = table(AuditRecord)
    return frozenset(s for (s,) in conn.execute(select(a.c.subject).where(
        a.c.action == PGP_REVOKED)))


def load_set_keys(conn: Connection, image_set: str) -> tuple[KeyInfo, ...]:
    """One set's keys: what a per-image action needs, without the fleet's certificates."""
    return tuple(key for _, key in _key_rows(conn, image_set)[0])


def load_trust(conn: Connection) -> Trust:
    c, r, cr = (table(m) for m in (CertificateRecord, RevocationRecord, CrlRecord))
    key_rows, fingerprints = _key_rows(conn, None)
    revoked = {row[0] for row in conn.execute(select(r.c.certificate_id))}
    cert_rows = list(conn.execute(
        select(c.c.id, c.c.serial, c.c.key_id, c.c.not_before, c.c.not_after, c.c.reissue_of_id)
        .where(c.c.role == CaRole.LEAF).order_by(c.c.id)))
    latest_crls = list(conn.execute(
        select(c.c.role, cr.c.number, cr.c.this_update, cr.c.next_update)
        .join(c, c.c.id == cr.c.issuer_id)
        # the newest CRL per CA role: a re-issued intermediate's earlier certificate has CRLs
        # that are never refreshed again, and they must not look like a CRL going stale
        .where(cr.c.id.in_(select(func.max(cr.c.id)).select_from(
            cr.join(c, c.c.id == cr.c.issuer_id)).group_by(c.c.role)))
        .order_by(c.c.role)))
    superseded = {row[5] for row in cert_rows if row[5] is not None}
    keys = tuple(key for _, key in key_rows)
    certificates = tuple(
        CertInfo(serial, fingerprints[key_id], nb, na, cert_id in revoked, cert_id in superseded)
        for cert_id, serial, key_id, nb, na, _ in cert_rows if key_id in fingerprints)
    crls = tuple(CrlInfo(CaRole(role), number, this, nxt)
                 for role, number, this, nxt in latest_crls)
    revision = hashlib.sha256(repr((
        [(x.fingerprint, x.state.value, x.image_set, *((x.expires_at, x.pgp_revoked) if x.pgp
                                                       else ())) for x in keys],
        [(x.serial, x.revoked) for x in certificates],
        [(x.role.value, x.number) for x in crls])).encode()).hexdigest()[:16]
    return Trust(keys, certificates, crls, revision)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building ~10^5 tuples: they hold no cycles, and collections
    triggered by the allocations alone would cost a third of the load time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_state(engine: Engine, now: datetime,
               publish_directories: Mapping[str, Path | None] | None = None,
               key_directory: Path | None = None) -> FleetState:
    """Read the whole fleet; ``publish_directories`` (set -> dir) adds what each one holds.

    ``key_directory`` adds the PGP keys' content digests and what the keyservers hold, so the
    planner can publish key changes (without it no ``publish-pgp-key`` action is planned).

    Without them the planner cannot tell whether a publish directory is stale and plans no
    ``publish`` action (every action that changes trust material publishes anyway).
    ``now`` is accepted for symmetry with ``plan``; the state is the store as it is.
    """
    del now
    i, s = (table(m) for m in (ImageRecord, ImageSignatureRecord))
    with engine.connect() as conn, _no_gc():
        trust = load_trust(conn)
        signers: dict[int, set[str]] = {}
        for image_id, signer in conn.execute(select(s.c.image_id, s.c.signer)).all():
            signers.setdefault(image_id, set()).add(signer)
        none: frozenset[str] = frozenset()
        statuses = {status.value: status for status in ImageStatus}  # a dict is 5x the enum call
        images = tuple(
            ImageState(path, statuses[status],
                       frozenset(signers[image_id]) if image_id in signers else none)
            for image_id, path, status in conn.execute(
                select(i.c.id, i.c.path, i.c.status).order_by(i.c.path)).all())
        logged = logged_keyids(conn)
        pgp_keys = current_digests(conn, key_directory) if key_directory is not None else {}
        on_keyservers = frozenset((p.fingerprint, p.digest, p.url) for p in publications(conn)) \
            if key_directory is not None else frozenset()
    published = {name: read_published(directory)
                 for name, directory in (publish_directories or {}).items()}
    return FleetState(trust.keys, trust.certificates, trust.crls, images, trust.revision,
                      published, logged, pgp_keys, on_keyservers)


def logged_keyids(conn: Connection) -> dict[str, frozenset[str]]:
    """Identity -> DSSE keyids of the ephemeral signatures applied (and verified) for it."""
    e = table(ImageEventRecord)
    logged: dict[str, set[str]] = {}
    for (detail,) in conn.execute(select(e.c.detail).where(e.c.kind == ImageEvent.EPHEMERAL_SIGNED)):
        doc = json.loads(detail)
        logged.setdefault(str(doc["identity"]), set()).add(str(doc["keyid"]))
    return {name: frozenset(ids) for name, ids in logged.items()}


def link_key(engine: Engine, image_set: str, key_id: int, now: datetime) -> None:
    """Make store key ``key_id`` one of ``image_set``'s keys (a set has many over its life)."""
    with engine.begin() as conn:
        conn.execute(insert(table(SetKeyRecord)).values(image_set=image_set, key_id=key_id,
                                                         added_at=now))


class ListedImage(NamedTuple):
    path: str
    status: ImageStatus
    sif_id: str
    signers: tuple[str, ...]
    last_verified: datetime | None


def list_images(engine: Engine) -> list[ListedImage]:
    """Every tracked image by path, with its signers in the order they were recorded."""
    i, s = table(ImageRecord), table(ImageSignatureRecord)
    with engine.connect() as conn:
        signers: dict[int, list[str]] = {}
        for image_id, signer in conn.execute(select(s.c.image_id, s.c.signer).order_by(s.c.id)):
            signers.setdefault(image_id, []).append(signer)
        rows = list(conn.execute(select(i.c.id, i.c.path, i.c.status, i.c.sif_id,
                                        i.c.last_verified).order_by(i.c.path)))
    return [ListedImage(path, ImageStatus(status), sif_id, tuple(signers.get(image_id, ())),
                        verified)
            for image_id, path, status, sif_id, verified in rows]


class TamperedImage(NamedTuple):
    path: str
    at: datetime
    kind: ImageEvent
    detail: str
    """The event's JSON detail (its ``reason`` says why)."""


def tampered_images(engine: Engine) -> list[TamperedImage]:
    """Every image now ``tampered``, with the newest event that made it so."""
    i, e = table(ImageRecord), table(ImageEventRecord)
    newest = (select(func.max(e.c.id)).where(e.c.kind == ImageEvent.TAMPERED)
              .group_by(e.c.image_id))
    with engine.connect() as conn:
        rows = conn.execute(select(i.c.path, e.c.at, e.c.kind, e.c.detail)
                            .join(e, e.c.image_id == i.c.id)
                            .where(i.c.status == ImageStatus.TAMPERED, e.c.id.in_(newest))
                            .order_by(i.c.path))
        return [TamperedImage(path, at, ImageEvent(kind), detail)
                for path, at, kind, detail in rows]


def sif_ids(engine: Engine) -> dict[str, str]:
    """Path -> SIF id of every tracked image (the id the log's entries name)."""
    i = table(ImageRecord)
    with engine.connect() as conn:
        return {path: sif_id for path, sif_id in conn.execute(select(i.c.path, i.c.sif_id))}
