"""Ephemeral signing and offline long-term verification: latency per image, HTTP append rate.

    PYTHONPATH=. python benchmarks/ephemeral.py --images 50

Goals (set here, the issue names none): an ephemeral signing of a small image (key, certificate,
signature, durable log append, envelope write) p50 < 100 ms on the local SQLite log and < 150 ms
through the HTTP log; an offline long-term verification (evidence, chain at the logged time with
CRLs, identity) p50 < 50 ms. The image data part is measured by benchmarks/verify_throughput.py.
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.pki import keys
from lifecycle.service.http import start_http
from lifecycle.service.tlog_http import LogEndpoints
from lifecycle.sif import create_image, json_spec, partition_spec
from lifecycle.store import migrate
from lifecycle.store.ca_service import EPHEMERAL, ROOT, CaService
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import Log, NoteSigner, NoteVerifier
from lifecycle.tlog.client import HttpLogClient, LocalLogClient, LogClient
from lifecycle.verification.longterm import IdentityPolicy, LongTermTrust, verify_longterm

IDENTITY = "builder@example.org"


def timed(images: list[Path], action: object) -> list[float]:
    out = []
    for image in images:
        start = time.perf_counter()
        action(image)  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, samples: list[float], goal_ms: float) -> bool:
    p50 = statistics.median(samples)
    ok = p50 < goal_ms
    print(f"{name:<42} p50 {p50:7.1f} ms  max {max(samples):7.1f} ms  goal < {goal_ms:.0f} ms "
          f"({goal_ms / p50:5.1f}x)  {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        url = sqlite_url(base / "lifecycle.db")
        migrate.upgrade(url)
        engine = make_engine(url)
        ca = CaService(KeyService(engine, base / "keys"), b"benchmark passphrase")
        ca.init(root_algorithm=keys.KeyAlgorithm.P256,
                intermediate_algorithm=keys.KeyAlgorithm.P256,
                root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
        ca.init_ephemeral()
        signer = NoteSigner.generate("example.org/benchmark")
        log = Log(SqlLogStorage(engine), signer.name, signer)
        vkey = signer.verifier.verifier_key()
        local = LocalLogClient(log, vkey)
        token = "benchmark-append-token-0123456789"
        server = start_http(None, log_endpoints=LogEndpoints(
            log, vkey, token.encode(), lambda: [ca.certificate(EPHEMERAL)]))
        pinned = [NoteVerifier.from_verifier_key(vkey)]

        def images(prefix: str) -> list[Path]:
            out = []
            for i in range(args.images):
                path = base / f"{prefix}-{i}.sif"
                create_image(path, [partition_spec(b"hsqs" + bytes(4096)), json_spec({"i": i})])
                out.append(path)
            return out

        def signing(client: LogClient) -> object:
            return lambda p: sign_ephemeral(str(p), IDENTITY, ca, client, log_keys=pinned)

        try:
            local_images = images("local")
            ok = report("sign --ephemeral, local SQLite log", timed(local_images, signing(local)),
                        100)
            ok &= report("sign --ephemeral, HTTP log on loopback",
                         timed(images("http"), signing(HttpLogClient(server.url, token=token))), 150)
        finally:
            server.stop()
        trust = LongTermTrust((ca.certificate(ROOT),), tuple(pinned), IdentityPolicy((IDENTITY,)),
                              crls=(ca.publish_crl(ROOT),))

        def verifying(path: Path) -> None:
            assert verify_longterm(str(path), trust).ok

        ok &= report("verify long-term evidence, offline", timed(local_images, verifying), 50)
        print(f"log size {log.size} entries")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
