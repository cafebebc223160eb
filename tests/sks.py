"""A real HKP keyserver for tests: Debian's ``sks``, on loopback, from an empty database.

sks runs from a base directory of its own (``var/lib/sks``, ``var/log/sks``, ``var/run/sks``
under it); ``sks build`` creates the empty database and ``sks db`` serves HKP. It takes no port
0, so a free port is picked and the start retried if another process took it meanwhile.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SKS = "/usr/sbin/sks"
START_TIMEOUT = 20.0


@dataclass
class Sks:
    """A running sks: ``url`` is ``http://127.0.0.1:PORT``; ``stop``/``start`` simulate an outage."""

    base: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hkp(self) -> str:
        return f"hkp://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.base / "sks-db.out").open("ab")
        self.process = subprocess.Popen(
            [SKS, "db", "-basedir", str(self.base), "-hkp_address", "127.0.0.1",
             "-hkp_port", str(self.port)], cwd=self.base, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sks db exited with {self.process.returncode}: "
                                   + (self.base / "sks-db.out").read_text(errors="replace")[-500:])
            try:
                urllib.request.urlopen(f"{self.url}/pks/lookup?op=stats", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sks db did not answer on port {self.port} within {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_sks(base: Path) -> Iterator[Sks]:
    """An empty sks in ``base`` (created), serving until the block ends."""
    for sub in ("var/lib/sks", "var/log/sks", "var/run/sks"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    subprocess.run([SKS, "build", "-basedir", str(base)], cwd=base, check=True,
                   capture_output=True, timeout=120)
    server = None
    for _attempt in range(3):
        server = Sks(base, free_port())
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if _attempt == 2:
                raise
    assert server is not None
    try:
        yield server
    finally:
        server.stop()
