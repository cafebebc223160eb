"""Fleet benchmark: planning over a large synthetic fleet, and an unchanged-fleet scan.

    PYTHONPATH=. python benchmarks/fleet.py                 # SQLite and PostgreSQL
    PYTHONPATH=. python benchmarks/fleet.py --no-postgres --images 100000 --scan 10000

Goals (issue 4): load_state + plan over 100,000 images and 10,000 certificates < 2 s on SQLite
and on PostgreSQL; an unchanged-fleet scan of 10,000 images < 5 s. Rows are inserted in bulk:
20 image sets (half resign, half reissue) of 5,000 images each; 1,000 signing keys with 10
certificates each (9 superseded, 1 current); every resign set rotated 10 days ago, so every one
of its images is due for re-signing (the largest plan: 50,000 actions). The scan fleet is tiny
signed SIF files. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from lifecycle.config import ImageSetPolicy, Policies
from lifecycle.integrity.keys import load_signing_key, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.inventory.fleet import load_state
from lifecycle.inventory.models import ImageRecord, ImageSignatureRecord, SetKeyRecord
from lifecycle.inventory.scan import scan
from lifecycle.pki import keys as pki_keys
from lifecycle.sif import create_image, json_spec, partition_spec
from lifecycle.store.db import make_engine
from lifecycle.store.migrate import open_migrated
from lifecycle.store.models import CertificateRecord, KeyRecord, KeyTransitionRecord
from lifecycle.strategies.plan import plan

PG_URL = os.environ.get("SIF_LIFECYCLE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2028, 6, 1, tzinfo=UTC)
SETS = 20


def table(model: type) -> Any:
    return model.__table__  # type: ignore[attr-defined]


def chunks(rows: list[dict[str, Any]], size: int = 20000) -> list[list[dict[str, Any]]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def populate(engine: Engine, images: int, certificates: int) -> Policies:
    """Bulk-insert the synthetic fleet; returns its policies."""
    per_key = 10
    n_keys = certificates // per_key
    sets = [ImageSetPolicy(f"set{s:02d}", (f"/fleet/set{s:02d}/*.sif",),
                           "resign" if s % 2 == 0 else "reissue") for s in range(SETS)]
    keys, transitions, links, certs = [], [], [], []
    keyids = {}
    for k in range(1, n_keys + 1):
        s = k % SETS
        # The newest two keys of each set are active and retiring; the rest retired long ago.
        rank = (n_keys - k) // SETS
        state = "active" if rank == 0 else "retiring" if rank == 1 else "retired"
        created = NOW - timedelta(days=10 + 365 * rank)
        fpr = f"{k:064x}"
        keyids[k] = f"SHA256:key{k}"
        keys.append({"id": k, "fingerprint": fpr, "dsse_keyid": keyids[k], "kind": "pem",
                     "algorithm": "p256", "purpose": "signing", "state": state,
                     "file": f"{fpr}.key.pem", "created_at": created})
        transitions += [{"key_id": k, "from_state": None, "to_state": "pending", "at": created,
                         "reason": "bench"},
                        {"key_id": k, "from_state": "pending", "to_state": "active",
                         "at": created, "reason": "bench"}]
        if state != "active":
            transitions.append({"key_id": k, "from_state": "active", "to_state": "retiring",
                                "at": NOW - timedelta(days=10), "reason": "bench"})
        links.append({"image_set": f"set{s:02d}", "key_id": k, "added_at": created})
        for c in range(per_key):
            cid = (k - 1) * per_key + c + 1
            start = created + timedelta(days=60 * c)
            certs.append({"id": cid, "serial": f"{cid:040x}", "role": "leaf", "subject": "CN=b",
                          "key_id": k, "reissue_of_id": cid - 1 if c else None,
                          "not_before": start, "not_after": start + timedelta(days=90),
                          "pem": "-", "created_at": start})
    rows, sigs = [], []
    newest = {k % SETS: k for k in range(1, n_keys + 1)}
    for i in range(1, images + 1):
        s = i % SETS
        rows.append({"id": i, "path": f"/fleet/set{s:02d}/image-{i:06d}.sif", "size": 8192,
                     "mtime_ns": 0, "inode": i, "sif_id": str(uuid.UUID(int=i)), "groups": "1",
                     "status": "present", "digests": "{}", "first_seen": NOW, "last_seen": NOW})
        sigs.append({"image_id": i, "object_id": 3, "group_id": 1, "format": "dsse",
                     "signer": keyids[newest[s] - SETS], "covered": "1,2"})
    with engine.begin() as conn:
        for model, data in ((KeyRecord, keys), (KeyTransitionRecord, transitions),
                            (SetKeyRecord, links), (CertificateRecord, certs),
                            (ImageRecord, rows), (ImageSignatureRecord, sigs)):
            for part in chunks(data):
                conn.execute(insert(table(model)), part)
    return Policies(tuple(sets))


def best(fn: Callable[[], object], runs: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def bench_plan(name: str, engine: Engine, images: int, certificates: int) -> bool:
    t = time.perf_counter()
    policies = populate(engine, images, certificates)
    print(f"{name}: inserted {images:,} images and {certificates:,} certificates in "
          f"{time.perf_counter() - t:.1f} s")
    load, state = best(lambda: load_state(engine, NOW))
    run, actions = best(lambda: plan(state, policies, NOW))  # type: ignore[arg-type]
    total = load + run
    kinds: dict[str, int] = {}
    for action in actions:  # type: ignore[attr-defined]
        kinds[action.kind] = kinds.get(action.kind, 0) + 1
    ok = total < 2.0
    print(f"{name}: load_state {load:.2f} s + plan {run:.2f} s = {total:.2f} s "
          f"({total / 2.0:.2f} of the 2 s goal) {'PASS' if ok else 'FAIL'}; "
          f"{len(actions):,} actions {dict(sorted(kinds.items()))}")  # type: ignore[arg-type]
    return ok


def bench_scan(root: Path, count: int) -> bool:
    images = root / "images"
    images.mkdir()
    key = pki_keys.generate_private_key(pki_keys.KeyAlgorithm.ED25519)
    pem = root / "key.pem"
    pem.write_bytes(key.private_bytes(*_plain()))
    template = create_image(root / "template.sif",
                            [partition_spec(b"hsqs" + bytes(256)), json_spec({"b": 1})])
    sign_image(str(template), DsseSigner((load_signing_key(pem, no_passphrase),)), SignOptions())
    for i in range(count):
        sub = images / f"d{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        shutil.copyfile(template, sub / f"image-{i:05d}.sif")
    engine = open_migrated(f"sqlite:///{root / 'scan.db'}")
    t = time.perf_counter()
    first = scan(engine, [str(images)], NOW)
    initial = time.perf_counter() - t
    assert len(first.new) == count, first.errors[:3]
    elapsed, report = best(lambda: scan(engine, [str(images)], NOW + timedelta(hours=1)))
    assert report.unchanged == count  # type: ignore[attr-defined]
    ok = elapsed < 5.0
    print(f"scan: first sight of {count:,} images {initial:.1f} s "
          f"({count / initial:,.0f} images/s); unchanged re-scan {elapsed:.2f} s "
          f"({elapsed / 5.0:.2f} of the 5 s goal) {'PASS' if ok else 'FAIL'}")
    return ok


def _plain() -> tuple[Any, Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--certificates", type=int, default=10_000)
    parser.add_argument("--scan", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sqlite = open_migrated(f"sqlite:///{root / 'plan.db'}")
        results.append(bench_plan("SQLite", sqlite, args.images, args.certificates))
        if not args.no_postgres:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = make_engine(PG_URL)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            try:
                pg = open_migrated(f"{PG_URL}?options=-csearch_path%3D{schema}")
                results.append(bench_plan("PostgreSQL", pg, args.images, args.certificates))
                pg.dispose()
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                admin.dispose()
        results.append(bench_scan(root, args.scan))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
