"""The log's HTTP API on loopback, hit by real clients (our urllib client and curl)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import LogError
from lifecycle.service.http import RunningServer, start_http
from lifecycle.service.tlog_http import LogEndpoints
from lifecycle.store.db import make_engine
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import NoteVerifier, Submission, check_consistency, open_checkpoint
from lifecycle.tlog.client import HttpLogClient
from lifecycle.verification.longterm import IdentityPolicy, LongTermTrust, verify_longterm
from tests.conftest import require_tool
from tests.ephemeral.conftest import IDENTITY, World
from tests.pki.conftest import PASSPHRASE

REPO = Path(__file__).resolve().parents[2]


def submission(i: int) -> Submission:
    return Submission(i.to_bytes(32, "big"), b"sig-%d" % i, b"cert-%d" % i, f"image-{i}")


@pytest.fixture
def server(world: World) -> Iterator[RunningServer]:
    running = start_http(None, log_endpoints=LogEndpoints(world.log, world.verifier_key))
    yield running
    running.stop()


def test_client_round_trip(world: World, server: RunningServer) -> None:
    client = HttpLogClient(server.url)
    assert client.verifier_key() == world.verifier_key
    verifiers = [NoteVerifier.from_verifier_key(client.verifier_key())]
    evidence = client.submit(submission(0))
    verified = evidence.verify(verifiers)
    assert verified.index == 0 and verified.entry.submission == submission(0)
    for i in range(1, 6):
        client.submit(submission(i))
    assert world.log.size == 6  # stored in the database the server runs on
    assert client.get(3)["entry"]["image_id"] == "image-3"
    assert client.evidence(2, 4).verify(verifiers).checkpoint.size == 4
    proof = client.inclusion_proof(5)
    assert proof["tree_size"] == 6 and proof["hashes"] == world.log.inclusion_proof(5).to_json()[
        "hashes"]
    old = open_checkpoint(world.log.signed_checkpoint(2), verifiers)
    new = open_checkpoint(client.checkpoint(), verifiers)
    check_consistency(old, new, client.consistency_proof(2, 6))


def test_errors_are_json_and_named(world: World, server: RunningServer) -> None:
    client = HttpLogClient(server.url)
    with pytest.raises(LogError, match="entry 7 does not exist"):
        client.get(7)
    with pytest.raises(LogError, match="payload digest"):
        client._call("entries", json.dumps({"payload_digest": "md5:00", "signature": "AA==",
                                            "certificate": "AA==", "image_id": "x"}).encode())
    with pytest.raises(LogError, match="not JSON"):
        client._call("entries", b"{nope")
    with pytest.raises(LogError, match="did not answer"):
        HttpLogClient("http://127.0.0.1:9", timeout=2).checkpoint()
    assert world.log.size == 0


def test_curl_reads_and_appends(world: World, server: RunningServer) -> None:
    curl = require_tool("curl")
    body = json.dumps({"payload_digest": "sha256:" + "ab" * 32, "signature": "c2ln",
                       "certificate": "Y2VydA==", "image_id": "from-curl"})
    added = subprocess.run([curl, "-sf", "-X", "POST", "-H", "Content-Type: application/json",
                            "--data", body, f"{server.url}/tlog/entries"],
                           capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(added.stdout)["index"] == 0
    note = subprocess.run([curl, "-sf", f"{server.url}/tlog/checkpoint"], capture_output=True,
                          timeout=30, check=True).stdout
    verifiers = [NoteVerifier.from_verifier_key(world.verifier_key)]
    assert open_checkpoint(note, verifiers).size == 1
    key = subprocess.run([curl, "-sf", f"{server.url}/tlog/key"], capture_output=True,
                         text=True, timeout=30, check=True).stdout.strip()
    assert key == world.verifier_key
    missing = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              f"{server.url}/tlog/entries/9"], capture_output=True, text=True,
                             timeout=30)
    assert missing.stdout == "404"


def test_sign_through_http_then_verify(world: World, server: RunningServer) -> None:
    image = world.image()
    result = sign_ephemeral(str(image), IDENTITY, world.ca, HttpLogClient(server.url),
                            log_keys=[NoteVerifier.from_verifier_key(world.verifier_key)])
    assert result.entries[0].index == 0
    trust = LongTermTrust((world.root(),), (NoteVerifier.from_verifier_key(world.verifier_key),),
                          IdentityPolicy((IDENTITY,)), crls=(world.ca.publish_crl("root"),))
    assert verify_longterm(str(image), trust).ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_acknowledged_http_appends_survive_kill(tmp_path: Path) -> None:
    """SIGKILL the server right after acknowledgements: every acknowledged entry is stored."""
    config = tmp_path / "lifecycle.toml"  # the service's own tables live in the log's database
    config.write_text('[database]\npath = "tlog.db"\n[keys]\ndirectory = "keys"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "SIF_LIFECYCLE_PASSPHRASE": PASSPHRASE.decode(),
           "SIF_LIFECYCLE_TLOG_DB": str(tmp_path / "tlog.db"),
           "SIF_LIFECYCLE_TLOG_KEY": str(tmp_path / "tlog-key.json"),
           "SIF_LIFECYCLE_CONFIG": str(config)}
    cli = [sys.executable, "-m", "lifecycle.cli.main"]
    subprocess.run([*cli, "tlog", "init", "--origin", "example.org/durable"], env=env,
                   check=True, capture_output=True, timeout=60)
    port = _free_port()
    proc = subprocess.Popen([*cli, "serve", "--no-ca", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = HttpLogClient(f"http://127.0.0.1:{port}", timeout=10)
        for _ in range(400):
            try:
                client.verifier_key()
                break
            except LogError:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                time.sleep(0.05)
        acknowledged = [client.submit(submission(i)).verify(
            [NoteVerifier.from_verifier_key(client.verifier_key())]).index for i in range(20)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    storage = SqlLogStorage(make_engine(f"sqlite:///{tmp_path / 'tlog.db'}"))
    assert acknowledged == list(range(20))
    assert storage.tree_size() == 20
    assert [json.loads(leaf)["image_id"] for leaf in storage.read_leaves(0, 20)] == [
        f"image-{i}" for i in range(20)]


def test_tlog_check_advances_a_checkpoint_store_over_http(
        world: World, server: RunningServer, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lifecycle.cli.main import cli
    from lifecycle.tlog import Log, MemoryLogStorage
    from lifecycle.verification.checkpoints import CheckpointStore

    verifiers = [NoteVerifier.from_verifier_key(world.verifier_key)]
    for i in range(2):
        world.log.append(submission(i))
    store = CheckpointStore(tmp_path / "cps")
    store.observe(world.log.signed_checkpoint(), world.log.checkpoint(), verifiers)
    for i in range(2, 5):
        world.log.append(submission(i))
    args = ["tlog", "check", str(tmp_path / "cps"), "--log-url", server.url,
            "--verifier-key", world.verifier_key]
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert "grew from 2 to 5" in ok.output
    remembered = store.remembered(world.log.origin, verifiers)
    assert remembered is not None and remembered.size == 5
    # the store remembers a checkpoint of a rewritten history: the served log is a fork of it
    forked = Log(MemoryLogStorage(), world.log.origin, world.signer)
    for i in range(6):
        forked.append(submission(100 + i))
    store.path(world.log.origin).write_bytes(forked.signed_checkpoint(3))
    fork = CliRunner().invoke(cli, args)
    assert fork.exit_code == 1 and "does not extend" in fork.output
    assert CliRunner().invoke(cli, ["tlog", "check", str(tmp_path / "cps"), "--log-url",
                                    server.url]).exit_code == 2
