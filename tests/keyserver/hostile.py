"""A loopback HTTP server that answers every request with what a test sets: a hostile keyserver."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    """Seconds between body chunks (a slow drip)."""
    requests: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def hostile_server(answer: Answer) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` answering ``answer``; every request path is recorded."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            answer.requests.append(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(answer.status)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if answer.delay:
                for i in range(0, len(answer.body), 16):
                    self.wfile.write(answer.body[i:i + 16])
                    self.wfile.flush()
                    time.sleep(answer.delay)
            else:
                self.wfile.write(answer.body)

        do_GET = do_POST = _answer  # noqa: N815 - the names http.server calls

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
