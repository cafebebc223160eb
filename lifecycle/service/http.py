"""CRL download and an RFC 6960 OCSP responder over HTTP (GET and POST), standard library only.

``ThreadingHTTPServer`` with HTTP/1.1 keep-alive is enough: answers come from a cache of
pre-signed responses (RFC 5019), so a request costs a parse, two hash compares and a dict lookup.
The source re-reads the store when another process changed it (checked at most once a second),
so ``sif-lifecycle ca revoke`` in another shell is visible to a running server.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization

from lifecycle.pki.ocsp import OcspResponder
from lifecycle.service.tlog_http import MAX_SUBMISSION, LogEndpoints
from lifecycle.store.ca_service import INTERMEDIATE, ROOT, CaService

log = logging.getLogger(__name__)
MAX_REQUEST = 64 * 1024


class RevocationSource:
    """What the endpoints serve, kept in step with the store."""

    def __init__(self, ca: CaService, *, recheck_seconds: float = 1.0) -> None:
        self.ca = ca
        self.recheck_seconds = recheck_seconds
        self.responder = OcspResponder(ca.ocsp_signer(), ca.status)
        ca.listeners.append(self.responder.invalidate)
        self._lock = threading.Lock()
        self._revision = ca.revision()
        self._checked = time.monotonic()
        self._crls: dict[str, tuple[bytes, float]] = {}
        self._certs: dict[str, bytes] = {role: ca.certificate(role).public_bytes(serialization.Encoding.DER)
                       for role in (ROOT, INTERMEDIATE)}

    def _refresh(self) -> None:
        """Drop caches when another process revoked or issued something."""
        now = time.monotonic()
        if now - self._checked < self.recheck_seconds:
            return
        with self._lock:
            self._checked = now
            revision = self.ca.revision()
            if revision != self._revision:
                self._revision = revision
                self._crls.clear()
                self.responder.invalidate()

    def ocsp(self, request: bytes) -> bytes:
        self._refresh()
        return self.responder.respond(request, datetime.now(UTC))

    def crl(self, role: str) -> bytes:
        """The current CRL, re-published by the CA service once half its lifetime has passed."""
        self._refresh()
        cached = self._crls.get(role)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        der = self.ca.publish_crl(role)
        self._crls[role] = (der, time.monotonic() + 60.0)
        return der

    def certificate(self, role: str) -> bytes:
        return self._certs[role]


_FILES = {
    "/crl/root.crl": ("crl", ROOT), "/crl/intermediate.crl": ("crl", INTERMEDIATE),
    "/ca/root.crt": ("cert", ROOT), "/ca/intermediate.crt": ("cert", INTERMEDIATE),
}
_TYPES = {"crl": "application/pkix-crl", "cert": "application/pkix-cert"}


def _decode_get(path: str) -> bytes | None:
    """RFC 6960 A.1: the URL-encoded base64 DER request after ``/ocsp/``."""
    text = urllib.parse.unquote(path).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


Health = Callable[[], dict[str, Any]]


def make_handler(source: RevocationSource | None, log_endpoints: LogEndpoints | None = None,
                 health: Health | None = None) -> type[BaseHTTPRequestHandler]:
    """Routes CA paths to ``source``, ``/tlog/...`` to ``log_endpoints`` and /healthz to ``health``
    (each may be off)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes; with Nagle on, keep-alive clients stall 40 ms
        disable_nagle_algorithm = True
        server_version = "sif-lifecycle"

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: HTTPStatus, body: bytes, content_type: str,
                  max_age: int = 0) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if max_age:
                self.send_header("Cache-Control", f"max-age={max_age}, public, no-transform")
            self.end_headers()
            self.wfile.write(body)

        def _ocsp(self, request: bytes | None) -> None:
            assert source is not None
            if request is None:
                self._send(HTTPStatus.BAD_REQUEST, b"bad OCSP request encoding\n", "text/plain")
                return
            self._send(HTTPStatus.OK, source.ocsp(request), "application/ocsp-response", 300)

        def _health(self) -> None:
            assert health is not None
            try:
                report, status = health(), HTTPStatus.OK
            except Exception as exc:  # the database is away: say so, with 503 for load balancers
                report, status = {"status": "error", "error": str(exc)}, HTTPStatus.SERVICE_UNAVAILABLE
            if report.get("status") != "ok":
                status = HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, json.dumps(report).encode() + b"\n", "application/json")

        def _log(self, body: bytes = b"") -> None:
            assert log_endpoints is not None
            self._send(*log_endpoints.handle(self.command, self.path, body))

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz" and health is not None:
                self._health()
            elif path.startswith("/tlog/") and log_endpoints is not None:
                self._log()
            elif source is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found (no CA in the store)\n", "text/plain")
            elif path.startswith("/ocsp/"):
                self._ocsp(_decode_get(path[len("/ocsp/"):]))
            elif path in _FILES:
                kind, role = _FILES[path]
                assert source is not None
                body = source.crl(role) if kind == "crl" else source.certificate(role)
                self._send(HTTPStatus.OK, body, _TYPES[kind], 300)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1  # not a number: answered below as a bad length
            path = self.path.split("?", 1)[0]
            if path.startswith("/tlog/") and log_endpoints is not None:
                if not 0 < length <= MAX_SUBMISSION:
                    self.close_connection = True
                    self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"bad length\n", "text/plain")
                else:
                    self._log(self.rfile.read(length))
            elif source is None or path not in ("/ocsp", "/ocsp/", "/"):
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            elif not 0 < length <= MAX_REQUEST:
                self.close_connection = True
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"bad length\n", "text/plain")
            else:
                self._ocsp(self.rfile.read(length))

    return Handler


@dataclass
class RunningServer:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_http(source: RevocationSource | None, host: str = "127.0.0.1", port: int = 0, *,
               log_endpoints: LogEndpoints | None = None, health: Health | None = None) -> RunningServer:
    """Serve CRLs, CA certificates, OCSP, the log and /healthz on ``host:port`` (0: a free port)."""
    server = ThreadingHTTPServer((host, port), make_handler(source, log_endpoints, health))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sif-lifecycle-http",
                              daemon=True)
    thread.start()
    log.info("serving HTTP on http://%s:%s", *server.server_address[:2],
             extra={"fields": {"event": "http.listening",
                               "url": "http://{}:{}".format(*server.server_address[:2])}})
    return RunningServer(server, thread)
