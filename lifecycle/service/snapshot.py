"""One consistent read of everything operations watch: what /metrics, /healthz and notifications share.

A snapshot is a handful of aggregate queries on one connection plus two small file reads (the
newest bundle's manifest, cached by name and modification time, and each publish directory's
manifest); its size depends on the number of keys, CA certificates, sets and jobs, never on
the number of images or of certificates ever issued.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from lifecycle.bundles.exporter import newest_bundle
from lifecycle.config import Config
from lifecycle.inventory.fleet import MANIFEST
from lifecycle.inventory.stats import (
    CurrentCertificate,
    ImageCount,
    SigningKey,
    current_certificates,
    image_counts,
    sets_of_keys,
    signing_keys,
    tampered_paths,
)
from lifecycle.model.status import ImageStatus
from lifecycle.store.queries import (
    CrlRow,
    FailedItem,
    JobRun,
    WorkCount,
    failed_items,
    job_runs,
    latest_crls,
    oldest_due,
    tlog_stats,
    work_counts,
)

FAILED_SHOWN = 20
"""How many failed actions a snapshot names (health reasons, notifications); all are counted."""
TAMPERED_SHOWN = 5
"""How many tampered images of a set a snapshot names; all are counted."""


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    certificates: list[CurrentCertificate]
    keys: list[SigningKey]
    crls: list[CrlRow]
    images: list[ImageCount]
    work: list[WorkCount]
    oldest_due: datetime | None
    failed: list[FailedItem]
    jobs: list[JobRun]
    tlog_entries: int
    tlog_newest: datetime | None
    bundle_valid_until: datetime | None
    published: dict[str, datetime]
    """Image set -> when its publish directory was last written."""
    tampered: dict[str, list[str]]
    """Image set -> the first :data:`TAMPERED_SHOWN` tampered images (sets that have some)."""


class BundleCache:
    """The newest outbox bundle's ``valid_until``, re-read only when the newest file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple[str, int] | None = None
        self._value: datetime | None = None

    def valid_until(self, outbox: Path | None) -> datetime | None:
        if outbox is None or not outbox.is_dir():
            return None
        names = sorted(outbox.glob("bundle-*.tar.gz"), reverse=True)
        if not names:
            return None
        try:
            seen = (names[0].name, names[0].stat().st_mtime_ns)
        except OSError:
            return None
        with self._lock:
            if seen != self._seen:
                found = newest_bundle(outbox)
                self._seen, self._value = seen, found[1].valid_until if found else None
            return self._value


def _published_at(directory: Path) -> datetime | None:
    try:
        doc = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        return datetime.fromisoformat(doc["published_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def take(engine: Engine, config: Config, now: datetime, bundles: BundleCache) -> Snapshot:
    with engine.connect() as conn:
        sets = sets_of_keys(conn)
        certificates = current_certificates(conn, sets)
        keys = signing_keys(conn, sets)
        crls = latest_crls(conn)
        images = image_counts(conn)
        work = work_counts(conn)
        due = oldest_due(conn, now)
        failed = failed_items(conn, FAILED_SHOWN)
        jobs = job_runs(conn)
        entries, newest = tlog_stats(conn)
        tampered = {c.image_set: tampered_paths(conn, c.image_set, TAMPERED_SHOWN)
                    for c in images if c.status == ImageStatus.TAMPERED and c.total}
    published = {name: at for name, directory in config.policies.publish_directories().items()
                 if directory is not None and (at := _published_at(directory)) is not None}
    return Snapshot(now, certificates, keys, crls, images, work, due, failed, jobs, entries,
                    newest, bundles.valid_until(config.serve.bundle_outbox), published, tampered)
