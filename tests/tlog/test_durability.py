"""A crash never loses an acknowledged entry: appends from a process killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.store.db import make_engine
from lifecycle.store.migrate import open_migrated
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import Log, NoteSigner

from .conftest import ORIGIN, submission

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
from lifecycle.store.migrate import open_migrated
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import Log
from tests.tlog.conftest import submission
engine = open_migrated(sys.argv[1])
log = Log(SqlLogStorage(engine), "origin")
i = 0
while True:
    logged = log.append_many([submission(i + k) for k in range(7)])
    print(logged[-1].index, logged[-1].leaf_hash.hex(), flush=True)
    i += 7
"""


@pytest.mark.slow
def test_sigkilled_writer_loses_no_acknowledged_entry(tmp_path: Path, signer: NoteSigner) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout is not None
    acked = [writer.stdout.readline().split() for _ in range(30)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()

    engine = make_engine(url)
    log = Log(SqlLogStorage(engine), ORIGIN, signer)
    assert log.size >= int(acked[-1][0]) + 1
    root = log.root()
    for index, leaf_hash_hex in acked:
        got = log.get(int(index))
        assert got.leaf_hash.hex() == leaf_hash_hex
        log.inclusion_proof(int(index)).verify(got.leaf_hash, root)
    assert log.append(submission(10**6)).index == log.size - 1


@pytest.mark.postgres
def test_postgres_appends_survive_a_new_connection(pg_url: str) -> None:
    engine = open_migrated(pg_url)
    log = Log(SqlLogStorage(engine), ORIGIN)
    acked = log.append_many([submission(i) for i in range(9)])
    engine.dispose()

    fresh = make_engine(pg_url)
    reopened = Log(SqlLogStorage(fresh), ORIGIN)
    assert reopened.size == 9
    assert reopened.get(8) == acked[8]
    reopened.inclusion_proof(4).verify(acked[4].leaf_hash, reopened.root())
    fresh.dispose()
