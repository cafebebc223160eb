"""The log's HTTP API on loopback, hit by real clients (our urllib client and curl)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.ephemeral import sign_ephemeral
from lifecycle.errors import LogError
from lifecycle.service.http import RunningServer, start_http
from lifecycle.service.tlog_http import LogEndpoints
from lifecycle.store.ca_service import EPHEMERAL
from lifecycle.store.db import make_engine
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import NoteVerifier, Submission, check_consistency, open_checkpoint
from lifecycle.tlog.client import HttpLogClient, submission_to_json
from lifecycle.verification.longterm import IdentityPolicy, LongTermTrust, verify_longterm
from tests.conftest import require_tool
from tests.ephemeral.conftest import IDENTITY, TOKEN, World, signed_submission
from tests.service.served_log import served_log


def submission(i: int) -> Submission:
    """A junk entry, as a local log (not its HTTP API) accepts it."""
    return Submission(i.to_bytes(32, "big"), b"sig-%d" % i, b"cert-%d" % i, f"image-{i}")


def endpoints(world: World, token: str | None = TOKEN) -> LogEndpoints:
    return LogEndpoints(world.log, world.verifier_key, token.encode() if token else None,
                        lambda: [world.ca.certificate(EPHEMERAL)])


@pytest.fixture
def server(world: World) -> Iterator[RunningServer]:
    running = start_http(None, log_endpoints=endpoints(world))
    yield running
    running.stop()


def test_client_round_trip(world: World, server: RunningServer) -> None:
    client = HttpLogClient(server.url, token=TOKEN)
    assert client.verifier_key() == world.verifier_key
    verifiers = [NoteVerifier.from_verifier_key(client.verifier_key())]
    first = signed_submission(world.ca, 0)
    evidence = client.submit(first)
    verified = evidence.verify(verifiers)
    assert verified.index == 0 and verified.entry.submission == first
    for i in range(1, 6):
        client.submit(signed_submission(world.ca, i))
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
    client = HttpLogClient(server.url, token=TOKEN)
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
    body = json.dumps(submission_to_json(signed_submission(world.ca, 0, "from-curl")))
    added = subprocess.run([curl, "-sf", "-X", "POST", "-H", "Content-Type: application/json",
                            "-H", f"Authorization: Bearer {TOKEN}",
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
    result = sign_ephemeral(str(image), IDENTITY, world.ca, HttpLogClient(server.url, token=TOKEN),
                            log_keys=[NoteVerifier.from_verifier_key(world.verifier_key)])
    assert result.entries[0].index == 0
    trust = LongTermTrust((world.root(),), (NoteVerifier.from_verifier_key(world.verifier_key),),
                          IdentityPolicy((IDENTITY,)), crls=(world.ca.publish_crl("root"),))
    assert verify_longterm(str(image), trust).ok


@pytest.mark.slow
def test_acknowledged_http_appends_survive_kill(tmp_path: Path) -> None:
    """SIGKILL the server right after acknowledgements: every acknowledged entry is stored."""
    served = served_log(tmp_path)
    with served.serving() as (url, _proc):
        client = HttpLogClient(url, timeout=10, token=TOKEN)
        verifiers = [NoteVerifier.from_verifier_key(client.verifier_key())]
        acknowledged = [client.submit(signed_submission(served.ca, i)).verify(verifiers).index
                        for i in range(20)]
    storage = SqlLogStorage(make_engine(f"sqlite:///{served.db}"))
    assert acknowledged == list(range(20))
    assert storage.tree_size() == 20
    assert [json.loads(leaf)["image_id"] for leaf in storage.read_leaves(0, 20)] == [
        f"image-{i}" for i in range(20)]


def _post(url: str, body: bytes, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"} | (
        {"Authorization": f"Bearer {token}"} if token is not None else {})
    request = urllib.request.Request(f"{url}/tlog/entries", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_finding_6_nobody_appends_junk_to_a_served_log(tmp_path: Path) -> None:
    """The reviewer's junk certificate and signature, with and without the token, and real
    entries that break one rule each: all refused with a JSON reason, nothing stored."""
    served = served_log(tmp_path)
    junk = {"payload_digest": "sha256:" + "ab" * 32, "signature": "AAAA",
            "certificate": "Tk9UIEEgQ0VSVA==", "image_id": "x"}
    junk_with_payload = junk | {"payload": "AAAA", "payload_digest": "sha256:" + hashlib.sha256(
        bytes(3)).hexdigest()}
    good = signed_submission(served.ca, 1)
    (tmp_path / "other").mkdir()
    other_ca = served_log(tmp_path / "other")
    foreign = submission_to_json(signed_submission(other_ca.ca, 2))
    forged = submission_to_json(good) | {"signature": submission_to_json(
        signed_submission(served.ca, 3))["signature"]}
    wrong_payload = submission_to_json(good) | {"payload": "AAAA"}
    no_payload = {k: v for k, v in submission_to_json(good).items() if k != "payload"}
    with served.serving() as (url, _proc):
        assert _post(url, json.dumps(junk).encode(), None)[0] == 401
        assert _post(url, json.dumps(junk).encode(), "wrong-token-0123456789")[0] == 401
        for doc, reason in ((junk, "needs its signed payload"),
                            (junk_with_payload, "not a valid PEM or DER certificate"),
                            (foreign, "not issued by the log's signing CA"),
                            (forged, "signature does not verify"),
                            (wrong_payload, "payload does not have"),
                            (no_payload, "needs its signed payload")):
            status, answer = _post(url, json.dumps(doc).encode(), TOKEN)
            assert (status, reason in str(answer["error"])) == (400, True), answer
        assert _post(url, json.dumps(submission_to_json(good)).encode(), TOKEN)[0] == 200
    assert SqlLogStorage(make_engine(f"sqlite:///{served.db}")).tree_size() == 1


@pytest.mark.slow
def test_appends_are_refused_with_403_without_a_token_file(tmp_path: Path) -> None:
    served = served_log(tmp_path, token=False)
    good = json.dumps(submission_to_json(signed_submission(served.ca, 1))).encode()
    with served.serving() as (url, _proc):
        status, answer = _post(url, good, TOKEN)
        assert status == 403 and "append_token_file" in str(answer["error"])
        assert HttpLogClient(url).verifier_key()  # reading still works


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


def test_the_client_takes_the_token_from_the_environment(
        world: World, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIF_LIFECYCLE_TLOG_TOKEN", raising=False)
    with pytest.raises(LogError, match="bearer token"):
        HttpLogClient(server.url).submit(signed_submission(world.ca, 0))
    monkeypatch.setenv("SIF_LIFECYCLE_TLOG_TOKEN", TOKEN)
    assert HttpLogClient(server.url).submit(signed_submission(world.ca, 0)).inclusion_proof.index == 0
    assert world.log.size == 1
