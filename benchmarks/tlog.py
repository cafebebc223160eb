"""Transparency log benchmark: batched appends to SQLite, then proof generation at full size.

    PYTHONPATH=. python benchmarks/tlog.py --entries 1000000

Goals (issue 5): >= 2,000 entries/s batched on SQLite; inclusion and consistency proof generation
p99 < 5 ms at 1M entries; an inclusion proof is at most ceil(log2 n) x 32 bytes. Entries carry a
600-byte certificate and a 72-byte signature, like an ephemeral ECDSA signing. Exits 1 when a
goal is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lifecycle.store.migrate import open_migrated
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import Log, NoteSigner, Submission


def submissions(start: int, count: int) -> list[Submission]:
    return [
        Submission(
            payload_digest=os.urandom(32),
            signature=os.urandom(72),
            certificate=os.urandom(600),
            image_id=f"00000000-0000-4000-8000-{i:012d}",
        )
        for i in range(start, start + count)
    ]


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered), p99, ordered[-1]


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        engine = open_migrated(f"sqlite:///{db}")
        signer = NoteSigner.generate("bench.example/log")
        log = Log(SqlLogStorage(engine), signer.name, signer)

        append_seconds = 0.0
        while log.size < args.entries:
            batch = submissions(log.size, min(args.batch, args.entries - log.size))
            t = time.perf_counter()
            log.append_many(batch)
            append_seconds += time.perf_counter() - t
        n = log.size
        rate = n / append_seconds
        print(f"append: {n} entries in {append_seconds:.1f} s = {rate:,.0f} entries/s "
              f"(batches of {args.batch}, SQLite WAL, synchronous=FULL)")
        print(f"database: {db.stat().st_size / 2**20:,.0f} MiB")

        rng = random.Random(1)
        root = log.root()
        inc_sizes: list[int] = []
        con_sizes: list[int] = []

        def inclusion() -> None:
            i = rng.randrange(n)
            proof = log.inclusion_proof(i, n)
            inc_sizes.append(32 * len(proof.hashes))

        def consistency() -> None:
            proof = log.consistency_proof(rng.randrange(1, n), n)
            con_sizes.append(32 * len(proof.hashes))

        timed(inclusion, 50)  # warm the statement cache and the pages of the hash index
        timed(consistency, 50)
        inc = percentiles(timed(inclusion, args.samples))
        con = percentiles(timed(consistency, args.samples))
        cp = percentiles(timed(lambda: log.signed_checkpoint(), 200))
        print(f"inclusion proof at n={n}: p50 {inc[0]:.2f} ms, p99 {inc[1]:.2f} ms, "
              f"max {inc[2]:.2f} ms ({args.samples} random leaves)")
        print(f"consistency proof to n={n}: p50 {con[0]:.2f} ms, p99 {con[1]:.2f} ms, "
              f"max {con[2]:.2f} ms ({args.samples} random old sizes)")
        print(f"signed checkpoint: p50 {cp[0]:.2f} ms, p99 {cp[1]:.2f} ms")

        bound = math.ceil(math.log2(n)) * 32
        print(f"inclusion proof size: max {max(inc_sizes)} bytes, "
              f"ceil(log2 {n}) x 32 = {bound} bytes")
        print(f"consistency proof size: max {max(con_sizes)} bytes")

        # Spot check that what was measured is right.
        i = n // 3
        log.inclusion_proof(i).verify(log.get(i).leaf_hash, root)
        log.consistency_proof(n // 2).verify(log.root(n // 2), root)

        failed = []
        if rate < 2000:
            failed.append("append rate < 2,000 entries/s")
        if inc[1] >= 5 or con[1] >= 5:
            failed.append("proof p99 >= 5 ms")
        if max(inc_sizes) > bound:
            failed.append("inclusion proof larger than ceil(log2 n) x 32 bytes")
        print("goals: " + ("all met" if not failed else "MISSED: " + "; ".join(failed)))
        engine.dispose()
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
