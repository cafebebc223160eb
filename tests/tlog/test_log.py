"""The Log over every backend (memory, SQLite, PostgreSQL): append, read, evidence, forks."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine

from lifecycle.errors import LogConflictError, LogError, LogForkError, LogProofError
from lifecycle.store.migrate import open_migrated
from lifecycle.store.tlog import SqlLogStorage
from lifecycle.tlog import (
    Checkpoint,
    ConsistencyProof,
    Entry,
    InclusionProof,
    Log,
    LogStorage,
    MemoryLogStorage,
    NoteSigner,
    Submission,
    check_consistency,
    leaf_hash,
    open_checkpoint,
    open_timestamp,
)
from lifecycle.tlog.merkle import stored_hash_count

from .conftest import ORIGIN, Clock, submission


@pytest.fixture
def storage(backend_name: str, request: pytest.FixtureRequest) -> LogStorage:
    if backend_name == "memory":
        return MemoryLogStorage()
    engine: Engine = request.getfixturevalue(f"{backend_name}_engine")
    return SqlLogStorage(engine)


@pytest.fixture
def log(storage: LogStorage, signer: NoteSigner, clock: Clock) -> Log:
    return Log(storage, ORIGIN, signer, clock)


def test_append_get_and_evidence(log: Log, signer: NoteSigner, clock: Clock) -> None:
    first = log.append(submission(0))
    clock.advance(90)
    batch = log.append_many([submission(i) for i in range(1, 40)])
    assert [e.index for e in [first, *batch]] == list(range(40))
    assert log.size == 40
    assert log.stored_hash_count() == stored_hash_count(40)

    got = log.get(17)
    assert got == batch[16]
    assert got.entry.submission == submission(17)
    assert got.entry.integrated_time == datetime(2026, 1, 2, 3, 5, 35, tzinfo=UTC)
    assert log.find(got.leaf_hash) == 17

    cp = open_checkpoint(log.signed_checkpoint(), [signer.verifier], origin=ORIGIN)
    assert (cp.size, cp.root_hash) == (40, log.root())
    for i in (0, 17, 39):
        log.inclusion_proof(i).verify(log.get(i).leaf_hash, cp.root_hash)
    old = open_checkpoint(log.signed_checkpoint(13), [signer.verifier])
    check_consistency(old, cp, log.consistency_proof(13))

    ts = open_timestamp(log.signed_timestamp(0), [signer.verifier])
    assert (ts.origin, ts.index, ts.leaf_hash) == (ORIGIN, 0, first.leaf_hash)
    assert ts.integrated_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_reads_outside_the_log_are_clear_errors(log: Log) -> None:
    log.append_many([submission(i) for i in range(3)])
    with pytest.raises(LogError, match="entry 3 does not exist"):
        log.get(3)
    with pytest.raises(LogError, match="beyond the log's current size"):
        log.inclusion_proof(0, 4)
    with pytest.raises(LogError):
        log.consistency_proof(4)
    with pytest.raises(LogError, match="without its key"):
        Log(log.storage, ORIGIN).signed_checkpoint()


def test_fork_is_reported(signer: NoteSigner, clock: Clock) -> None:
    honest = Log(MemoryLogStorage(), ORIGIN, signer, clock)
    forked = Log(MemoryLogStorage(), ORIGIN, signer, clock)
    honest.append_many([submission(i) for i in range(10)])
    forked.append_many([submission(i) for i in range(10) if i != 4] + [submission(99)])
    remembered = open_checkpoint(honest.signed_checkpoint(6), [signer.verifier])
    honest.append_many([submission(i) for i in range(10, 12)])
    forked.append_many([submission(i) for i in range(10, 12)])
    now_honest = open_checkpoint(honest.signed_checkpoint(), [signer.verifier])
    now_forked = open_checkpoint(forked.signed_checkpoint(), [signer.verifier])

    check_consistency(remembered, now_honest, honest.consistency_proof(6))
    with pytest.raises(LogForkError, match="does not extend the remembered"):
        check_consistency(remembered, now_forked, forked.consistency_proof(6))
    same_size = open_checkpoint(forked.signed_checkpoint(6), [signer.verifier])
    with pytest.raises(LogForkError, match="two roots for size 6"):
        check_consistency(remembered, same_size, forked.consistency_proof(6, 6))
    with pytest.raises(LogForkError, match="shrank"):
        check_consistency(now_honest, remembered, ConsistencyProof(12, 6, ()))
    with pytest.raises(LogProofError, match="not 6->12"):
        check_consistency(remembered, now_honest, honest.consistency_proof(5))


def test_signature_by_another_key_is_not_a_checkpoint(log: Log) -> None:
    log.append(submission(1))
    impostor = NoteSigner.generate(ORIGIN)
    forged = log.checkpoint().sign(impostor)
    with pytest.raises(LogProofError, match="none of them a trusted log key"):
        open_checkpoint(forged, [log.signer.verifier] if log.signer else [])


def test_entry_encoding_is_canonical_and_strict() -> None:
    entry = Entry(submission(3), datetime(2026, 1, 2, 4, 4, 5, 123456, tzinfo=UTC))
    leaf = entry.encode()
    data = json.loads(leaf)
    assert list(data) == sorted(data)
    assert data["integrated_time"] == "2026-01-02T04:04:05Z"
    assert data["payload_digest"] == "sha256:" + (3).to_bytes(32, "big").hex()
    assert base64.b64decode(data["signature"]) == b"sig-3"
    assert Entry.decode(leaf) == entry
    for bad in [
        leaf.replace(b'{"', b'{ "', 1),
        leaf.replace(b'"version":1', b'"version":2'),
        json.dumps({**data, "extra": 1}, sort_keys=True, separators=(",", ":")).encode(),
        leaf.replace(b"sha256:", b"sha512:"),
        leaf.replace(b"04:04:05Z", b"04:04:05.1Z"),
        b"not json",
    ]:
        with pytest.raises(LogError):
            Entry.decode(bad)
    with pytest.raises(LogError, match="timezone-aware"):
        Entry(submission(3), datetime(2026, 1, 2))
    with pytest.raises(LogError):
        Submission(b"short", b"s", b"c", "id")


def _sqlite_log(path: Path, signer: NoteSigner) -> Log:
    engine = open_migrated(f"sqlite:///{path}")
    return Log(SqlLogStorage(engine), ORIGIN, signer)


def test_acknowledged_appends_survive_reopening(tmp_path: Path, signer: NoteSigner) -> None:
    db = tmp_path / "durable.db"
    log = _sqlite_log(db, signer)
    acked = log.append_many([submission(i) for i in range(25)])
    root = log.root()
    assert isinstance(log.storage, SqlLogStorage)
    log.storage.engine.dispose()

    reopened = _sqlite_log(db, signer)
    assert reopened.size == 25
    assert reopened.get(24) == acked[24]
    assert reopened.root() == root
    with reopened.storage.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    more = reopened.append(submission(25))
    assert more.index == 25
    reopened.inclusion_proof(3).verify(acked[3].leaf_hash, reopened.root())


def test_failed_append_leaves_nothing_behind(log: Log) -> None:
    log.append_many([submission(i) for i in range(5)])
    before = (log.size, log.root())
    stale = log.checkpoint()
    with pytest.raises(LogError):
        log.append_many([submission(5), Submission(b"x" * 31, b"s", b"c", "id")])
    assert (log.size, log.root()) == before == (stale.size, stale.root_hash)


def test_two_writers_on_one_database_both_land(sqlite_engine: Engine, signer: NoteSigner) -> None:
    a = Log(SqlLogStorage(sqlite_engine), ORIGIN, signer)
    b = Log(SqlLogStorage(sqlite_engine), ORIGIN, signer)
    a.append_many([submission(i) for i in range(3)])
    b.append_many([submission(i) for i in range(3, 6)])  # b's tree is loaded fresh
    a.append(submission(6))  # a's cached frontier is stale and must be reloaded
    batches = [[submission(100 + k * 10 + i) for i in range(5)] for k in range(4)]
    writers = [a, b, a, b]
    threads = [
        threading.Thread(target=w.append_many, args=(batch,))
        for w, batch in zip(writers, batches, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.size == 27
    fresh = Log(SqlLogStorage(sqlite_engine), ORIGIN, signer)
    for i in range(27):
        leaf = fresh.storage.read_leaves(i, i + 1)[0]
        fresh.inclusion_proof(i).verify(leaf_hash(leaf), fresh.root())


def test_storage_refuses_an_out_of_order_append(storage: LogStorage) -> None:
    log = Log(storage, ORIGIN)
    log.append(submission(0))
    from lifecycle.tlog import LeafRecord

    record = LeafRecord(0, b"x", leaf_hash(b"x"), "id", datetime.now(UTC))
    with pytest.raises(LogConflictError):
        storage.append([record], [(0, leaf_hash(b"x"))])
    assert log.size == 1


def test_proof_json_round_trip(log: Log) -> None:
    log.append_many([submission(i) for i in range(9)])
    inc = log.inclusion_proof(5)
    assert InclusionProof.from_json(json.loads(json.dumps(inc.to_json()))) == inc
    con = log.consistency_proof(3)
    assert ConsistencyProof.from_json(con.to_json()) == con
    with pytest.raises(LogProofError):
        InclusionProof.from_json({**inc.to_json(), "index": -1})
    with pytest.raises(LogProofError):
        ConsistencyProof.from_json(inc.to_json())
    assert Checkpoint.parse(log.checkpoint().body()) == log.checkpoint()


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.integers(1, 9), min_size=1, max_size=8),
    forked_at=st.integers(0, 40),
)
def test_property_remembered_checkpoints_stay_consistent_and_forks_are_caught(
    batches: list[int], forked_at: int
) -> None:
    """Checkpoints of one growing log always connect; a log that changed an old entry never."""
    signer = NoteSigner.generate(ORIGIN)
    fixed = Clock()  # both logs stamp the same integrated time: only ``forked_at`` differs
    honest = Log(MemoryLogStorage(), ORIGIN, signer, clock=fixed)
    forked = Log(MemoryLogStorage(), ORIGIN, signer, clock=fixed)
    remembered = []
    for count in batches:
        start = honest.size
        honest.append_many([submission(start + i) for i in range(count)])
        forked.append_many(
            [submission(10**6 + i if i == forked_at else i) for i in range(start, start + count)]
        )
        remembered.append(open_checkpoint(honest.signed_checkpoint(), [signer.verifier]))
    latest = remembered[-1]
    for old in remembered:
        check_consistency(old, latest, honest.consistency_proof(old.size))
        fork = open_checkpoint(forked.signed_checkpoint(), [signer.verifier])
        if forked_at < old.size:
            with pytest.raises(LogForkError):
                check_consistency(old, fork, forked.consistency_proof(old.size))
        else:
            check_consistency(old, fork, forked.consistency_proof(old.size))
