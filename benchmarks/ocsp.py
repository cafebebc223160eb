"""OCSP responder throughput/latency on loopback and CRL generation time for 100,000 entries.

Run from the repository root:  PYTHONPATH=. python benchmarks/ocsp.py
The responder runs in a child process (``sif-lifecycle serve``) so clients and server do not share
a GIL; 8 client threads keep one HTTP/1.1 connection each and POST RFC 6960 requests.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from lifecycle.pki import ca, crl, keys
from lifecycle.store import migrate
from lifecycle.store.ca_service import INTERMEDIATE, CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService

CLIENTS = 8
SECONDS = 5.0
CERTS = 20
GOAL_RPS, GOAL_P99_MS, GOAL_CRL_S = 1000.0, 20.0, 5.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(root: Path) -> tuple[list[bytes], int, subprocess.Popen[bytes]]:
    url = sqlite_url(root / "db.sqlite")
    migrate.upgrade(url)
    service = CaService(KeyService(make_engine(url), root / "keys"), b"bench", CaSettings())
    service.init(root_algorithm=keys.KeyAlgorithm.P384,
                 intermediate_algorithm=keys.KeyAlgorithm.P256,
                 root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    inter = service.certificate(INTERMEDIATE)
    requests = []
    for i in range(CERTS):
        row = service.keys.generate(keys.KeyAlgorithm.ED25519, b"bench")
        leaf = service.issue(row.fingerprint, f"bench {i}", timedelta(days=30)).certificate
        if i % 4 == 0:
            service.revoke(f"{leaf.serial_number:x}", x509.ReasonFlags.superseded)
        req = ocsp.OCSPRequestBuilder().add_certificate(leaf, inter, hashes.SHA1()).build()
        requests.append(req.public_bytes(serialization.Encoding.DER))
    (root / "c.toml").write_text('[database]\npath = "db.sqlite"\n')
    port = _free_port()
    env = {**os.environ, "SIF_LIFECYCLE_PASSPHRASE": "bench",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    server = subprocess.Popen(
        [sys.executable, "-m", "lifecycle.cli.main", "serve", "--config", str(root / "c.toml"),
         "--listen", f"127.0.0.1:{port}"], env=env, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            break
        except OSError:
            time.sleep(0.1)
    return requests, port, server


def _client(port: int, requests: list[bytes], stop: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    while time.perf_counter() < stop:
        body = requests[i % len(requests)]
        start = time.perf_counter()
        conn.request("POST", "/ocsp", body, {"Content-Type": "application/ocsp-request"})
        answer = conn.getresponse().read()
        out.append(time.perf_counter() - start)
        assert answer and ocsp.load_der_ocsp_response(answer).response_status.value == 0
        i += 1
    conn.close()


def bench_ocsp() -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        requests, port, server = _setup(Path(tmp))
        try:
            # warm the pre-signed cache once per certificate
            _client(port, requests, time.perf_counter() + 0.5, [])
            latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
            stop = time.perf_counter() + SECONDS
            threads = [threading.Thread(target=_client, args=(port, requests, stop, latencies[i]))
                       for i in range(CLIENTS)]
            begin = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - begin
        finally:
            server.terminate()
            server.wait(timeout=10)
    every = sorted(x for lat in latencies for x in lat)
    p99 = every[int(len(every) * 0.99) - 1] * 1000
    return len(every) / elapsed, p99, len(every)


def bench_crl(count: int = 100_000) -> float:
    now = datetime.now(UTC)
    key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    issuer = ca.build_root(key, ca.name("bench"), not_before=now, lifetime=timedelta(days=30))
    entries = [crl.RevokedEntry(x509.random_serial_number(), now, x509.ReasonFlags.key_compromise,
                                now - timedelta(days=1)) for _ in range(count)]
    start = time.perf_counter()
    made = crl.build_crl(issuer, key, entries, number=1, this_update=now,
                         next_update=now + timedelta(days=7))
    der = made.public_bytes(serialization.Encoding.DER)
    elapsed = time.perf_counter() - start
    assert len(made) == count and der
    return elapsed


def main() -> None:
    rps, p99, total = bench_ocsp()
    crl_s = bench_crl()
    print(f"OCSP: {total} responses in {SECONDS:.0f} s with {CLIENTS} clients: {rps:,.0f}/s "
          f"(goal {GOAL_RPS:,.0f}/s, ratio {rps / GOAL_RPS:.2f}); p99 {p99:.2f} ms "
          f"(goal < {GOAL_P99_MS:.0f} ms, ratio {p99 / GOAL_P99_MS:.2f})")
    print(f"CRL: 100,000 revoked certificates in {crl_s:.2f} s "
          f"(goal < {GOAL_CRL_S:.0f} s, ratio {crl_s / GOAL_CRL_S:.2f})")


if __name__ == "__main__":
    main()
