"""The HTTP server under abuse (finding 7): idle and unfinished connections, short bodies, deep
JSON, bad UTF-8, huge numbers. Each is answered with a JSON status or closed on time, no thread
is held, nothing reaches the log as a traceback, and the server keeps answering everyone else."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.service.http import HttpLimits, RunningServer, start_http
from tests.ephemeral.conftest import TOKEN, World
from tests.ephemeral.test_http import endpoints

IDLE = timedelta(seconds=1)


@pytest.fixture
def server(world: World) -> Iterator[RunningServer]:
    running = start_http(None, log_endpoints=endpoints(world), health=lambda: {"status": "ok"},
                         limits=HttpLimits(max_connections=1000, idle_timeout=IDLE))
    yield running
    running.stop()


def _address(server: RunningServer) -> tuple[str, int]:
    return server.server.effective_host, int(server.server.effective_port)


def _exchange(server: RunningServer, raw: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``raw`` and read until the server closes (or answers one complete response)."""
    with socket.create_connection(_address(server), timeout=timeout) as conn:
        conn.sendall(raw)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if sep and length is not None and len(body) >= length:
                break
        return data


def _status(answer: bytes) -> tuple[int, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if b"application/json" in head else body


def _healthz_ms(server: RunningServer) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as answer:
        assert answer.status == 200
    return (time.perf_counter() - start) * 1000


def _post(path: str, body: bytes, token: str = TOKEN) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize(("raw", "status"), [
    (_post("/tlog/entries", b"[" * 200_000 + b"]" * 200_000), 400),  # 200k-deep JSON
    (_post("/tlog/entries", json.dumps({  # a lone surrogate as image id
        "payload_digest": "sha256:" + "ab" * 32, "signature": "AAAA", "certificate": "AAAA",
        "image_id": "\ud800"}).encode()), 400),
    (b"GET /tlog/evidence/9223372036854775807 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /tlog/evidence/0?size=%C2%B2 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /tlog/checkpoint?size=99999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /tlog/entries/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"BREW /tlog/key HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\n" + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    (_post("/tlog/entries", b"x" * (2 * 1024 * 1024)), 413),
], ids=["deep-json", "surrogate-image-id", "huge-index", "superscript-size", "huge-size",
        "bad-utf8-path", "unknown-method", "negative-length", "huge-header", "huge-body"])
def test_finding_7_requests_that_crashed_get_a_json_status(
        server: RunningServer, raw: bytes, status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, body = _status(_exchange(server, raw))
    assert got == status and isinstance(body, dict) and body["error"], body
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert _healthz_ms(server) < 1000


def test_an_unexpected_error_is_one_log_record_and_a_json_500(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, object]:
        raise ZeroDivisionError("boom")

    log_endpoints = endpoints(world)
    log_endpoints.issuers = broken  # type: ignore[assignment]
    running = start_http(None, log_endpoints=log_endpoints)
    try:
        from lifecycle.tlog.client import submission_to_json
        from tests.ephemeral.conftest import signed_submission

        body = json.dumps(submission_to_json(signed_submission(world.ca, 0))).encode()
        got, answer = _status(_exchange(running, _post("/tlog/entries", body)))
    finally:
        running.stop()
    assert got == 500 and answer == {"error": "internal error; see the server log"}
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "ZeroDivisionError: boom" in record.getMessage() and record.exc_info is None


@pytest.mark.slow
def test_500_idle_connections_are_closed_while_healthz_answers_fast(server: RunningServer) -> None:
    """1,000 unfinished connections held 1,008 threads for 40 s+; now they cost sockets, are
    closed after the idle timeout, and /healthz answers meanwhile in < 100 ms."""
    threads_before = threading.active_count()
    idle = []
    for i in range(500):
        conn = socket.create_connection(_address(server), timeout=10)
        if i % 3 == 1:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # unfinished headers
        elif i % 3 == 2:
            conn.sendall(_post("/tlog/entries", b"{}")[:-2] + b"\r\nContent-Length: 99\r\n\r\n{")
        idle.append(conn)
    try:
        time.sleep(0.2)
        latencies = sorted(_healthz_ms(server) for _ in range(20))
        assert latencies[17] < 100 and latencies[-1] < 500, latencies  # a shared 2-core machine
        assert threading.active_count() - threads_before < 5
        deadline = time.monotonic() + 10 * IDLE.total_seconds()
        open_ = list(idle)
        while open_ and time.monotonic() < deadline:
            still = []
            for conn in open_:
                conn.settimeout(0.01)
                try:
                    if conn.recv(65536):
                        still.append(conn)  # an answer (e.g. 400) before the close: read on
                except TimeoutError:
                    still.append(conn)
                except OSError:
                    pass
            open_ = still
            time.sleep(0.1)
        assert not open_, f"{len(open_)} of 500 idle connections still open"
        assert _healthz_ms(server) < 100
    finally:
        for conn in idle:
            conn.close()


def test_a_body_shorter_than_its_length_is_closed_after_the_timeout(server: RunningServer) -> None:
    start = time.monotonic()
    answer = _exchange(server, _post("/tlog/entries", b'{"a"')[:-4].replace(
        b"Content-Length: 4", b"Content-Length: 400") + b'{"a"', timeout=10)
    assert answer == b"" and time.monotonic() - start < 4 * IDLE.total_seconds() + 2
    assert _healthz_ms(server) < 1000


_METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"G\x00T", b""])
_PATHS = st.one_of(
    st.sampled_from([b"/healthz", b"/tlog/key", b"/tlog/checkpoint", b"/tlog/entries",
                     b"/tlog/evidence/0", b"/tlog/proof/inclusion", b"/ocsp", b"/crl/root.crl"]),
    st.binary(max_size=40).map(lambda b: b"/" + b.replace(b" ", b"%20").replace(b"\r", b"")
                               .replace(b"\n", b"")),
).flatmap(lambda p: st.sampled_from([p, p + b"?size=" + b"9" * 30, p + b"?index=%ff&old=-1"]))
_HEADER = st.tuples(st.binary(min_size=0, max_size=20), st.binary(max_size=60)).map(
    lambda kv: kv[0].replace(b"\r\n", b"") + b": " + kv[1].replace(b"\r\n", b""))
_BODIES = st.one_of(st.binary(max_size=300), st.just(b"[" * 5000),
                    st.just(b'{"image_id": "\\udc00", "payload_digest": 7}'))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=_METHODS, path=_PATHS, version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9",
                                                              b""]),
       headers=st.lists(_HEADER, max_size=4), body=_BODIES,
       length=st.one_of(st.none(), st.integers(-5, 400), st.just(10**30)))
def test_fuzzed_requests_never_break_the_server(
        server: RunningServer, method: bytes, path: bytes, version: bytes, headers: list[bytes],
        body: bytes, length: int | None) -> None:
    head = [method + b" " + path + b" " + version, b"Host: x",
            b"Authorization: Bearer " + TOKEN.encode(), *headers]
    if length is not None:
        head.append(b"Content-Length: " + str(length).encode())
    answer = _exchange(server, b"\r\n".join(head) + b"\r\n\r\n" + body, timeout=4)
    if answer:  # else: an unfinished request, closed by the idle timeout
        assert answer.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), answer[:200]
        status, parsed = _status(answer)
        assert status < 500, answer[:500]
        if status >= 400 and method != b"HEAD":
            assert isinstance(parsed, dict) and "error" in parsed, answer[:500]
    assert _healthz_ms(server) < 1000


def test_an_absolute_form_request_line_is_routed(world: World, server: RunningServer) -> None:
    status, body = _status(_exchange(server, b"GET http://x/tlog/key HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 200 and world.verifier_key.encode() in bytes(body)  # type: ignore[arg-type]


def test_finding_6_entries_of_930_kb_are_refused(world: World) -> None:
    """The reviewer put in 20 entries of ~930 KB in 0.5 s; certificates and signatures are small."""
    import base64

    from lifecycle.tlog.client import submission_to_json
    from tests.ephemeral.conftest import signed_submission

    real = submission_to_json(signed_submission(world.ca, 0))
    for field, size in (("certificate", 600_000), ("signature", 4096), ("payload", 700_000)):
        doc = real | {field: base64.b64encode(bytes(size)).decode()}
        status, body, _ = endpoints(world).handle("POST", "/tlog/entries", json.dumps(doc).encode(),
                                                  {"authorization": f"Bearer {TOKEN}"})
        assert (status == 400 and b"too long" in body) or b"at most" in body, body
    assert world.log.size == 0


def test_a_request_trickled_byte_by_byte_is_closed_after_the_timeout(server: RunningServer) -> None:
    """Never idle, never finished (slowloris): closed once the request is older than the timeout."""
    start = time.monotonic()
    with socket.create_connection(_address(server), timeout=5) as conn:
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                conn.sendall(bytes([byte]))
                conn.settimeout(0.25)
                if conn.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
    assert closed and time.monotonic() - start < 4 * IDLE.total_seconds() + 1


def test_a_port_in_use_is_one_line_not_a_traceback(server: RunningServer) -> None:
    from lifecycle.errors import LifecycleError

    host, port = _address(server)
    with pytest.raises(LifecycleError, match=f"cannot listen on {host}:{port}: Address already in use"):
        start_http(None, host, port)
