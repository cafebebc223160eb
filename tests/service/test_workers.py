"""Worker pools in this process on real databases: lease renewal, failures, sharing between pools."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from lifecycle.service.workers import WorkerPool
from lifecycle.store import audit
from lifecycle.store.db import session_scope
from lifecycle.store.queue import CLAIMED, DONE, FAILED, PENDING, WorkQueue
from tests.service.fake_work import SigningWork, read_events

SECOND = timedelta(seconds=1)


def pool(engine: Engine, work: SigningWork, name: str, lease: timedelta = 2 * SECOND) -> WorkerPool:
    return WorkerPool(WorkQueue(engine, max_attempts=2, retry_delay=timedelta(0)), work,
                      instance=name, size=1, lease=lease, poll=SECOND / 5)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.slow
def test_a_long_action_keeps_its_lease_and_is_not_taken_over(engine: Engine, tmp_path: Path) -> None:
    """Apply takes 1.5 leases; the heartbeat renews it, so a second pool never claims the item."""
    queue = WorkQueue(engine)
    queue.enqueue([{"key": "slow", "kind": "append"}], now())
    slow = pool(engine, SigningWork(tmp_path, delay=3.0), "slow")
    other = pool(engine, SigningWork(tmp_path), "other")
    worker = threading.Thread(target=slow.work_one, args=("slow/0",))
    worker.start()
    while not read_events(tmp_path):  # the slow pool holds the claim
        threading.Event().wait(0.01)
    deadline = now() + 4 * SECOND
    while worker.is_alive() and now() < deadline:
        assert not other.work_one("other/0")
    worker.join()
    assert queue.counts()[DONE] == 1
    assert [e[:2] for e in read_events(tmp_path)] == [["start", "slow"], ["applied", "slow"]]


def test_failing_actions_are_retried_then_failed_and_audited(engine: Engine, tmp_path: Path) -> None:
    queue = WorkQueue(engine)
    queue.enqueue([{"key": "bad", "kind": "fail"}, {"key": "good", "kind": "append"}], now())
    workers = pool(engine, SigningWork(tmp_path), "w")
    while workers.work_one("w/0"):
        pass
    assert queue.counts() == {PENDING: 0, CLAIMED: 0, DONE: 1, FAILED: 1}
    assert Counter(e[1] for e in read_events(tmp_path) if e[0] == "start") == {"bad": 2, "good": 1}
    with session_scope(engine) as session:
        failed = audit.entries(session, action="service.action.failed")
    assert json.loads(failed[0].detail)["result"]["error"] == "RuntimeError: this action always fails"


def test_pools_started_as_threads_drain_the_queue_together_and_stop(engine: Engine,
                                                                      tmp_path: Path) -> None:
    queue = WorkQueue(engine)
    queue.enqueue([{"key": f"a{n}", "kind": "append"} for n in range(40)], now())
    pools = [pool(engine, SigningWork(tmp_path, delay=0.01), f"p{n}") for n in range(2)]
    for each in pools:
        each.start()
        each.wake()
    deadline = now() + 30 * SECOND
    while queue.counts()[DONE] < 40 and now() < deadline:
        threading.Event().wait(0.05)
    assert all(each.stop(5.0) for each in pools)
    assert queue.counts()[DONE] == 40
    applied = Counter(e[1] for e in read_events(tmp_path) if e[0] == "applied")
    assert len(applied) == 40 and set(applied.values()) == {1}
    assert sum(each.applied for each in pools) == 40 and all(each.applied for each in pools)


def test_a_worker_whose_claim_was_taken_over_does_not_record_a_result(engine: Engine,
                                                                       tmp_path: Path) -> None:
    """A skewed clock (ten minutes ahead) makes ``late`` take a live claim over; the fence holds."""
    queue = WorkQueue(engine)
    queue.enqueue([{"key": "x", "kind": "append"}], now())
    slow = pool(engine, SigningWork(tmp_path, delay=1.5), "slow", lease=3 * SECOND)
    late = WorkerPool(WorkQueue(engine), SigningWork(tmp_path), instance="late", size=1,
                      lease=3 * SECOND, poll=SECOND, clock=lambda: now() + timedelta(minutes=10))
    worker = threading.Thread(target=slow.work_one, args=("slow/0",))
    worker.start()
    while not read_events(tmp_path):
        threading.Event().wait(0.01)
    assert late.work_one("late/0")
    worker.join()
    assert (slow.applied, late.applied) == (0, 1)
    with session_scope(engine) as session:
        done = audit.entries(session, action="service.action.done")
    assert [json.loads(r.detail)["worker"] for r in done] == ["late/0"]
    assert Counter(e[1] for e in read_events(tmp_path) if e[0] == "applied") == {"x": 2}
