"""Worker threads: claim an item, keep its lease alive while applying it, record the result.

A worker never holds more than one claim, and claims only right before applying, so stopping the
service abandons at most one in-flight action per worker; its lease then expires and another
instance takes it over (apply is idempotent, so finishing a half-done action is safe).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from lifecycle.clock import Clock, utc_now
from lifecycle.errors import LeaseLostError, LifecycleError
from lifecycle.service.work import WorkSource
from lifecycle.store.queue import Claim, WorkQueue

log = logging.getLogger(__name__)




class Heartbeat:
    """Renews one claim every third of the lease until stopped; notes when the claim was lost."""

    def __init__(self, queue: WorkQueue, claim: Claim, lease: timedelta, clock: Clock) -> None:
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(queue, claim, lease, clock),
                                        name=f"lease-{claim.id}", daemon=True)

    def _run(self, queue: WorkQueue, claim: Claim, lease: timedelta, clock: Clock) -> None:
        while not self._stop.wait(lease.total_seconds() / 3):
            try:
                if not queue.renew(claim, lease, clock()):
                    self.lost = True
                    log.warning("lost the lease of %s", claim.key)
                    return
            except LifecycleError as exc:  # database briefly away: try again next beat
                log.warning("cannot renew the lease of %s: %s", claim.key, exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class WorkerPool:
    """``size`` threads that drain the queue, then sleep until woken or ``poll`` passes."""

    def __init__(self, queue: WorkQueue, source: WorkSource, *, instance: str, size: int,
                 lease: timedelta, poll: timedelta, clock: Clock = utc_now,
                 on_drained: Callable[[], object] | None = None) -> None:
        self.queue = queue
        self.source = source
        self.instance = instance
        self.lease = lease
        self.poll = poll
        self.clock = clock
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self.busy = 0
        self.applied = 0
        self.on_drained = on_drained
        self._worked = False  # applied something since the queue was last found empty
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(f"{instance}/{n}",),
                                         name=f"worker-{n}", daemon=True) for n in range(size)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        """New work was queued: stop sleeping."""
        self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Let each worker finish its current action; True if all stopped within ``timeout``."""
        self.stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)

    def _loop(self, worker: str) -> None:
        while not self.stopping.is_set():
            try:
                worked = self.work_one(worker)
                if not worked and self._drained():
                    continue  # the callback may have queued follow-up work
            except LifecycleError as exc:  # the database is away: back off, the leases protect us
                log.error("worker %s: %s", worker, exc)
                worked = False
            if not worked:
                self._wake.wait(self.poll.total_seconds())
                self._wake.clear()

    def _drained(self) -> bool:
        """The queue ran dry after some work: call ``on_drained`` once (an effect can make more due)."""
        with self._lock:
            worked, self._worked = self._worked, False
        if not worked or self.on_drained is None or self.stopping.is_set():
            return False
        self.on_drained()
        return True

    def work_one(self, worker: str) -> bool:
        """Claim and apply one item; False when nothing is claimable."""
        claim = self.queue.claim(worker, self.lease, self.clock())
        if claim is None:
            return False
        if self.stopping.is_set():
            self.queue.release(claim, self.clock())
            return False
        with self._lock:
            self.busy += 1
        try:
            self._apply(claim)
        finally:
            with self._lock:
                self.busy -= 1
        return True

    def _apply(self, claim: Claim) -> None:
        action = claim.action
        fields = {"key": claim.key, "kind": action.get("kind"), "subject": action.get("subject"),
                  "worker": claim.worker, "attempt": claim.attempts}
        log.info("applying %s", claim.key, extra={"fields": fields})
        with Heartbeat(self.queue, claim, self.lease, self.clock) as beat:
            try:
                result = self.source.apply(action, self.clock())
            except Exception as exc:  # any failure of one action must not stop the worker
                state = self._record_failure(claim, f"{type(exc).__name__}: {exc}")
                log.error("action %s failed (%s): %s", claim.key, state, exc,
                          extra={"fields": {**fields, "state": state}})
                return
        if beat.lost:
            log.warning("not recording %s: its lease was taken over", claim.key)
            return
        try:
            self.queue.complete(claim, dict(result), self.clock())
        except LeaseLostError as exc:
            log.warning("%s", exc)
            return
        with self._lock:
            self.applied += 1
            self._worked = True
        log.info("done %s", claim.key, extra={"fields": {**fields, "result": dict(result)}})

    def _record_failure(self, claim: Claim, error: str) -> str:
        try:
            return self.queue.fail(claim, error, self.clock())
        except LeaseLostError:
            return "taken over"
