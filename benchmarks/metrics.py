"""What one ``/metrics`` scrape costs on a large store (issue 15: < 50 ms at 100,000 images and
10,000 certificates).

The store is filled in bulk with rows of the real tables: ``--images`` images (spread over
``--sets`` sets and four statuses, two signatures each), ``--keys`` signing keys each with
``--certs-per-key`` leaf certificates (the older ones superseded, some revoked), a CA with CRLs,
``--work`` finished work items plus some failed ones, and the scheduled jobs' rows. Measured, median
of ``--repeat`` scrapes (the collector's full path: queries, families, text exposition):

1. the scrape in milliseconds against the 50 ms goal (ratio printed, goal <= 1.0);
2. the scrape against reading every image row once (``SELECT id, image_set, status FROM images``,
   what a per-image collector would have to do at least), measured in the same run: the ratio
   shows the aggregate queries do not scale with the images.

Run from the repository root: ``PYTHONPATH=. python benchmarks/metrics.py`` (``--pg URL`` for
PostgreSQL instead of a SQLite file). Exit status 0 when the goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from lifecycle.config import CaSettings, Config, ImageSetPolicy, Policies, ServeSettings, Strategy
from lifecycle.inventory.models import ImageRecord, ImageSignatureRecord, SetKeyRecord
from lifecycle.service.metrics import MetricsEndpoint, StoreCollector
from lifecycle.store import migrate
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.models import CertificateRecord, CrlRecord, KeyRecord, RevocationRecord
from lifecycle.store.queries import table
from lifecycle.store.queue import ServiceJobRecord, WorkItemRecord

NOW = datetime(2027, 6, 1, tzinfo=UTC)
GOAL_MS = 50.0
STATUSES = ("present", "present", "present", "removed", "tampered")


def fill(url: str, images: int, sets: int, keys: int, certs_per_key: int, work: int) -> None:
    engine = make_engine(url)
    k, c, r, crl = (table(m) for m in (KeyRecord, CertificateRecord, RevocationRecord, CrlRecord))
    i, sig, sk = (table(m) for m in (ImageRecord, ImageSignatureRecord, SetKeyRecord))
    w, j = table(WorkItemRecord), table(ServiceJobRecord)
    with engine.begin() as conn:
        ca_key = conn.execute(insert(k).values(
            fingerprint="ca" + "0" * 62, kind="pem", algorithm="p256", purpose="ca-intermediate",
            state="active", file="ca.pem", created_at=NOW)).inserted_primary_key[0]
        for n, role in enumerate(("root", "intermediate", "ocsp")):
            conn.execute(insert(c).values(serial=f"ca{n}", role=role, subject=role, key_id=ca_key,
                                          not_before=NOW, not_after=NOW + timedelta(days=3650),
                                          pem="-", created_at=NOW))
        issuers = [row[0] for row in conn.execute(select(c.c.id).where(c.c.role != "leaf"))]
        conn.execute(insert(crl), [{"issuer_id": issuer, "number": n, "this_update": NOW,
                                    "next_update": NOW + timedelta(days=7), "der": b"-"}
                                   for issuer in issuers for n in range(1, 30)])
        conn.execute(insert(k), [{"fingerprint": f"{n:064x}", "dsse_keyid": f"kid{n}", "kind": "pem",
                                  "algorithm": "ed25519", "purpose": "signing",
                                  "state": "active" if n % 4 else "retired", "file": f"{n}.pem",
                                  "created_at": NOW - timedelta(days=n % 300)} for n in range(keys)])
        key_ids = dict(conn.execute(select(k.c.fingerprint, k.c.id).where(k.c.purpose == "signing")).all())
        conn.execute(insert(sk), [{"image_set": f"set{n % sets}", "key_id": key_ids[f"{n:064x}"],
                                   "added_at": NOW} for n in range(keys)])
        rows = []
        for n in range(keys):
            for m in range(certs_per_key):
                start = NOW - timedelta(days=90 * (certs_per_key - m))
                rows.append({"serial": f"{n:08x}{m:04x}", "role": "leaf", "subject": f"key {n}",
                             "key_id": key_ids[f"{n:064x}"], "not_before": start,
                             "not_after": start + timedelta(days=120), "pem": "-", "created_at": start})
        conn.execute(insert(c), rows)
        leaf_ids = [row[0] for row in conn.execute(select(c.c.id).where(c.c.role == "leaf"))]
        conn.execute(insert(r), [{"certificate_id": cid, "issuer_id": issuers[1], "revoked_at": NOW,
                                  "reason": "superseded"} for cid in leaf_ids[::17]])
        for start in range(0, images, 10_000):
            batch = range(start, min(images, start + 10_000))
            ids = conn.execute(insert(i).returning(i.c.id), [
                {"path": f"/srv/images/set{n % sets}/{n}.sif", "size": 1, "mtime_ns": 1, "inode": n,
                 "sif_id": str(uuid.UUID(int=n)), "groups": "1", "status": STATUSES[n % 5],
                 "digests": "{}", "first_seen": NOW, "last_seen": NOW, "image_set": f"set{n % sets}"}
                for n in batch]).scalars().all()
            conn.execute(insert(sig), [{"image_id": image_id, "object_id": 1, "group_id": 1,
                                        "format": "dsse", "signer": f"kid{(n + s) % keys}", "covered": "1"}
                                       for image_id, n in zip(ids, batch, strict=True) for s in (0, 1)])
        conn.execute(insert(w), [{"key": f"resign:/srv/images/{n}.sif:{n:x}", "kind": "resign",
                                  "subject": f"/srv/images/{n}.sif", "action": "{}",
                                  "state": "failed" if n % 997 == 0 else "done",
                                  "due": NOW - timedelta(minutes=n % 500), "available_at": NOW,
                                  "attempts": 1, "result": '{"error": "x"}', "created_at": NOW,
                                  "updated_at": NOW} for n in range(work)])
        conn.execute(insert(j), [{"job_id": job, "last_scheduled": NOW, "last_started": NOW,
                                  "last_instance": "bench", "runs": 1, "last_success": NOW}
                                 for job in ("scan", "full-scan", "plan", "crl", "publish")])
    # a store in service has statistics (and, on PostgreSQL, a visibility map): as autovacuum leaves it
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    engine.dispose()


def median_ms(run: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=10)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--certs-per-key", type=int, default=10)
    parser.add_argument("--work", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--pg", help="a PostgreSQL URL on an empty schema (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or sqlite_url(Path(tmp) / "lifecycle.db")
        migrate.upgrade(url)
        started = time.perf_counter()
        fill(url, args.images, args.sets, args.keys, args.certs_per_key, args.work)
        print(f"filled {url.split(':')[0]} store in {time.perf_counter() - started:.1f}s: "
              f"{args.images} images, {args.keys * args.certs_per_key + 3} certificates, "
              f"{args.keys} keys, {args.work} work items")
        policies = Policies(tuple(ImageSetPolicy(f"set{n}", (f"/srv/images/set{n}/*.sif",),
                                                 Strategy.RESIGN if n % 2 else Strategy.REISSUE)
                                  for n in range(args.sets)))
        config = Config(url, Path(tmp) / "keys", CaSettings(), policies=policies, serve=ServeSettings())
        engine = make_engine(url)
        endpoint = MetricsEndpoint(StoreCollector(engine, config, clock=lambda: NOW))
        body = endpoint()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        images = table(ImageRecord)

        def read_all_images() -> None:
            with engine.connect() as conn:
                conn.execute(select(images.c.id, images.c.image_set, images.c.status)).all()

        read_all_images()
        scrape = median_ms(endpoint, args.repeat)
        per_image = median_ms(read_all_images, max(3, args.repeat // 3))
        engine.dispose()
    print(f"/metrics: {len(body)} bytes, {series} series")
    print(f"scrape: {scrape:.1f} ms median of {args.repeat}; goal {GOAL_MS:.0f} ms: "
          f"ratio {scrape / GOAL_MS:.2f} (goal <= 1.0)")
    print(f"reading every image row once: {per_image:.1f} ms; scrape / that = {scrape / per_image:.2f}")
    return 0 if scrape <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
