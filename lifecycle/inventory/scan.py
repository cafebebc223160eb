"""Register SIF images and keep the inventory current, cheaply when nothing changed.

An unchanged file (same size, mtime_ns and inode) is not opened; ``full=True`` re-reads every
image. A changed image whose signed metadata no longer matches its content becomes ``tampered``
(an event row says why) and is never re-signed automatically. A file that disappeared is marked
``removed``, not forgotten: its history stays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from lifecycle.errors import LifecycleError
from lifecycle.inventory import globs
from lifecycle.inventory.inspect import ImageInfo, inspect_image
from lifecycle.inventory.models import (
    ImageEventRecord,
    ImageRecord,
    ImageSignatureRecord,
)
from lifecycle.inventory.status import ImageEvent, ImageStatus

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


def record_image(conn: Connection, info: ImageInfo, st: os.stat_result, now: datetime,
                 existing: tuple[int, str] | None, *, clear_tampered: bool = True) -> ImageStatus:
    """Insert or refresh one image's rows; returns its new status. Digests stay as first seen.

    A ``tampered`` image stays tampered unless ``clear_tampered`` (an explicit ``track``): it may
    have been refused for signatures that are intact but not trusted, and a periodic scan must
    not make the service try, and refuse, again and again.
    """
    status = ImageStatus.PRESENT if info.intact else ImageStatus.TAMPERED
    if existing is not None and existing[1] == ImageStatus.TAMPERED and not clear_tampered:
        status = ImageStatus.TAMPERED
    values = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino,
              "sif_id": info.sif_id, "groups": ",".join(map(str, info.groups)), "status": status,
              "last_seen": now, "last_verified": now}
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
        elif status == ImageStatus.PRESENT:
            event(conn, image_id, now, ImageEvent.CHANGED, signatures=len(info.signatures))
    rows = _signature_rows(image_id, info)
    if rows:
        conn.execute(insert(SIGNATURES), rows)
    if status == ImageStatus.TAMPERED and previous != ImageStatus.TAMPERED:
        event(conn, image_id, now, ImageEvent.TAMPERED, reason=info.problems)
    return status


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
         *, strict: bool = False) -> ScanReport:
    """Bring the inventory of the images under ``roots_or_paths`` up to date.

    ``strict`` (used by ``track``) raises on the first file that is not a readable SIF image,
    instead of listing it in the report, and lets an intact image leave the ``tampered`` state.
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
    for start in range(0, len(pending), BATCH):
        _record_batch(engine, pending[start:start + BATCH], known, now, report, strict)
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


def _record_batch(engine: Engine, batch: Iterable[tuple[str, os.stat_result]],
                  known: dict[str, tuple[int, int, int, int, str]], now: datetime,
                  report: ScanReport, strict: bool) -> None:
    with engine.begin() as conn:
        for path, st in batch:
            try:
                info = inspect_image(path)
            except LifecycleError as exc:
                if strict:
                    raise
                report.errors.append(str(exc))
                continue
            row = known.get(path)
            status = record_image(conn, info, st, now,
                                  None if row is None else (row[0], row[4]),
                                  clear_tampered=strict)
            (report.new if row is None else report.changed).append(path)
            if status == ImageStatus.TAMPERED:
                report.tampered.append(path)
