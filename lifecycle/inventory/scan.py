"""Register SIF images and keep the inventory current, cheaply when nothing changed.

An unchanged file (same size, mtime_ns and inode) is not opened; ``full=True`` re-reads every
image. A changed image becomes ``tampered`` (an event row and an audit record say why) and is
never signed automatically when its signed metadata no longer matches its content, when it was
seen signed and lost its signatures, or when a signer is not its set's (see
:mod:`lifecycle.inventory.expected`). A file that disappeared is marked ``removed``, not
forgotten: its history stays.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from lifecycle import globs
from lifecycle.config import Policies
from lifecycle.errors import LifecycleError
from lifecycle.integrity.hashing import ordered_map
from lifecycle.inventory.expected import ExpectedSigners, Resolver, expected_signers
from lifecycle.inventory.inspect import ImageInfo, inspect_image
from lifecycle.inventory.models import (
    ImageEventRecord,
    ImageRecord,
    ImageSignatureRecord,
)
from lifecycle.model.status import ImageEvent, ImageStatus
from lifecycle.store import audit

log = logging.getLogger(__name__)

IMAGES = ImageRecord.__table__  # type: ignore[attr-defined]
SIGNATURES = ImageSignatureRecord.__table__  # type: ignore[attr-defined]
EVENTS = ImageEventRecord.__table__  # type: ignore[attr-defined]
BATCH = 500


@dataclass
class ScanReport:
    scanned: int = 0
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    tampered: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "new": self.new, "changed": self.changed,
                "unchanged": self.unchanged, "tampered": self.tampered,
                "removed": self.removed, "errors": self.errors}


def event(conn: Connection, image_id: int | None, at: datetime, kind: ImageEvent,
          **detail: Any) -> None:
    """One inventory event row, in the caller's transaction."""
    conn.execute(insert(EVENTS).values(image_id=image_id, at=at, kind=kind,
                                       detail=json.dumps(detail, sort_keys=True, default=str)))


def _signature_rows(image_id: int, info: ImageInfo) -> list[dict[str, Any]]:
    rows = []
    for sig in info.signatures:
        for signer in sig.signers or ("",):
            rows.append({"image_id": image_id, "object_id": sig.object_id, "group_id": sig.group,
                         "format": sig.format, "signer": signer,
                         "covered": ",".join(map(str, sig.covered))})
    return list({(r["object_id"], r["signer"]): r for r in rows}.values())


def _previous_signers(conn: Connection, image_id: int) -> frozenset[str]:
    return frozenset(s for (s,) in conn.execute(
        select(SIGNATURES.c.signer).where(SIGNATURES.c.image_id == image_id)) if s)


def ever_signed(conn: Connection, image_id: int) -> bool:
    """The inventory recorded a signature on the image since it was last (re-)tracked.

    Its signature rows are rewritten on every change; the events that counted its signatures
    stay. An explicit ``track`` is the operator saying "this is the image now": history
    before it is not held against the image.
    """
    for kind, detail in conn.execute(select(EVENTS.c.kind, EVENTS.c.detail).where(
            EVENTS.c.image_id == image_id, EVENTS.c.kind.in_((*_COUNTED, ImageEvent.EPHEMERAL_SIGNED)))
            .order_by(EVENTS.c.id.desc())):
        if kind == ImageEvent.EPHEMERAL_SIGNED or json.loads(detail).get("signatures", 0):
            return True
        if kind == ImageEvent.TRACKED:
            return False
    return False


_COUNTED = (ImageEvent.TRACKED, ImageEvent.CHANGED)
"""The events whose ``signatures`` detail counts the signatures the image carried."""


LOST_SIGNATURES = "the inventory saw it signed and it carries no signature now"


def tamper_reasons(conn: Connection, info: ImageInfo, image_id: int | None,
                   expected: ExpectedSigners | None, *, registering: bool = False) -> list[str]:
    """Why the image must not be signed as it is now (empty when nothing is wrong).

    ``registering`` (an explicit ``track``) does not hold lost signatures against the image.
    """
    reasons = [info.problems] if not info.intact else []
    previous: frozenset[str] = frozenset()
    seen = False
    if image_id is not None:
        previous = _previous_signers(conn, image_id)
        seen = bool(previous) or ever_signed(conn, image_id)
        if seen and not info.signatures and not registering:
            reasons.append(LOST_SIGNATURES)
    if expected is not None:
        signers = frozenset(s for sig in info.signatures for s in sig.signers)
        foreign = expected.foreign(signers, previous, seen)
        if foreign:
            reasons.append(f"signed by {', '.join(foreign)}, not a signer of image set "
                           f"{expected.image_set}")
    return reasons


def record_image(conn: Connection, info: ImageInfo, st: os.stat_result, now: datetime,
                 existing: tuple[int, str] | None, *, clear_tampered: bool = True,
                 expected: ExpectedSigners | None = None, registering: bool = False) -> ImageStatus:
    """Insert or refresh one image's rows; returns its new status. Digests stay as first seen.

    A ``tampered`` image stays tampered unless ``clear_tampered`` (an explicit ``track``) and
    nothing is wrong with it now: it may have been refused for signatures that are intact but
    not trusted, and a periodic scan must not make the service try, and refuse, again and again.
    ``expected`` (the image's set's signers) adds the foreign-signer check; the apply handlers
    that just verified and signed the image leave it out. ``registering`` (``track``) records
    the image as it is now as its new starting point (a ``tracked`` event).
    """
    reasons = tamper_reasons(conn, info, None if existing is None else existing[0], expected,
                             registering=registering)
    status = ImageStatus.TAMPERED if reasons else ImageStatus.PRESENT
    if existing is not None and existing[1] == ImageStatus.TAMPERED and not clear_tampered:
        status = ImageStatus.TAMPERED
    values = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino,
              "sif_id": info.sif_id, "groups": ",".join(map(str, info.groups)), "status": status,
              "last_seen": now, "last_verified": now}
    if expected is not None:
        values["image_set"] = expected.image_set
    if existing is None:
        image_id = conn.execute(insert(IMAGES).values(
            path=info.path, digests=json.dumps({str(k): v for k, v in info.digests.items()}),
            first_seen=now, **values)).inserted_primary_key[0]  # type: ignore[index]
        event(conn, image_id, now, ImageEvent.TRACKED, signatures=len(info.signatures))
        previous = None
    else:
        image_id, previous = existing
        conn.execute(update(IMAGES).where(IMAGES.c.id == image_id).values(**values))
        conn.execute(delete(SIGNATURES).where(SIGNATURES.c.image_id == image_id))
        if previous == ImageStatus.REMOVED:
            event(conn, image_id, now, ImageEvent.REAPPEARED)
        if registering:
            event(conn, image_id, now, ImageEvent.TRACKED, signatures=len(info.signatures))
        elif status == ImageStatus.PRESENT and previous != ImageStatus.REMOVED:
            event(conn, image_id, now, ImageEvent.CHANGED, signatures=len(info.signatures))
    rows = _signature_rows(image_id, info)
    if rows:
        conn.execute(insert(SIGNATURES), rows)
    if status == ImageStatus.TAMPERED and previous != ImageStatus.TAMPERED:
        reason = "; ".join(reasons)
        event(conn, image_id, now, ImageEvent.TAMPERED, reason=reason)
        audit.record_in(conn, now, "image.tampered", info.path[-255:], reason=reason)
        _log_tampered(info.path, reason)
    return status


def _log_tampered(path: str, evidence: str) -> None:
    """A tamper detection is something to act on: a warning naming the image and the evidence."""
    log.warning("image %s is tampered: %s", path, evidence,
                extra={"fields": {"event": "image.tampered", "image": path, "evidence": evidence}})


def reinventory(engine: Engine, image_id: int, path: str, now: datetime) -> None:
    """Re-read one tracked image after changing it (its status becomes ``present`` again)."""
    info = inspect_image(path)
    with engine.begin() as conn:
        record_image(conn, info, Path(path).stat(), now, (image_id, ImageStatus.PRESENT))


def image_row(engine: Engine, path: str) -> tuple[int, ImageStatus, dict[str, str]] | None:
    """(id, status, digests as first seen) of a tracked image, None when it is not tracked."""
    with engine.connect() as conn:
        row = conn.execute(select(IMAGES.c.id, IMAGES.c.status, IMAGES.c.digests)
                           .where(IMAGES.c.path == path)).first()
    return None if row is None else (row[0], ImageStatus(row[1]), json.loads(row[2]))


def mark_tampered(engine: Engine, image_id: int, now: datetime, reason: str) -> None:
    """A refused re-sign: the image is ``tampered`` and two events say why (for the alert)."""
    with engine.begin() as conn:
        conn.execute(update(IMAGES).where(IMAGES.c.id == image_id)
                     .values(status=ImageStatus.TAMPERED))
        event(conn, image_id, now, ImageEvent.TAMPERED, reason=reason)
        event(conn, image_id, now, ImageEvent.REFUSED, reason=reason)
        path = conn.execute(select(IMAGES.c.path).where(IMAGES.c.id == image_id)).scalar()
    _log_tampered(str(path), reason)


def record_ephemeral(engine: Engine, image_id: int, now: datetime, identity: str,
                     keyids: Iterable[str]) -> None:
    """Remember the logged ephemeral signatures of an image (what the planner reads back)."""
    with engine.begin() as conn:
        for keyid in sorted(keyids):
            event(conn, image_id, now, ImageEvent.EPHEMERAL_SIGNED, identity=identity,
                  keyid=keyid)


def carrying(engine: Engine, signer: str) -> str | None:
    """The path of a present image that still carries a signature by ``signer``, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(IMAGES.c.path).join(SIGNATURES, SIGNATURES.c.image_id == IMAGES.c.id)
            .where(SIGNATURES.c.signer == signer, IMAGES.c.status == ImageStatus.PRESENT)).first()
    return None if row is None else str(row[0])


def _known(conn: Connection) -> dict[str, tuple[int, int, int, int, str]]:
    rows = conn.execute(select(IMAGES.c.path, IMAGES.c.id, IMAGES.c.size, IMAGES.c.mtime_ns,
                               IMAGES.c.inode, IMAGES.c.status))
    return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}


def scan(engine: Engine, roots_or_paths: Sequence[str | Path], now: datetime, full: bool = False,
         *, strict: bool = False, policies: Policies | None = None,
         jobs: int | None = None) -> ScanReport:
    """Bring the inventory of the images under ``roots_or_paths`` up to date.

    ``strict`` (used by ``track``) raises on the first file that is not a readable SIF image,
    instead of listing it in the report, and lets an image with nothing wrong leave the
    ``tampered`` state. ``policies`` names the managed sets whose signers are checked. Images
    are read and hashed on ``jobs`` threads (default every core), recorded in order.
    """
    roots = [os.path.abspath(os.fspath(r)) for r in roots_or_paths]  # noqa: PTH100
    report = ScanReport()
    with engine.begin() as conn:
        known = _known(conn)
    seen: set[str] = set()
    pending: list[tuple[str, os.stat_result]] = []
    for path in globs.expand(roots):
        try:
            st = os.stat(path)  # noqa: PTH116
        except OSError as exc:
            if strict:
                raise LifecycleError(f"cannot read image: {exc.strerror}", path=path) from exc
            continue
        seen.add(path)
        report.scanned += 1
        row = known.get(path)
        if (row is not None and not full and row[4] != ImageStatus.REMOVED
                and (row[1], row[2], row[3]) == (st.st_size, st.st_mtime_ns, st.st_ino)):
            report.unchanged += 1
            continue
        pending.append((path, st))
    resolve: Resolver = lambda _path: None  # noqa: E731
    if policies is not None and pending:
        with engine.connect() as conn:
            resolve = expected_signers(conn, policies)
    for start in range(0, len(pending), BATCH):
        _record_batch(engine, pending[start:start + BATCH], known, now, report, strict, resolve, jobs)
    gone = [(p, row[0]) for p, row in known.items()
            if row[4] != ImageStatus.REMOVED and p not in seen and any(globs.covers(r, p) for r in roots)
            and not os.path.exists(p)]  # noqa: PTH110
    if gone:
        with engine.begin() as conn:
            for path, image_id in gone:
                conn.execute(update(IMAGES).where(IMAGES.c.id == image_id).values(status=ImageStatus.REMOVED))
                event(conn, image_id, now, ImageEvent.REMOVED)
                report.removed.append(path)
    return report


def _inspected(path: str) -> ImageInfo | LifecycleError:
    try:
        return inspect_image(path)
    except LifecycleError as exc:
        return exc


def _record_batch(engine: Engine, batch: Sequence[tuple[str, os.stat_result]],
                  known: dict[str, tuple[int, int, int, int, str]], now: datetime,
                  report: ScanReport, strict: bool, resolve: Resolver, jobs: int | None) -> None:
    """Read the batch's images on the pool (no database work there), then record them in order."""
    inspected = ordered_map(_inspected, [path for path, _ in batch], jobs)
    with engine.begin() as conn:
        for (path, st), info in zip(batch, inspected, strict=True):
            if isinstance(info, LifecycleError):
                if strict:
                    raise info
                report.errors.append(str(info))
                continue
            row = known.get(path)
            status = record_image(conn, info, st, now,
                                  None if row is None else (row[0], row[4]),
                                  clear_tampered=strict, expected=resolve(path),
                                  registering=strict)
            (report.new if row is None else report.changed).append(path)
            if status == ImageStatus.TAMPERED:
                report.tampered.append(path)
