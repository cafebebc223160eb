"""A real ``sif-lifecycle serve`` of a log in a child process: CA with its ephemeral CA, the log,
a config with ``[tlog] append_token_file``, and the signer's side (the CA in this process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from lifecycle.errors import LogError
from lifecycle.pki import keys
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService, CaSettings
from lifecycle.store.db import make_engine, sqlite_url
from lifecycle.store.key_service import KeyService
from lifecycle.tlog.client import HttpLogClient
from tests.ephemeral.conftest import TOKEN
from tests.pki.conftest import PASSPHRASE, URLS

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "lifecycle.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedLog:
    directory: Path
    env: dict[str, str]
    ca: CaService

    @property
    def db(self) -> Path:
        return self.directory / "lifecycle.db"

    @contextmanager
    def serving(self, *extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
        """``serve`` on a free port until the block ends (then SIGKILL, as a crash would)."""
        port = free_port()
        proc = subprocess.Popen([*CLI, "serve", "--no-ca", "--listen", f"127.0.0.1:{port}",
                                 "--log-format", "json", *extra], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            client = HttpLogClient(url, timeout=10)
            for _ in range(600):
                try:
                    client.verifier_key()
                    break
                except LogError:
                    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                    time.sleep(0.05)
            yield url, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.stderr is not None
            proc.stderr.close()


def served_log(directory: Path, *, token: bool = True, serve: str = "") -> ServedLog:
    """Store, CA (with ephemeral CA) and log in ``directory``; ``serve``: more [serve] lines."""
    url = sqlite_url(directory / "lifecycle.db")
    migrate.upgrade(url)
    ca = CaService(KeyService(make_engine(url), directory / "keys"), PASSPHRASE,
                   CaSettings(urls=URLS))
    ca.init(root_algorithm=keys.KeyAlgorithm.P256, intermediate_algorithm=keys.KeyAlgorithm.P256,
            root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825))
    ca.init_ephemeral()
    (directory / "tlog-token").write_text(TOKEN + "\n")
    config = directory / "lifecycle.toml"
    config.write_text('[database]\npath = "lifecycle.db"\n[keys]\ndirectory = "keys"\n'
                      f'[serve]\n{serve}\n'
                      '[tlog]\norigin = "example.org/served"\nkey_file = "tlog-key.json"\n'
                      + ('append_token_file = "tlog-token"\n' if token else ""))
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE.decode(),
           "SIF_LIFECYCLE_TLOG_DB": str(directory / "lifecycle.db"),
           "SIF_LIFECYCLE_TLOG_KEY": str(directory / "tlog-key.json"),
           "SIF_LIFECYCLE_CONFIG": str(config)}
    env.pop("SIF_LIFECYCLE_TLOG_TOKEN", None)
    subprocess.run([*CLI, "tlog", "init"], env=env, check=True, capture_output=True, timeout=60)
    return ServedLog(directory, env, ca)
