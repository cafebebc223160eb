"""RFC 3161 against real peers: openssl's TSA client and server, securesystemslib, Go sif."""

from __future__ import annotations

import http.server
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lifecycle.pki.certs import certificate_pem
from lifecycle.sign import sign, signer_for
from lifecycle.store.ca_service import TSA
from lifecycle.timestamp.client import QUERY_TYPE, REPLY_TYPE, Timestamper, TsaClient
from lifecycle.verify import TrustMaterial, verify
from tests.conftest import require_tool
from tests.interop.test_peers import new_image
from tests.keygen import write_pem_pair
from tests.strategies.trust import peer_verify
from tests.timestamp.conftest import LocalTsa, local, store_ca

__all__ = ["local", "store_ca"]
pytestmark = pytest.mark.interop
Run = Callable[..., subprocess.CompletedProcess[str]]


def _chain_files(local: LocalTsa, directory: Path) -> tuple[Path, Path]:
    root, inter = directory / "root.pem", directory / "inter.pem"
    root.write_bytes(certificate_pem(local.root))
    inter.write_bytes(certificate_pem(local.intermediate))
    return root, inter


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("openssl"), *map(str, args)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_openssl_verifies_our_tokens_with_the_chain(local: LocalTsa, tmp_path: Path) -> None:
    root, inter = _chain_files(local, tmp_path)
    data = tmp_path / "signature.bin"
    data.write_bytes(b"the bytes of a DSSE signature")
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(TsaClient(local.url).timestamp(data.read_bytes()))
    ok = _openssl("ts", "-verify", "-data", data, "-in", reply, "-CAfile", root,
                  "-untrusted", inter)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    data.write_bytes(b"other bytes")
    assert _openssl("ts", "-verify", "-data", data, "-in", reply, "-CAfile", root,
                    "-untrusted", inter).returncode != 0


def test_openssl_queries_to_our_tsa_get_valid_replies(local: LocalTsa, tmp_path: Path) -> None:
    root, inter = _chain_files(local, tmp_path)
    data, query, reply = tmp_path / "data", tmp_path / "q.tsq", tmp_path / "r.tsr"
    data.write_bytes(b"anything")
    for extra in ([], ["-cert"], ["-no_nonce", "-cert"], ["-sha512", "-cert"]):
        made = _openssl("ts", "-query", "-data", data, *extra, "-out", query)
        assert made.returncode == 0, made.stderr
        request = urllib.request.Request(local.url, data=query.read_bytes(), method="POST",
                                         headers={"Content-Type": QUERY_TYPE})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["Content-Type"] == REPLY_TYPE
            reply.write_bytes(answer.read())
        # -queryfile: imprint, nonce and policy are checked; without -cert the token carries
        # no certificate, so openssl is given the TSA's with the chain
        untrusted = tmp_path / "untrusted.pem"
        untrusted.write_bytes(certificate_pem(local.store.ca.certificate(TSA))
                              + inter.read_bytes())
        checked = _openssl("ts", "-verify", "-queryfile", query, "-in", reply, "-CAfile", root,
                           "-untrusted", untrusted)
        assert checked.returncode == 0, (extra, checked.stdout, checked.stderr)


# -- openssl ts -reply as an independent TSA ------------------------------------------------

_TSA_CNF = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {dir}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
ordering = no
tsa_name = no
ess_cert_id_chain = no
[ tsa_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"""


@pytest.fixture
def openssl_tsa(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``openssl ts -reply`` behind a tiny HTTP server: (URL, its root certificate)."""
    d = tmp_path / "openssl-tsa"
    d.mkdir()
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(_TSA_CNF.format(dir=d))
    steps = [
        ("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", d / "root.key", "-out", d / "root.pem", "-days", "30", "-subj",
         "/CN=Independent Test Root"),
        ("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         d / "tsa.key", "-out", d / "tsa.csr", "-subj", "/CN=Independent openssl TSA"),
        ("x509", "-req", "-in", d / "tsa.csr", "-CA", d / "root.pem", "-CAkey", d / "root.key",
         "-set_serial", "7", "-days", "20", "-extfile", d / "tsa.cnf", "-extensions", "tsa_ext",
         "-out", d / "tsa.pem"),
    ]
    for step in steps:
        done = _openssl(*step)
        assert done.returncode == 0, done.stderr

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = d / "q.tsq"
            query.write_bytes(self.rfile.read(int(self.headers["Content-Length"])))
            out = d / "r.tsr"
            _openssl("ts", "-reply", "-config", d / "tsa.cnf", "-queryfile", query, "-inkey",
                     d / "tsa.key", "-signer", d / "tsa.pem", "-out", out)
            body = out.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", REPLY_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", d / "root.pem"
    finally:
        server.shutdown()
        server.server_close()


def test_tokens_from_openssl_are_accepted_and_prove_time(
        openssl_tsa: tuple[str, Path], tmp_path: Path) -> None:
    url, root = openssl_tsa
    private, public = write_pem_pair(tmp_path, "k", "ecdsa")
    image = new_image(tmp_path / "a.sif")
    sign(image, signer=signer_for([private], timestamper=Timestamper.for_urls([url])))
    result = verify(image, TrustMaterial(keys=(public,), tsa_roots=(root,)))
    (proven,) = result.proven or ()
    assert proven.at is not None, proven.rejected
    assert "Independent openssl TSA" in proven.source
    peer_verify(image, public)


def test_envelopes_with_tokens_stay_stock_compatible(
        local: LocalTsa, tmp_path: Path, sifcheck: Run) -> None:
    private, public = write_pem_pair(tmp_path, "k", "ed25519")
    image = new_image(tmp_path / "a.sif")
    sign(image, signer=signer_for([private], timestamper=Timestamper.for_urls([local.url])))
    peer_verify(image, public)  # securesystemslib ignores the extension and accepts
    listing = sifcheck("list", image)  # the Go reference parses the image like before
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 3, listing.stderr
