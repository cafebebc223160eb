"""Real ``serve`` processes for the tests: config files, launching, JSON log reading, stopping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.conftest import REPO

FAKE_WORK = "tests.service.fake_work:source"


def write_config(path: Path, url: str, **serve: str | int) -> Path:
    serve.setdefault("work_source", FAKE_WORK)
    lines = ["[database]", f"url = {json.dumps(url)}", "[keys]", 'directory = "keys"', "[serve]",
             'listen = "127.0.0.1:0"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in serve.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class ServeProcess:
    """One ``sif-lifecycle serve`` child; its stderr (JSON lines) is kept in a file."""

    process: subprocess.Popen[bytes]
    log_path: Path
    launched: float
    _log: IO[bytes] = field(repr=False)

    def records(self) -> list[dict[str, Any]]:
        """Every line of stderr, each of which must be one JSON object (--log-format json)."""
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == name]

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited ({self.process.returncode}) waiting for {what}:\n"
                                     + self.log_path.read_text()[-3000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.05)

    @property
    def url(self) -> str:
        self.wait_for(lambda: bool(self.events("http.listening")), 30, "the HTTP listener")
        return str(self.events("http.listening")[0]["url"])

    def terminate(self, timeout: float = 20, signum: int = signal.SIGTERM) -> tuple[int, float]:
        """SIGTERM (or ``signum``); (exit code, seconds it took)."""
        start = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self._log.close()
        return code, time.monotonic() - start

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()


def launch(started: list[ServeProcess], config: Path, work: Path, log_path: Path, *,
           apply_delay: float = 0.0) -> ServeProcess:
    """Start a serve child and register it in ``started`` at once, so cleanup always finds it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_PASSPHRASE": "service-test",
           "SIF_TEST_WORK": str(work), "SIF_TEST_APPLY_DELAY": str(apply_delay)}
    env.pop("SIF_LIFECYCLE_CONFIG", None)
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle.cli.main", "serve", "--config", str(config),
         "--log-format", "json"], cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=log)
    started.append(ServeProcess(process, log_path, time.time(), log))
    return started[-1]


def stop_all(processes: list[ServeProcess]) -> None:
    """Whatever a test did, no serve child outlives it."""
    for proc in processes:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(10)
