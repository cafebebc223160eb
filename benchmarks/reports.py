"""Report benchmark: build_report and each rendering over the synthetic fleet of benchmarks/fleet.py.

    PYTHONPATH=. python benchmarks/reports.py                   # 100,000 images, 10,000 certificates
    PYTHONPATH=. python benchmarks/reports.py --images 20000 --certificates 2000

Goal: a scheduled report (gather + all three formats) over 100,000 images and 10,000
certificates in under 60 s on SQLite, so the service can write it every few minutes at most
and hourly at ease. Exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fleet import NOW, populate
from lifecycle.config import Config
from lifecycle.reports import build_report, render
from lifecycle.store.ca_service import CaSettings
from lifecycle.store.migrate import open_migrated

GOAL = 60.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--certificates", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'report.db'}"
        engine = open_migrated(url)
        policies = populate(engine, args.images, args.certificates)
        config = Config(url, Path(tmp) / "keys", CaSettings(), policies=policies)
        start = time.perf_counter()
        data = build_report(engine, config, NOW)
        gathered = time.perf_counter() - start
        times, sizes = {}, {}
        for fmt in ("json", "md", "html"):
            begin = time.perf_counter()
            sizes[fmt] = len(render(data, fmt))
            times[fmt] = time.perf_counter() - begin
    total = gathered + sum(times.values())
    ok = total < GOAL
    print(f"report over {args.images:,} images, {args.certificates:,} certificates, "
          f"{len(data.actions):,} actions: gather {gathered:.2f} s, "
          + ", ".join(f"{fmt} {times[fmt]:.2f} s ({sizes[fmt] / 1e6:.1f} MB)" for fmt in times)
          + f"; total {total:.2f} s ({total / GOAL:.2f} of the {GOAL:.0f} s goal) "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
