"""CRL download, an RFC 6960 OCSP responder (GET and POST), the log and /healthz over HTTP.

The server is waitress: one asynchronous loop reads requests (an idle or unfinished connection
costs a socket, not a thread), a fixed pool of threads answers complete ones, and
:class:`HttpLimits` caps connections, request sizes and how long a request may take to arrive.
Every answer the server itself writes is JSON, including the parser's own 4xx for malformed
requests, and an unexpected exception becomes a 500 and one structured log record, never a
traceback. OCSP answers come from a cache of pre-signed responses (RFC 5019), so a request
costs a parse, two hash compares and a dict lookup. The source re-reads the store when another
process changed it (checked at most once a second), so ``sif-lifecycle ca revoke`` in another
shell is visible to a running server.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from cryptography.hazmat.primitives import serialization
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from lifecycle.clock import utc_now
from lifecycle.errors import LifecycleError
from lifecycle.pki.ocsp import OcspResponder
from lifecycle.service.tlog_http import JSON, Answer, LogEndpoints, error_answer
from lifecycle.store.ca_service import INTERMEDIATE, OCSP, ROOT, CaService

log = logging.getLogger(__name__)
MAX_OCSP_REQUEST = 64 * 1024
MAX_TSA_REQUEST = 16 * 1024
TSA_REPLY = "application/timestamp-reply"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class HttpLimits:
    """What clients may hold of the server: ``[serve] max_connections``, ``idle_timeout`` and
    ``max_request_bytes``.

    ``idle_timeout`` closes a connection that sent nothing for that long, and one whose request
    has not fully arrived that long after it began (slow headers or a short body); waitress checks
    every ``idle_timeout / 2`` (at least every second).
    """

    max_connections: int = 100
    idle_timeout: timedelta = timedelta(seconds=30)
    max_request_bytes: int = 1024 * 1024
    max_header_bytes: int = 64 * 1024
    threads: int = 8

    @property
    def idle_seconds(self) -> int:
        return max(1, round(self.idle_timeout.total_seconds()))


class RevocationSource:
    """What the endpoints serve, kept in step with the store."""

    def __init__(self, ca: CaService, *, recheck_seconds: float = 1.0) -> None:
        self.ca = ca
        self.recheck_seconds = recheck_seconds
        self.responder = OcspResponder(ca.ocsp_signers(), ca.status_under)
        ca.listeners.append(lambda serial: self.responder.invalidate(serial))
        self._lock = threading.Lock()
        self._revision = ca.revision()
        self._checked = time.monotonic()
        self._crls: dict[str, tuple[bytes, float]] = {}
        self._certs = self._load_certs()

    def _load_certs(self) -> dict[str, bytes]:
        return {role: self.ca.certificate(role).public_bytes(serialization.Encoding.DER)
                for role in (ROOT, INTERMEDIATE, OCSP)}  # OCSP: a renewed delegated responder

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
                certs = self._load_certs()
                if certs != self._certs:  # a re-issued intermediate or responder: sign as it
                    self._certs = certs
                    self.responder = OcspResponder(self.ca.ocsp_signers(), self.ca.status_under)
                else:  # no key is decrypted for an ordinary issuance or revocation
                    self.responder.invalidate()

    def ocsp(self, request: bytes) -> bytes:
        self._refresh()
        return self.responder.respond(request, utc_now())

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


_CRL, _CERT = "application/pkix-crl", "application/pkix-cert"
_FILES = {
    "/crl/root.crl": (_CRL, ROOT), "/crl/intermediate.crl": (_CRL, INTERMEDIATE),
    "/ca/root.crt": (_CERT, ROOT), "/ca/intermediate.crt": (_CERT, INTERMEDIATE),
}
"""Path -> (content type, CA role) of the published DER files."""
_CACHED = 300  # seconds a client may cache CRLs, certificates and OCSP answers


def _decode_get(path: str) -> bytes | None:
    """RFC 6960 A.1: the URL-encoded base64 DER request after ``/ocsp/``."""
    text = urllib.parse.unquote(path).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


Health = Callable[[], dict[str, Any]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Routes:
    """Routes CA paths to ``source``, ``/tlog/...`` to ``log_endpoints`` and /healthz to
    ``health`` (each may be off); a request is answered with an :data:`Answer` and a max-age."""

    source: RevocationSource | None
    log_endpoints: LogEndpoints | None
    health: Health | None
    tsa: Callable[[bytes], bytes] | None = None
    """The local time-stamping authority at ``/tsa`` (RFC 3161 over HTTP, POST only)."""
    metrics: Callable[[], bytes] | None = None

    def answer(self, method: str, target: str, headers: dict[str, str],
               body: Callable[[int], bytes]) -> tuple[Answer, int]:
        path = target.split("?", 1)[0]
        if path.startswith("/tlog/") and self.log_endpoints is not None:
            if method not in ("GET", "POST"):
                return error_answer(HTTPStatus.METHOD_NOT_ALLOWED, "use GET or POST"), 0
            data = body(self.log_endpoints.max_submission) if method == "POST" else b""
            return self.log_endpoints.handle(method, target, data, headers), 0
        if method == "GET" and path in ("/healthz", "/readyz") and self.health is not None:
            return self._health(ready=path == "/readyz"), 0
        if method == "GET" and path == "/metrics" and self.metrics is not None:
            return (HTTPStatus.OK, self.metrics(), METRICS_TYPE), 0
        if path == "/tsa" and self.tsa is not None:
            if method != "POST":
                return error_answer(HTTPStatus.METHOD_NOT_ALLOWED, "POST a TimeStampReq"), 0
            return (HTTPStatus.OK, self.tsa(body(MAX_TSA_REQUEST)), TSA_REPLY), 0
        if self.source is None:
            return error_answer(HTTPStatus.NOT_FOUND, "not found (no CA in the store)"), 0
        if method == "GET" and path.startswith("/ocsp/"):
            return self._ocsp(_decode_get(path[len("/ocsp/"):]))
        if method == "GET" and path in _FILES:
            content_type, role = _FILES[path]
            der = self.source.crl(role) if content_type == _CRL else self.source.certificate(role)
            return (HTTPStatus.OK, der, content_type), _CACHED
        if method == "POST" and path in ("/ocsp", "/ocsp/", "/"):
            return self._ocsp(body(MAX_OCSP_REQUEST))
        return error_answer(HTTPStatus.NOT_FOUND, "not found"), 0

    def _ocsp(self, request: bytes | None) -> tuple[Answer, int]:
        assert self.source is not None
        if request is None:
            return error_answer(HTTPStatus.BAD_REQUEST, "bad OCSP request encoding"), 0
        return (HTTPStatus.OK, self.source.ocsp(request), "application/ocsp-response"), _CACHED

    def _health(self, *, ready: bool) -> Answer:
        """/healthz: 200 while the instance works (``ok`` or ``degraded``, with reasons), 503 when
        it cannot (database away, stopping); /readyz: 503 unless ``ok``."""
        assert self.health is not None
        try:
            report, status = self.health(), HTTPStatus.OK
        except Exception as exc:  # the database is away: say so, with 503 for load balancers
            report, status = {"status": "error", "error": str(exc)}, HTTPStatus.SERVICE_UNAVAILABLE
        healthy = ("ok",) if ready else ("ok", "degraded")
        if report.get("status") not in healthy:
            status = HTTPStatus.SERVICE_UNAVAILABLE
        return status, json.dumps(report).encode() + b"\n", JSON


class BodyError(Exception):
    """The request body is missing or longer than the route accepts."""


def _reader(environ: dict[str, Any]) -> Callable[[int], bytes]:
    """Reads the (already fully buffered) body, refusing an empty one or one over ``limit``."""

    def read(limit: int) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if not 0 < length <= limit:
            raise BodyError(f"the request body must be 1 to {limit} bytes, not {length}")
        return bytes(environ["wsgi.input"].read(length))

    return read


def _target(environ: dict[str, Any]) -> str:
    """The path and query as sent (not URL-decoded: OCSP GET and the log parse them), also for an
    absolute-form request line (``GET http://host/ocsp/...``)."""
    raw = str(environ.get("REQUEST_URI") or "/")
    if raw.startswith("/"):
        return raw
    url = urllib.parse.urlsplit(raw)
    return (url.path or "/") + (f"?{url.query}" if url.query else "")


def make_app(routes: Routes) -> WsgiApp:
    """The WSGI application: every answer has a length, errors are JSON, nothing escapes."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        target = _target(environ)
        headers = {"authorization": str(environ.get("HTTP_AUTHORIZATION", ""))}
        max_age = 0
        try:
            (status, body, content_type), max_age = routes.answer(
                method, target, headers, _reader(environ))
        except BodyError as exc:
            status, body, content_type = error_answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc))
        except Exception as exc:  # one record, no traceback; the client gets a JSON 500
            log.error("%s %s failed: %s: %s", method, target[:200], type(exc).__name__, exc,
                      extra={"fields": {"event": "http.error", "method": method,
                                        "path": target[:200], "error": type(exc).__name__}})
            status, body, content_type = error_answer(HTTPStatus.INTERNAL_SERVER_ERROR,
                                                      "internal error; see the server log")
        response = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if max_age:
            response.append(("Cache-Control", f"max-age={max_age}, public, no-transform"))
        start_response(f"{status.value} {status.phrase}", response)
        return [body]

    return app


class _JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's answer to a request it could not parse, as JSON like every other error."""

    def execute(self) -> None:
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
        self.response_headers.append(("Content-Type", JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        log.info("refused a malformed request: %s: %s", error.reason, error.body,
                 extra={"fields": {"event": "http.bad_request", "status": error.code}})


class _Channel(HTTPChannel):  # type: ignore[misc]
    """Remembers when the request being received began, for :meth:`_Server.maintenance`."""

    error_task_class = _JsonErrorTask
    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_started = time.time()
        return bool(super().received(data))


class _Server(TcpWSGIServer):  # type: ignore[misc]
    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        """waitress closes connections idle for ``channel_timeout``; also close those whose
        request began that long ago and is still incomplete (slow headers, short bodies)."""
        super().maintenance(now)
        cutoff = now - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            if channel.request is not None and channel.request_started < cutoff:
                channel.will_close = True


@dataclass
class RunningServer:
    server: _Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def stop(self) -> None:
        """Close the listener and every connection, then let the answering threads finish."""
        from waitress import wasyncore

        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.thread.join(timeout=5)
        self.server.task_dispatcher.shutdown(timeout=5)


def start_http(source: RevocationSource | None, host: str = "127.0.0.1", port: int = 0, *,
               log_endpoints: LogEndpoints | None = None, health: Health | None = None,
               limits: HttpLimits | None = None,
               tsa: Callable[[bytes], bytes] | None = None,
               metrics: Callable[[], bytes] | None = None) -> RunningServer:
    """Serve CRLs, CA certificates, OCSP, the log, /tsa, /metrics and /healthz on ``host:port``
    (0: a free port)."""
    limits = limits or HttpLimits()
    # waitress warns on every request that waits for a thread: under load, a line per request
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    adjustments = Adjustments(
        host=host, port=port, threads=limits.threads, connection_limit=limits.max_connections,
        channel_timeout=limits.idle_seconds, cleanup_interval=max(1, limits.idle_seconds // 2),
        max_request_body_size=limits.max_request_bytes,
        max_request_header_size=limits.max_header_bytes, ident="sif-lifecycle",
        expose_tracebacks=False, backlog=max(1024, limits.max_connections))
    try:
        server = _Server(make_app(Routes(source, log_endpoints, health, tsa, metrics)),
                         adj=adjustments)
    except OSError as exc:
        raise LifecycleError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             hint="choose another --listen address, or stop what uses this one"
                             ) from None
    thread = threading.Thread(target=server.run, name="sif-lifecycle-http", daemon=True)
    thread.start()
    running = RunningServer(server, thread)
    log.info("serving HTTP on %s", running.url,
             extra={"fields": {"event": "http.listening", "url": running.url}})
    return running
