"""APScheduler 3 with its job store in the lifecycle database: when scan, plan and CRL jobs run.

Jobs are persistent so that a job missed while every instance was down runs once at start:
``coalesce=True`` folds all missed runs into one and ``misfire_grace_time=None`` runs it however
late. A restart keeps each job's stored next run time (re-adding it would forget the outage); only
a changed interval is written back. APScheduler's store is not multi-instance safe (two instances
can fire one job), so every run first claims its slot in ``service_jobs`` and the queue's claims
keep each action single anyway. (:class:`SlotExecutor` uses APScheduler 3's executor hook
``_do_submit_job``; the dependency is pinned below 4.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from lifecycle.config import ServeSettings
from lifecycle.store.queue import JOBSTORE_TABLE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    id: str
    interval: timedelta


def job_specs(settings: ServeSettings) -> list[JobSpec]:
    return [JobSpec("scan", settings.scan_interval), JobSpec("full-scan", settings.full_scan_interval),
            JobSpec("plan", settings.plan_interval), JobSpec("crl", settings.crl_interval),
            JobSpec("publish", settings.publish_interval)]


JobRunner = Callable[[str, datetime], Mapping[str, Any] | None]
_runner: JobRunner | None = None


def run_job(job_id: str, scheduled: datetime | None = None) -> None:
    """The function every stored job points at (stored by name, so it must be module-level)."""
    if _runner is None:
        log.error("job %s fired with no service running in this process", job_id)
        return
    _runner(job_id, scheduled or datetime.now(UTC))


class SlotExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """Passes each run the time it was scheduled for: that time names the run across instances.

    Two instances that fire the same job fire it for the same scheduled time, so the first to
    record that time wins (``start_job_run``). The stored job is untouched; a copy carries the time.
    """

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        run = Job.__new__(Job)
        run.__setstate__(job.__getstate__())
        run._scheduler, run._jobstore_alias = job._scheduler, job._jobstore_alias
        run.kwargs = {**job.kwargs, "scheduled": run_times[-1]}
        super()._do_submit_job(run, run_times)


def _log_submission(event: JobSubmissionEvent) -> None:
    now = datetime.now(UTC)
    times = [t.astimezone(UTC) for t in event.scheduled_run_times]
    late = (now - times[0]).total_seconds() if times else 0.0
    log.info("job %s due at %s", event.job_id, ", ".join(t.isoformat() for t in times),
             extra={"fields": {"event": "job.submitted", "job": event.job_id,
                               "scheduled": [t.isoformat() for t in times],
                               "late_seconds": round(late, 3)}})


def start_scheduler(engine: Engine, specs: list[JobSpec], runner: JobRunner,
                    now: datetime) -> BackgroundScheduler:
    """Start the scheduler on the shared job store and make sure each job exists with its interval."""
    global _runner  # one service per process: the stored jobs find it here
    _runner = runner
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
        executors={"default": SlotExecutor(max(2, len(specs)))},
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        timezone=UTC,
    )
    scheduler.add_listener(_log_submission, EVENT_JOB_SUBMITTED)
    scheduler.start(paused=True)
    for spec in specs:
        trigger = IntervalTrigger(seconds=spec.interval.total_seconds(), timezone=UTC)
        job = scheduler.get_job(spec.id)
        if job is None:
            how, due = "added", now
            scheduler.add_job(run_job, trigger, args=[spec.id], id=spec.id, name=spec.id,
                              next_run_time=now, replace_existing=True)
        elif job.trigger.interval != spec.interval or job.args != (spec.id,):
            how, due = "rescheduled", min(job.next_run_time or now, now + spec.interval)
            scheduler.modify_job(spec.id, trigger=trigger, args=[spec.id], next_run_time=due)
        else:
            how, due = "kept", job.next_run_time or now
        log.info("job %s %s: every %s, next run %s", spec.id, how, spec.interval, due.isoformat(),
                 extra={"fields": {"event": "job.ensured", "job": spec.id, "how": how,
                                   "next_run": due.isoformat(), "overdue": due < now}})
    scheduler.resume()
    return scheduler


def stop_scheduler(scheduler: BackgroundScheduler) -> None:
    """Stop firing jobs; running ones are waited for by the service, within its bound."""
    global _runner
    if scheduler.running:
        scheduler.shutdown(wait=False)
    _runner = None
