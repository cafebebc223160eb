"""APScheduler 3 with its job store in the lifecycle database: when scan, plan and CRL jobs run.

Jobs are persistent so that a job missed while every instance was down runs once at start:
``coalesce=True`` folds all missed runs into one and ``misfire_grace_time=None`` runs it however
late. A restart keeps each job's stored next run time (re-adding it would forget the outage); only
a changed interval is written back. APScheduler's store is not multi-instance safe (two instances
can fire one job), so every run first claims its slot in ``service_jobs`` and the queue's claims
keep each action single anyway. (:class:`SlotExecutor` uses APScheduler 3's executor hook
``_do_submit_job``; the dependency is pinned below 4.)

The store is :class:`JsonJobStore`: APScheduler's own SQL store pickles jobs, so anyone who can
write the table could run code in ``serve``. Ours stores an interval, a start and a next run time
as JSON and rebuilds every job around :func:`run_job` with fixed options; a row it cannot read
(an old pickled one included) is never unpickled: it is dropped and the job re-added, due now.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from lifecycle.clock import utc_now
from lifecycle.config import ServeSettings
from lifecycle.store.queue import JOBSTORE_TABLE

log = logging.getLogger(__name__)


class JobId(enum.StrEnum):
    """The scheduled jobs of ``serve`` (their ids are stored in the job store and the audit)."""

    SCAN = "scan"
    FULL_SCAN = "full-scan"
    PLAN = "plan"
    CRL = "crl"
    PUBLISH = "publish"
    NOTIFY = "notify"


@dataclass(frozen=True)
class JobSpec:
    id: str
    interval: timedelta


def job_specs(settings: ServeSettings) -> list[JobSpec]:
    return [JobSpec(JobId.SCAN, settings.scan_interval),
            JobSpec(JobId.FULL_SCAN, settings.full_scan_interval),
            JobSpec(JobId.PLAN, settings.plan_interval), JobSpec(JobId.CRL, settings.crl_interval),
            JobSpec(JobId.PUBLISH, settings.publish_interval)]


JobRunner = Callable[[str, datetime], Mapping[str, Any] | None]
_runner: JobRunner | None = None


def run_job(job_id: str, scheduled: datetime | None = None) -> None:
    """The function every stored job points at (stored by name, so it must be module-level)."""
    if _runner is None:
        log.error("job %s fired with no service running in this process", job_id)
        return
    _runner(job_id, scheduled or utc_now())


RUN_JOB = f"{__name__}:run_job"
JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}
STATE_VERSION = 1


def job_state(job: Job) -> bytes:
    """The JSON a job is stored as; only interval jobs of :func:`run_job` on their own id."""
    trigger = job.trigger
    if job.func_ref != RUN_JOB or tuple(job.args) != (job.id,) or not isinstance(
            trigger, IntervalTrigger):
        raise ValueError(f"job {job.id!r} is not an interval job of {RUN_JOB} and cannot be stored")
    return json.dumps({
        "version": STATE_VERSION, "name": job.name,
        "interval": trigger.interval.total_seconds(),
        "start": trigger.start_date.astimezone(UTC).isoformat(),
        "next_run": job.next_run_time.astimezone(UTC).isoformat() if job.next_run_time else None,
    }, sort_keys=True).encode()


def job_from_state(job_id: str, data: bytes) -> dict[str, Any]:
    """The APScheduler state of a stored job; raises ValueError for anything but our JSON."""
    doc = json.loads(data)  # bytes that are not JSON (a pickle) raise ValueError here
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        raise ValueError(f"job {job_id!r}: not a version {STATE_VERSION} job state")
    interval, start, next_run = doc.get("interval"), doc.get("start"), doc.get("next_run")
    if not isinstance(interval, int | float) or not interval > 0 or not isinstance(start, str) or (
            next_run is not None and not isinstance(next_run, str)):
        raise ValueError(f"job {job_id!r}: malformed job state")
    trigger = IntervalTrigger(seconds=float(interval), start_date=datetime.fromisoformat(start),
                              timezone=UTC)
    return {"version": 1, "id": job_id, "func": RUN_JOB, "trigger": trigger,
            "executor": "default", "args": (job_id,), "kwargs": {},
            "name": str(doc.get("name") or job_id), **JOB_DEFAULTS,
            "next_run_time": datetime.fromisoformat(next_run) if next_run else None}


class JsonJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQL job store on the same table, with JSON rows instead of pickles."""

    def _reconstitute_job(self, data: bytes) -> Job:
        raise NotImplementedError("rows are read with their id (see _job)")  # never pickle.loads

    def _job(self, job_id: str, data: bytes) -> Job:
        job = Job.__new__(Job)
        job.__setstate__(job_from_state(job_id, data) | {"jobstore": self})
        job._scheduler, job._jobstore_alias = self._scheduler, self._alias
        return job

    def lookup_job(self, job_id: str) -> Job | None:
        found = self._get_jobs(self.jobs_t.c.id == job_id)
        return found[0] if found else None

    def _get_jobs(self, *conditions: Any) -> list[Job]:
        query = self.jobs_t.select().order_by(self.jobs_t.c.next_run_time)
        for condition in conditions:
            query = query.where(condition)
        jobs, unreadable = [], []
        with self.engine.begin() as conn:
            for row in conn.execute(query):
                try:
                    jobs.append(self._job(row.id, row.job_state))
                except (ValueError, TypeError) as exc:
                    unreadable.append(row.id)
                    log.warning("dropping stored job %s, whose state is not ours (%s); it is "
                                "re-added due now", row.id, exc,
                                extra={"fields": {"event": "job.unreadable", "job": row.id}})
            if unreadable:
                conn.execute(self.jobs_t.delete().where(self.jobs_t.c.id.in_(unreadable)))
        return jobs

    def add_job(self, job: Job) -> None:
        row = {"id": job.id, "next_run_time": _timestamp(job.next_run_time),
               "job_state": job_state(job)}
        try:
            with self.engine.begin() as conn:
                conn.execute(self.jobs_t.insert().values(**row))
        except IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(self.jobs_t.update().where(self.jobs_t.c.id == job.id).values(
                next_run_time=_timestamp(job.next_run_time), job_state=job_state(job)))
        if done.rowcount == 0:
            raise JobLookupError(job.id)


def _timestamp(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


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
    now = utc_now()
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
        jobstores={"default": JsonJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
        executors={"default": SlotExecutor(max(2, len(specs)))},
        job_defaults=JOB_DEFAULTS,
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
