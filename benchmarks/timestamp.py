"""RFC 3161: what timestamping adds to signing, and how many requests the local TSA answers.

Run from the repository root:  PYTHONPATH=. python benchmarks/timestamp.py
The local TSA runs in a child process (``sif-lifecycle serve`` with a ``[timestamp]`` table) on
loopback so clients and server do not share a GIL. Signing: the same small image is signed
(DSSE, P-256) ``ROUNDS`` times without and with ``--timestamp-url``, alternately; the p50 of the
difference is what a token costs a signature. Throughput: 8 client threads keep one HTTP/1.1
connection each and POST TimeStampReq for 5 s; every answer is parsed and must be granted.
"""

from __future__ import annotations

import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

from benchmarks.ocsp import _free_port
from lifecycle.pki import keys
from lifecycle.sif import create_image, json_spec, partition_spec
from lifecycle.sign import sign, signer_for
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from lifecycle.timestamp.client import Timestamper
from tests.keygen import write_pem_pair

CLIENTS = 8
SECONDS = 5.0
ROUNDS = 60
GOAL_ADDED_MS, GOAL_RPS = 5.0, 500.0


def _serve(root: Path) -> tuple[int, subprocess.Popen[bytes]]:
    """A store with a CA, and ``sif-lifecycle serve`` with the local TSA switched on."""
    url = sqlite_url(root / "db.sqlite")
    migrate.upgrade(url)
    service = CaService(KeyService(make_engine(url), root / "keys"), b"bench", CaSettings())
    service.init(root_algorithm=keys.KeyAlgorithm.P256,
                 intermediate_algorithm=keys.KeyAlgorithm.P256,
                 root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    (root / "c.toml").write_text('[database]\npath = "db.sqlite"\n[timestamp]\naccuracy = "1s"\n')
    port = _free_port()
    env = {**os.environ, "SIF_LIFECYCLE_PASSPHRASE": "bench",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    server = subprocess.Popen(
        [sys.executable, "-m", "lifecycle.cli.main", "serve", "--config", str(root / "c.toml"),
         "--listen", f"127.0.0.1:{port}"], env=env, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            break
        except OSError:
            time.sleep(0.1)
    return port, server


def bench_signing(root: Path, port: int) -> tuple[float, float, float]:
    private, _ = write_pem_pair(root, "bench", "ecdsa")
    base = create_image(root / "base.sif", [partition_spec(b"hsqs" + bytes(4096)),
                                            json_spec({"k": "v"})])
    plain = signer_for([private])
    stamped = signer_for([private], timestamper=Timestamper.for_urls(
        [f"http://127.0.0.1:{port}/tsa"]))
    without, with_token = [], []
    for i in range(ROUNDS):
        for signer, out in ((plain, without), (stamped, with_token)):
            image = root / f"i{i}-{len(out)}-{id(out)}.sif"
            shutil.copyfile(base, image)
            start = time.perf_counter()
            sign(image, signer=signer)
            out.append(time.perf_counter() - start)
            image.unlink()
    p50_without = statistics.median(without) * 1000
    p50_with = statistics.median(with_token) * 1000
    return p50_without, p50_with, p50_with - p50_without


def _client(port: int, stop: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    while time.perf_counter() < stop:
        request = TimestampRequestBuilder().data(b"sig %d" % i).hash_algorithm(
            HashAlgorithm.SHA256).build().as_bytes()
        start = time.perf_counter()
        conn.request("POST", "/tsa", request, {"Content-Type": "application/timestamp-query"})
        answer = conn.getresponse().read()
        out.append(time.perf_counter() - start)
        assert decode_timestamp_response(answer).status == PKIStatus.GRANTED
        i += 1
    conn.close()


def bench_throughput(port: int) -> tuple[float, float, int]:
    _client(port, time.perf_counter() + 0.5, [])
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    stop = time.perf_counter() + SECONDS
    threads = [threading.Thread(target=_client, args=(port, stop, latencies[i]))
               for i in range(CLIENTS)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    every = sorted(x for lat in latencies for x in lat)
    return len(every) / elapsed, every[len(every) // 2] * 1000, len(every)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port, server = _serve(Path(tmp))
        try:
            without, with_token, added = bench_signing(Path(tmp), port)
            rps, p50, total = bench_throughput(port)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"signing p50: {without:.2f} ms without, {with_token:.2f} ms with a token; added "
          f"{added:.2f} ms (goal < {GOAL_ADDED_MS:.0f} ms, ratio {added / GOAL_ADDED_MS:.2f})")
    print(f"TSA: {total} tokens in {SECONDS:.0f} s with {CLIENTS} clients: {rps:,.0f}/s "
          f"(goal >= {GOAL_RPS:,.0f}/s, ratio {rps / GOAL_RPS:.2f}); p50 {p50:.2f} ms")


if __name__ == "__main__":
    main()
