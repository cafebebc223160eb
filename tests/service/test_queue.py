"""The shared work queue on real SQLite and PostgreSQL: idempotent enqueue, leases, fenced completion."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from lifecycle.errors import LeaseLostError, StoreError
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.store.queue import CLAIMED, DONE, FAILED, PENDING, WorkQueue, start_job_run

T0 = datetime(2027, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=1)


def action(n: int, **extra: object) -> dict[str, object]:
    return {"key": f"resign:image-{n}", "kind": "resign", "subject": f"/images/{n}.sif",
            "due": T0.isoformat(), "not_before": T0.isoformat(), "reason": "key rotation",
            "image_set": "prod", **extra}


def test_enqueue_is_idempotent_by_key_and_never_requeues_done_work(engine: Engine) -> None:
    queue = WorkQueue(engine)
    assert queue.enqueue([action(1), action(2), action(1)], T0) == 2
    assert queue.enqueue([action(1), action(2), action(3)], T0) == 1
    claim = queue.claim("w", LEASE, T0)
    assert claim is not None and claim.key == "resign:image-1"
    assert claim.action == action(1)
    queue.complete(claim, {"signed": True}, T0)
    assert queue.enqueue([action(1)], T0 + timedelta(days=1)) == 0
    assert queue.counts() == {PENDING: 2, CLAIMED: 0, DONE: 1, FAILED: 0}


def test_enqueue_refuses_actions_without_a_key_or_with_naive_times(engine: Engine) -> None:
    queue = WorkQueue(engine)
    with pytest.raises(StoreError, match="key"):
        queue.enqueue([{"kind": "resign"}], T0)
    with pytest.raises(StoreError, match="timezone-aware"):
        queue.enqueue([action(1, due="2027-01-01T00:00:00")], T0)
    assert queue.counts()[PENDING] == 0


def test_claims_are_exclusive_ordered_by_due_and_respect_not_before(engine: Engine) -> None:
    queue = WorkQueue(engine)
    later = (T0 + timedelta(hours=1)).isoformat()
    queue.enqueue([action(1, due=later), action(2), action(3, not_before=later)], T0)
    first = queue.claim("a", LEASE, T0)
    second = queue.claim("b", LEASE, T0)
    assert first is not None and second is not None
    assert (first.key, second.key) == ("resign:image-2", "resign:image-1")
    assert queue.claim("c", LEASE, T0) is None  # image-3 is not yet available
    queue.complete(first, {}, T0)
    queue.complete(second, {}, T0)
    third = queue.claim("c", LEASE, T0 + timedelta(hours=1))
    assert third is not None and third.key == "resign:image-3"


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_complete(engine: Engine) -> None:
    queue = WorkQueue(engine)
    queue.enqueue([action(1)], T0)
    old = queue.claim("slow", LEASE, T0)
    assert old is not None
    assert queue.claim("other", LEASE, T0 + LEASE / 2) is None  # lease still valid
    new = queue.claim("other", LEASE, T0 + LEASE + timedelta(seconds=1))
    assert new is not None and new.key == old.key and new.attempts == 2
    assert not queue.renew(old, LEASE, T0 + LEASE)
    with pytest.raises(LeaseLostError, match="another worker"):
        queue.complete(old, {"by": "slow"}, T0 + LEASE * 2)
    queue.complete(new, {"by": "other"}, T0 + LEASE * 2)
    with session_scope(engine) as session:
        done = audit.entries(session, action="service.action.done")
    assert [json.loads(row.detail)["result"] for row in done] == [{"by": "other"}]
    assert json.loads(done[0].detail)["planned"]["reason"] == "key rotation"


def test_renewed_lease_is_not_taken_over(engine: Engine) -> None:
    queue = WorkQueue(engine)
    queue.enqueue([action(1)], T0)
    claim = queue.claim("a", LEASE, T0)
    assert claim is not None
    assert queue.renew(claim, LEASE, T0 + LEASE / 2)
    assert queue.claim("b", LEASE, T0 + LEASE + timedelta(seconds=1)) is None
    queue.complete(claim, {}, T0 + LEASE)
    assert queue.counts()[DONE] == 1


def test_failures_are_retried_with_backoff_then_marked_failed(engine: Engine) -> None:
    queue = WorkQueue(engine, max_attempts=2, retry_delay=timedelta(minutes=5))
    queue.enqueue([action(1)], T0)
    claim = queue.claim("a", LEASE, T0)
    assert claim is not None
    assert queue.fail(claim, "disk full", T0) == PENDING
    assert queue.claim("a", LEASE, T0 + timedelta(minutes=4)) is None
    claim = queue.claim("a", LEASE, T0 + timedelta(minutes=5))
    assert claim is not None and claim.attempts == 2
    assert queue.fail(claim, "disk full", T0 + timedelta(minutes=5)) == FAILED
    assert queue.claim("a", LEASE, T0 + timedelta(days=1)) is None
    assert queue.enqueue([action(1)], T0 + timedelta(days=1)) == 0
    row = queue.item("resign:image-1")
    assert row is not None and row.state == FAILED and json.loads(row.result or "")["error"] == "disk full"
    with session_scope(engine) as session:
        kinds = [r.action for r in audit.entries(session) if r.action.startswith("service.")]
    assert kinds == ["service.action.retry", "service.action.failed"]


def test_released_claim_is_pending_again_without_counting_an_attempt(engine: Engine) -> None:
    queue = WorkQueue(engine)
    queue.enqueue([action(1)], T0)
    claim = queue.claim("a", LEASE, T0)
    assert claim is not None
    queue.release(claim, T0)
    again = queue.claim("b", LEASE, T0)
    assert again is not None and again.attempts == 1


def test_concurrent_claimers_never_share_an_item(engine: Engine) -> None:
    """Eight threads with their own connections drain 120 items: each item is claimed exactly once."""
    queue = WorkQueue(engine)
    queue.enqueue([action(n) for n in range(120)], T0)
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        while (claim := queue.claim(worker, LEASE, T0)) is not None:
            queue.complete(claim, {}, T0)
            with lock:
                claimed.append(claim.key)

    threads = [threading.Thread(target=drain, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(f"resign:image-{n}" for n in range(120))
    assert queue.counts()[DONE] == 120


def test_a_scheduled_run_is_started_by_one_instance_only(engine: Engine) -> None:
    later = T0 + timedelta(hours=1)
    assert start_job_run(engine, "plan", "a", T0, T0)
    assert not start_job_run(engine, "plan", "b", T0, T0 + timedelta(seconds=1))
    assert start_job_run(engine, "scan", "b", T0, T0)
    assert start_job_run(engine, "plan", "b", later, later)
    assert not start_job_run(engine, "plan", "a", T0, later)  # an older run, fired late
