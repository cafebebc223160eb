"""Load the fleet the planner sees (:mod:`lifecycle.strategies.model`) in a handful of bulk queries.

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
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from lifecycle.inventory.models import (
    ImageEventRecord,
    ImageRecord,
    ImageSignatureRecord,
    SetKeyRecord,
)
from lifecycle.store.models import (
    CertificateRecord,
    CrlRecord,
    KeyRecord,
    KeyTransitionRecord,
    RevocationRecord,
)
from lifecycle.strategies.model import CertInfo, CrlInfo, FleetState, ImageState, KeyInfo, Trust

MANIFEST = "manifest.json"
EPHEMERAL_EVENT = "ephemeral-signed"
"""The inventory event an applied (or found) ephemeral signature leaves: identity and keyid."""


def _table(model: type) -> Any:
    return model.__table__  # type: ignore[attr-defined]


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
    k, t, sk = (_table(m) for m in (KeyRecord, KeyTransitionRecord, SetKeyRecord))
    links = select(sk.c.image_set, sk.c.key_id).order_by(sk.c.id)
    transitions = select(t.c.key_id, t.c.to_state, func.max(t.c.at))
    keys = select(k.c.id, k.c.fingerprint, k.c.dsse_keyid, k.c.state, k.c.created_at).where(
        k.c.purpose == "signing")
    if image_set is not None:
        links = links.where(sk.c.image_set == image_set)
        members = select(sk.c.key_id).where(sk.c.image_set == image_set)
        transitions = transitions.where(t.c.key_id.in_(members))
        keys = keys.where(k.c.id.in_(members))
    sets = {key_id: name for name, key_id in conn.execute(links)}
    since: dict[tuple[int, str], datetime] = {
        (key_id, state): at for key_id, state, at in conn.execute(
            transitions.group_by(t.c.key_id, t.c.to_state))}
    rows = [(key_id, KeyInfo(fpr, kid, state, created, since.get((key_id, "active")),
                             since.get((key_id, "retiring")), sets.get(key_id)))
            for key_id, fpr, kid, state, created in conn.execute(keys.order_by(k.c.id))]
    return rows, {key_id: key.fingerprint for key_id, key in rows}


def load_set_keys(conn: Connection, image_set: str) -> tuple[KeyInfo, ...]:
    """One set's keys: what a per-image action needs, without the fleet's certificates."""
    return tuple(key for _, key in _key_rows(conn, image_set)[0])


def load_trust(conn: Connection) -> Trust:
    c, r, cr = (_table(m) for m in (CertificateRecord, RevocationRecord, CrlRecord))
    key_rows, fingerprints = _key_rows(conn, None)
    revoked = {row[0] for row in conn.execute(select(r.c.certificate_id))}
    cert_rows = list(conn.execute(
        select(c.c.id, c.c.serial, c.c.key_id, c.c.not_before, c.c.not_after, c.c.reissue_of_id)
        .where(c.c.role == "leaf").order_by(c.c.id)))
    latest_crls = list(conn.execute(
        select(c.c.role, cr.c.number, cr.c.this_update, cr.c.next_update)
        .join(c, c.c.id == cr.c.issuer_id)
        .where(cr.c.id.in_(select(func.max(cr.c.id)).group_by(cr.c.issuer_id)))
        .order_by(c.c.role)))
    superseded = {row[5] for row in cert_rows if row[5] is not None}
    keys = tuple(key for _, key in key_rows)
    certificates = tuple(
        CertInfo(serial, fingerprints[key_id], nb, na, cert_id in revoked, cert_id in superseded)
        for cert_id, serial, key_id, nb, na, _ in cert_rows if key_id in fingerprints)
    crls = tuple(CrlInfo(role, number, this, nxt) for role, number, this, nxt in latest_crls)
    revision = hashlib.sha256(repr((
        [(x.fingerprint, x.state, x.image_set) for x in keys],
        [(x.serial, x.revoked) for x in certificates],
        [(x.role, x.number) for x in crls])).encode()).hexdigest()[:16]
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
               publish_directories: Mapping[str, Path | None] | None = None) -> FleetState:
    """Read the whole fleet; ``publish_directories`` (set -> dir) adds what each one holds.

    Without them the planner cannot tell whether a publish directory is stale and plans no
    ``publish`` action (every action that changes trust material publishes anyway).
    ``now`` is accepted for symmetry with ``plan``; the state is the store as it is.
    """
    del now
    i, s = (_table(m) for m in (ImageRecord, ImageSignatureRecord))
    with engine.connect() as conn, _no_gc():
        trust = load_trust(conn)
        signers: dict[int, set[str]] = {}
        for image_id, signer in conn.execute(select(s.c.image_id, s.c.signer)).all():
            signers.setdefault(image_id, set()).add(signer)
        none: frozenset[str] = frozenset()
        images = tuple(
            ImageState(path, status, frozenset(signers[image_id]) if image_id in signers else none)
            for image_id, path, status in conn.execute(
                select(i.c.id, i.c.path, i.c.status).order_by(i.c.path)).all())
        logged = logged_keyids(conn)
    published = {name: read_published(directory)
                 for name, directory in (publish_directories or {}).items()}
    return FleetState(trust.keys, trust.certificates, trust.crls, images, trust.revision,
                      published, logged)


def logged_keyids(conn: Connection) -> dict[str, frozenset[str]]:
    """Identity -> DSSE keyids of the ephemeral signatures applied (and verified) for it."""
    e = _table(ImageEventRecord)
    logged: dict[str, set[str]] = {}
    for (detail,) in conn.execute(select(e.c.detail).where(e.c.kind == EPHEMERAL_EVENT)):
        doc = json.loads(detail)
        logged.setdefault(str(doc["identity"]), set()).add(str(doc["keyid"]))
    return {name: frozenset(ids) for name, ids in logged.items()}
