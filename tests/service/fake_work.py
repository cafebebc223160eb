"""A work source for the service tests: real work (signing tiny SIF images) whose effects we count.

Selected with ``[serve] work_source = "tests.service.fake_work:source"``; it reads its directory
from ``$SIF_TEST_WORK``:

- ``actions.json``: what ``plan_actions`` returns (a list of action dicts; none while it is absent),
  plus ``follow-ups.json``: actions that applying a ``rotate`` action made due (as a key rotation
  makes re-signing due);
- ``signer.pem``: the key ``sign`` actions add to the image's DSSE envelope;
- ``events.log``: one line per event, appended with O_APPEND so processes never interleave:
  ``start KEY PID`` and ``applied KEY PID`` around each apply, ``job NAME PID`` per job run.

``$SIF_TEST_APPLY_DELAY`` (seconds) is slept between ``start`` and the signing, so a test can
kill or stop an instance while it is inside an action.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from lifecycle.integrity.keys import load_signing_key, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.service.work import SourceContext


def log_event(directory: Path, *words: str) -> None:
    line = (" ".join((*words, str(os.getpid()))) + "\n").encode()
    fd = os.open(directory / "events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(directory: Path) -> list[list[str]]:
    path = directory / "events.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


class SigningWork:
    def __init__(self, directory: Path, delay: float | None = None) -> None:
        self.directory = directory
        self.delay = float(os.environ.get("SIF_TEST_APPLY_DELAY", "0")) if delay is None else delay
        signer_path = directory / "signer.pem"
        self.signer = (DsseSigner((load_signing_key(signer_path, no_passphrase),))
                       if signer_path.exists() else None)

    def scan(self, now: datetime, full: bool) -> Mapping[str, Any]:
        log_event(self.directory, "job", "full-scan" if full else "scan")
        return {"full": full}

    def plan_actions(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        log_event(self.directory, "job", "plan")
        paths = [self.directory / "actions.json", self.directory / "follow-ups.json"]
        return [action for path in paths if path.exists() for action in json.loads(path.read_text())]

    def apply(self, action: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
        key = str(action["key"])
        log_event(self.directory, "start", key)
        time.sleep(self.delay)
        if action["kind"] == "fail":
            raise RuntimeError("this action always fails")
        if action["kind"] == "sign":
            assert self.signer is not None
            done = sign_image(str(action["subject"]), self.signer, SignOptions())
            result = {"groups": [g.group for g in done], "how": [g.action for g in done]}
        elif action["kind"] == "rotate":
            follow_up = {"key": f"{key}:follow-up", "kind": "append", "subject": key}
            (self.directory / "follow-ups.json").write_text(json.dumps([follow_up]))
            result = {"made_due": follow_up["key"]}
        else:
            result = {}
        log_event(self.directory, "applied", key)
        return result

    def refresh_crls(self, now: datetime) -> Mapping[str, Any]:
        log_event(self.directory, "job", "crl")
        return {}

    def publish(self, now: datetime) -> Mapping[str, Any]:
        log_event(self.directory, "job", "publish")
        return {}


def source(context: SourceContext) -> SigningWork:
    return SigningWork(Path(os.environ["SIF_TEST_WORK"]))
