"""Bundle export and offline verification for a fleet of 100 keys with 2 certificate generations.

Run from the repository root:  PYTHONPATH=. python benchmarks/bundles.py
Measures export time and size (tar.gz and directory), ``bundle verify`` time, and the key
preparation of ``verify --bundle`` for one image (validating only its signer's certificates)
against validating every certificate in the bundle.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from lifecycle.bundles import export, open_bundle
from lifecycle.bundles.offline import key_set
from lifecycle.model.key_state import KeyState
from lifecycle.pki import ca, keys
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService

T = TypeVar("T")
KEYS = 100
GOAL_EXPORT_S, GOAL_VERIFY_S, GOAL_IMAGE_KEYS_S = 10.0, 1.0, 0.5
URLS = ca.CaUrls(crl_url="http://127.0.0.1:9/crl/intermediate.crl",
                 root_crl_url="http://127.0.0.1:9/crl/root.crl", ocsp_url="http://127.0.0.1:9/ocsp",
                 ca_issuers_url="http://127.0.0.1:9/ca/intermediate.crt")


def _fleet(root: Path) -> tuple[CaService, str]:
    url = sqlite_url(root / "db.sqlite")
    migrate.upgrade(url)
    service = CaService(KeyService(make_engine(url), root / "keys"), b"bench", CaSettings(urls=URLS))
    service.init(root_algorithm=keys.KeyAlgorithm.P384, intermediate_algorithm=keys.KeyAlgorithm.P256,
                 root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    keyid = ""
    for _ in range(KEYS):
        row = service.keys.generate(keys.KeyAlgorithm.P256, b"bench")
        service.keys.transition(row.fingerprint, KeyState.ACTIVE, "bench")
        first = service.issue(row.fingerprint, "Signer", timedelta(days=30))
        service.reissue(first.record.serial, timedelta(days=60))
        keyid = row.dsse_keyid
    return service, keyid


def _timed(label: str, func: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    print(f"{label:<46} {elapsed:8.3f} s")
    return result, elapsed


def _verdict(name: str, value: float, goal: float) -> bool:
    ok = value <= goal
    print(f"{name:<46} {value:8.3f} s  goal <= {goal} s  ratio {value / goal:5.2f}  "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        service, keyid = _fleet(root)
        export(service, root / "warm")  # makes the bundle key
        report, t_export = _timed(f"export tar.gz ({KEYS} keys, {2 * KEYS} leaves)",
                                  lambda: export(service, root / "b.tar.gz"))
        _, t_dir = _timed("export directory", lambda: export(service, root / "b"))
        print(f"{'bundle size':<46} {report.total / 1024:8.1f} KiB, "
              f"{report.bytes_on_disk / 1024:.1f} KiB as tar.gz")
        for kind, size in sorted(report.sizes.items()):
            print(f"  {kind:<44} {size / 1024:8.1f} KiB")
        opened, t_verify = _timed("bundle verify (signature, digests, TOFU)",
                                  lambda: open_bundle(root / "b.tar.gz", trust_store=root / "t"))
        _, t_one = _timed("verify --bundle keys, one signer's certificates",
                          lambda: key_set(opened, None, {keyid}))
        _, t_all = _timed("keys with every certificate validated",
                          lambda: key_set(opened, None))
        print(f"{'speed-up of the signer filter':<46} {t_all / t_one:8.1f} x")
        results = [_verdict("export tar.gz", t_export, GOAL_EXPORT_S),
                   _verdict("export directory", t_dir, GOAL_EXPORT_S),
                   _verdict("bundle verify", t_verify, GOAL_VERIFY_S),
                   _verdict("verify --bundle key preparation", t_one, GOAL_IMAGE_KEYS_S)]
        print("PASS" if all(results) else "FAIL")


if __name__ == "__main__":
    main()
