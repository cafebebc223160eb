"""One ``serve`` instance: scheduler, worker pool, HTTP endpoints, and a bounded, clean stop.

Several instances may run against one PostgreSQL database; they share nothing but the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from lifecycle.clock import Clock, utc_now
from lifecycle.config import ServeSettings
from lifecycle.service.scheduler import JobId, JobSpec, job_specs, start_scheduler, stop_scheduler
from lifecycle.service.work import WorkSource
from lifecycle.service.workers import WorkerPool
from lifecycle.store import audit, migrate
from lifecycle.store.db import session_scope
from lifecycle.store.queue import WorkQueue, finish_job_run, start_job_run

if TYPE_CHECKING:
    from lifecycle.service.operations import Operations

log = logging.getLogger(__name__)


def instance_name() -> str:
    """Host, pid and a random suffix: unique even when a pid is reused after a crash."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def check_schema(url: str) -> None:
    """Refuse to start on an old schema: migrations are the operator's step, not a race."""
    migrate.require_head(url)


class Service:
    """Runs the jobs of ``settings`` against ``source``; ``start`` returns at once, ``stop`` ends it."""

    def __init__(self, engine: Engine, source: WorkSource, settings: ServeSettings, *,
                 instance: str | None = None, clock: Clock = utc_now,
                 operations: Operations | None = None) -> None:
        self.engine = engine
        self.source = source
        self.settings = settings
        self.instance = instance or instance_name()
        self.clock = clock
        self.queue = WorkQueue(engine, max_attempts=settings.max_attempts)
        # applying can make more work due (a key rotation makes re-signing due): plan again as
        # soon as the queue runs dry instead of waiting for the next plan interval
        self.pool = WorkerPool(self.queue, source, instance=self.instance, size=settings.workers,
                               lease=settings.lease, poll=settings.poll_interval, clock=clock,
                               on_drained=lambda: self.run_job(JobId.PLAN, self.clock()))
        self.operations = operations
        specs = job_specs(settings)
        if operations is not None and operations.notifier is not None:
            specs.append(JobSpec(JobId.NOTIFY, operations.config.notify.interval))
        self.specs = {spec.id: spec for spec in specs}
        self.started = clock()
        self._running_jobs = 0
        self._lock = threading.Lock()
        self._scheduler: Any = None

    def start(self) -> None:
        self.pool.start()
        self._scheduler = start_scheduler(self.engine, list(self.specs.values()), self.run_job,
                                          self.clock())
        log.info("service %s started", self.instance, extra={"fields": {
            "event": "service.started", "instance": self.instance, "workers": self.settings.workers}})

    def _job(self, job_id: str, now: datetime) -> Mapping[str, Any]:
        if job_id in (JobId.SCAN, JobId.FULL_SCAN):
            return dict(self.source.scan(now, job_id == JobId.FULL_SCAN))
        if job_id == JobId.CRL:
            return dict(self.source.refresh_crls(now))
        if job_id == JobId.PUBLISH:
            return dict(self.source.publish(now))
        if job_id == JobId.NOTIFY:
            assert self.operations is not None
            return dict(self.operations.notify(now))
        actions = self.source.plan_actions(now)
        queued = self.queue.enqueue(actions, now)
        self.pool.wake()
        return {"planned": len(actions), "queued": queued}

    def run_job(self, job_id: str, scheduled: datetime) -> Mapping[str, Any] | None:
        """One scheduled run: claim its slot (no instance repeats it), run it, audit it."""
        if job_id not in self.specs or self.pool.stopping.is_set():
            return None
        now = self.clock()
        if not start_job_run(self.engine, job_id, self.instance, scheduled, now):
            log.info("job %s skipped: another instance ran the run due at %s", job_id,
                     scheduled.isoformat())
            return None
        with self._lock:
            self._running_jobs += 1
        try:
            result: Mapping[str, Any] = self._job(job_id, now)
            action = "service.job"
        except Exception as exc:  # a failing job is logged and audited; the next run tries again
            result, action = {"error": f"{type(exc).__name__}: {exc}"}, "service.job.failed"
            log.error("job %s failed: %s", job_id, exc)
        finally:
            with self._lock:
                self._running_jobs -= 1
        with session_scope(self.engine) as session:
            finish_job_run(session.connection(), job_id, self.clock(), ok=action == "service.job")
            audit.record(session, self.clock(), action, job_id, instance=self.instance,
                         scheduled=scheduled.isoformat(), started=now.isoformat(), result=dict(result))
        log.info("job %s ran", job_id, extra={"fields": {"event": action, "job": job_id,
                                                         "result": dict(result)}})
        return result

    def health(self) -> dict[str, Any]:
        """What /healthz reports: this instance, its workers, the shared queue and, when
        something needs an operator (failed actions, overdue jobs, stale material, tampered
        images), ``degraded`` with the reasons."""
        found = self.operations.findings() if self.operations is not None else []
        status = "stopping" if self.pool.stopping.is_set() else "degraded" if found else "ok"
        report: dict[str, Any] = {
            "status": status, "instance": self.instance, "started": self.started.isoformat(),
            "workers": self.settings.workers, "busy": self.pool.busy,
            "applied": self.pool.applied, "queue": self.queue.counts()}
        if found:
            report["reasons"] = [f.summary for f in found]
            report["conditions"] = [f.to_dict() for f in found]
        return report

    def stop(self, timeout: float) -> bool:
        """Stop taking work, let running actions and jobs finish; True if all did within ``timeout``."""
        deadline = time.monotonic() + timeout
        if self._scheduler is not None:
            stop_scheduler(self._scheduler)
        clean = self.pool.stop(timeout)
        while self._running_jobs and time.monotonic() < deadline:
            time.sleep(0.05)
        clean = clean and not self._running_jobs
        log.info("service %s stopped%s", self.instance, "" if clean else " (abandoning running work)",
                 extra={"fields": {"event": "service.stopped", "clean": clean}})
        return clean
