"""Hostile bundle archives: ``bundle verify`` fails fast, in bounded memory, with one line.

Run from the repository root:  PYTHONPATH=. python benchmarks/hostile_archives.py
For each archive of tests/bundles/hostile.py (a 1.5 GiB GNU long-name header in a 1.6 MB
tar.gz, a 1.5 MiB pax header, 2 million directory entries, a 1.5 GiB deflate bomb), measures
the time ``read_bundle`` takes to refuse it in this process, and the wall time and peak RSS of
the whole ``sif-lifecycle bundle verify`` command in a fresh interpreter (a launcher reports
its child's RUSAGE_CHILDREN, as benchmarks/verify_throughput.py does). Each figure is printed
as a ratio to its limit (2 s, 200 MiB); exit 0 when all are within.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lifecycle.bundles.archive import read_bundle
from lifecycle.errors import BundleError
from tests.bundles.hostile import ARCHIVES

LIMIT_S, LIMIT_RSS = 2.0, 200 << 20
LAUNCHER = (
    "import resource, subprocess, sys, time; t = time.monotonic(); "
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(done.returncode, time.monotonic() - t, "
    "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, repr(done.stderr.strip()))"
)


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for name, make in ARCHIVES.items():
            path = make(root / f"{name}.tar.gz")
            began = time.monotonic()
            try:
                read_bundle(path)
                refused = False
            except BundleError:
                refused = True
            spent = time.monotonic() - began
            done = subprocess.run(
                [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "lifecycle.cli.main",
                 "bundle", "verify", "--trust-store", str(root / "trust"), str(path)],
                capture_output=True, text=True, check=True, env=env)
            code, wall, rss_kib, message = done.stdout.strip().split(" ", 3)
            rss = int(rss_kib) * 1024
            good = refused and code == "2" and float(wall) < LIMIT_S and rss < LIMIT_RSS
            ok &= good
            print(f"{name:<24} {path.stat().st_size / 1e6:5.2f} MB  read_bundle "
                  f"{spent:.3f} s ({spent / LIMIT_S:.3f} of {LIMIT_S:g} s)  CLI {float(wall):.2f} s "
                  f"({float(wall) / LIMIT_S:.2f})  RSS {rss / 2**20:.0f} MiB "
                  f"({rss / LIMIT_RSS:.2f} of 200 MiB)  exit {code}  {'PASS' if good else 'FAIL'}")
            print(f"    {message}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
