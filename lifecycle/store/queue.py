"""The work queue the service instances share: one row per planned action, claimed under a lease.

Why a table and not the scheduler: APScheduler's job store is not safe with several instances (a
job can fire in two of them), so the guarantee "no action done twice" lives here. An action is
queued once per idempotency key (``INSERT ... ON CONFLICT DO NOTHING``: planning it again, from
any instance, changes nothing, and a done action is never queued again). A worker claims one item
with a single conditional ``UPDATE`` (PostgreSQL picks the row with ``FOR UPDATE SKIP LOCKED``,
SQLite serialises writers), which stamps a fresh claim token and a lease. A worker that dies
simply stops renewing: once the lease has passed, the item is claimable again. Only the holder of
the current token can complete an item, so a worker whose lease was taken over cannot record a
second result; the completion and its audit row commit together.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    Unicode,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel
from sqlmodel import select as model_select

from lifecycle.errors import LeaseLostError, StoreError
from lifecycle.store import audit
from lifecycle.store.db import UTCDateTime, session_scope


class WorkState(enum.StrEnum):
    """Where a work item is: waiting (or waiting to retry), leased by a worker, or finished."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


PENDING, CLAIMED, DONE, FAILED = WorkState.PENDING, WorkState.CLAIMED, WorkState.DONE, WorkState.FAILED
STATES = tuple(WorkState)
JOBSTORE_TABLE = "apscheduler_jobs"


class WorkItemRecord(SQLModel, table=True):
    """A planned action (its JSON as planned) and where it stands."""

    __tablename__ = "work_items"
    # counting items by state and kind (/metrics, /healthz) reads this index only
    __table_args__ = (Index("ix_work_items_state_kind", "state", "kind"),)

    id: int | None = Field(default=None, sa_type=BigInteger().with_variant(Integer(), "sqlite"),
                           primary_key=True)
    key: str = Field(unique=True, max_length=255)
    kind: str = Field(max_length=64)
    subject: str = Field(max_length=1024)
    action: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default=PENDING, max_length=16, index=True)
    due: datetime = Field(sa_type=UTCDateTime, index=True)
    available_at: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=255)
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = Field(default=0)
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ServiceJobRecord(SQLModel, table=True):
    """The last run of each scheduled job, shared by all instances (one run per scheduled time)."""

    __tablename__ = "service_jobs"

    job_id: str = Field(primary_key=True, max_length=64)
    last_scheduled: datetime = Field(sa_type=UTCDateTime)
    last_started: datetime = Field(sa_type=UTCDateTime)
    last_instance: str = Field(max_length=255)
    runs: int = Field(default=0)
    last_success: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_failure: datetime | None = Field(default=None, sa_type=UTCDateTime)


# APScheduler's SQLAlchemyJobStore table, declared here so `db upgrade` creates it and the schema
# check sees it; the definition mirrors apscheduler.jobstores.sqlalchemy (3.x) exactly.
apscheduler_jobs = Table(
    JOBSTORE_TABLE,
    SQLModel.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

_items = WorkItemRecord.__table__  # type: ignore[attr-defined]
_jobs = ServiceJobRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claim:
    """One claimed item: the action to apply and the token that proves the claim is still ours."""

    id: int
    key: str
    action: dict[str, Any]
    token: str
    worker: str
    attempts: int
    lease_until: datetime


def _insert_ignoring_conflicts(conn: Connection, table: Table, rows: list[dict[str, Any]],
                               index: str) -> int:
    """Insert rows, skipping those whose ``index`` value exists; returns how many were new."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=[index])
    # rowcount of an executemany is -1 on psycopg: count the rows RETURNING gives back instead
    return len(conn.execute(stmt.returning(table.c[index]), rows).all())


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise StoreError(f"action {what} must be a non-empty string, not {value!r}")
    return value


def _time(value: Any, what: str) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, datetime) or parsed.utcoffset() is None:
        raise StoreError(f"action {what} must be a timezone-aware time, not {value!r}")
    return parsed


class WorkQueue:
    """Enqueue, claim, renew, complete: the only ways the service touches ``work_items``."""

    def __init__(self, engine: Engine, *, max_attempts: int = 5,
                 retry_delay: timedelta = timedelta(seconds=30)) -> None:
        self.engine = engine
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay

    def enqueue(self, actions: Iterable[Mapping[str, Any]], now: datetime) -> int:
        """Queue each action unless its key was ever queued; returns how many were new."""
        rows: dict[str, dict[str, Any]] = {}
        for action in actions:
            key = _text(action.get("key"), "key")
            due = _time(action.get("due", now), "due")
            rows.setdefault(key, {
                "key": key, "kind": _text(action.get("kind"), "kind"),
                "subject": str(action.get("subject", ""))[:1024],
                "action": json.dumps(dict(action), sort_keys=True, default=str),
                "state": PENDING, "due": due,
                "available_at": _time(action.get("not_before", due), "not_before"),
                "attempts": 0, "created_at": now, "updated_at": now,
            })
        if not rows:
            return 0
        with self.engine.begin() as conn:
            new = _insert_ignoring_conflicts(conn, _items, list(rows.values()), "key")
            return new + self._requeue_changed(conn, rows, now)

    def _requeue_changed(self, conn: Connection, rows: Mapping[str, Mapping[str, Any]],
                         now: datetime) -> int:
        """A failed item planned again with different inputs (its planned JSON changed: a new
        due time, reason or signer set) goes back to the queue with fresh attempts."""
        failed: dict[str, str] = dict(conn.execute(select(_items.c.key, _items.c.action).where(
            _items.c.state == FAILED, _items.c.key.in_(list(rows)))).all())
        changed = [key for key, action in failed.items() if action != rows[key]["action"]]
        for key in changed:
            row = rows[key]
            conn.execute(update(_items).where(_items.c.key == key, _items.c.state == FAILED).values(
                state=PENDING, action=row["action"], due=row["due"], available_at=now,
                attempts=0, claimed_by=None, claim_token=None, lease_until=None, updated_at=now))
            audit.record_in(conn, now, "service.action.requeued", key[:255],
                            reason="planned again with changed inputs")
        return len(changed)

    def items(self, states: Iterable[WorkState], limit: int = 1000) -> list[WorkItemRecord]:
        """Items in ``states``, most urgent first."""
        with session_scope(self.engine) as session:
            return list(session.exec(model_select(WorkItemRecord)
                                     .where(_items.c.state.in_(list(states)))
                                     .order_by(_items.c.due, _items.c.id).limit(limit)))

    def retry(self, ids: Iterable[int] | None, now: datetime, *, by: str) -> list[str]:
        """Put failed items (``ids``, or every failed one when None) back in the queue with fresh
        attempts; returns their keys. An item that is not failed is left alone, so retrying twice
        (or from two shells) queues it once, and the queue's claims apply it once."""
        where = [_items.c.state == FAILED]
        if ids is not None:
            where.append(_items.c.id.in_(list(ids)))
        with session_scope(self.engine) as session:
            conn = session.connection()
            keys = [key for (key,) in conn.execute(
                update(_items).where(*where).values(
                    state=PENDING, available_at=now, attempts=0, claimed_by=None, claim_token=None,
                    lease_until=None, updated_at=now).returning(_items.c.key))]
            for key in keys:
                audit.record(session, now, "service.action.retried", key[:255], by=by)
        return sorted(keys)

    def claim(self, worker: str, lease: timedelta, now: datetime) -> Claim | None:
        """Take the most urgent claimable item (pending and available, or its lease expired)."""
        claimable = or_(
            and_(_items.c.state == PENDING, _items.c.available_at <= now),
            and_(_items.c.state == CLAIMED, _items.c.lease_until < now),
        )
        pick = select(_items.c.id).where(claimable).order_by(_items.c.due, _items.c.id).limit(1)
        if self.engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        token = uuid.uuid4().hex
        stmt = (
            update(_items)
            .where(_items.c.id == pick.scalar_subquery())
            .values(state=CLAIMED, claimed_by=worker, claim_token=token, lease_until=now + lease,
                    attempts=_items.c.attempts + 1, updated_at=now)
            .returning(_items.c.id, _items.c.key, _items.c.action, _items.c.attempts)
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return Claim(row.id, row.key, json.loads(row.action), token, worker, row.attempts, now + lease)

    def _fenced(self, claim: Claim) -> Any:
        """The WHERE clause that only the current lease holder satisfies."""
        return and_(_items.c.id == claim.id, _items.c.claim_token == claim.token,
                    _items.c.state == CLAIMED)

    def renew(self, claim: Claim, lease: timedelta, now: datetime) -> bool:
        """Extend the lease of a long item; False when it was lost (expired and taken over)."""
        with self.engine.begin() as conn:
            done = conn.execute(update(_items).where(self._fenced(claim))
                                .values(lease_until=now + lease, updated_at=now)).rowcount
        return bool(done)

    def complete(self, claim: Claim, result: Mapping[str, Any], now: datetime) -> None:
        """Mark the item done and audit the action with its result, in one transaction."""
        self._finish(claim, DONE, result, now, "service.action.done")

    def fail(self, claim: Claim, error: str, now: datetime) -> WorkState:
        """Record a failed attempt: retried later, or ``failed`` for good after max_attempts."""
        final = claim.attempts >= self.max_attempts
        self._finish(claim, FAILED if final else PENDING, {"error": error}, now,
                     "service.action.failed" if final else "service.action.retry")
        return FAILED if final else PENDING

    def release(self, claim: Claim, now: datetime) -> None:
        """Give an untouched claim back (shutdown before apply started)."""
        with self.engine.begin() as conn:
            conn.execute(update(_items).where(self._fenced(claim)).values(
                state=PENDING, claimed_by=None, claim_token=None, lease_until=None,
                attempts=_items.c.attempts - 1, updated_at=now))

    def _finish(self, claim: Claim, state: WorkState, result: Mapping[str, Any], now: datetime,
                audit_action: str) -> None:
        values: dict[str, Any] = {"state": state, "result": json.dumps(dict(result), sort_keys=True,
                                                                      default=str),
                                  "lease_until": None, "claim_token": None, "updated_at": now}
        if state == PENDING:
            values["available_at"] = now + self.retry_delay * claim.attempts
        with session_scope(self.engine) as session:
            changed = session.connection().execute(
                update(_items).where(self._fenced(claim)).values(**values)).rowcount
            if not changed:
                raise LeaseLostError(f"work item {claim.key}: the lease of {claim.worker} expired and "
                                     "another worker took the item over; its result was not recorded")
            audit.record(session, now, audit_action, claim.key[:255], planned=claim.action,
                         result=dict(result), worker=claim.worker, attempts=claim.attempts)

    def counts(self) -> dict[str, int]:
        """Items per state (every state present, zero when empty)."""
        with self.engine.connect() as conn:
            found: dict[str, int] = dict(conn.execute(select(_items.c.state, func.count())
                                      .group_by(_items.c.state)).all())
        return {state: int(found.get(state, 0)) for state in STATES}

    def item(self, key: str) -> WorkItemRecord | None:
        with session_scope(self.engine) as session:
            return session.exec(model_select(WorkItemRecord).where(WorkItemRecord.key == key)).first()


def start_job_run(engine: Engine, job_id: str, instance: str, scheduled: datetime,
                  now: datetime) -> bool:
    """Claim the run of ``job_id`` due at ``scheduled`` for ``instance``; False if it was taken.

    APScheduler instances sharing one job store can fire the same run together: the first to
    move ``last_scheduled`` forward wins, the others skip (the queue protects the actions anyway).
    """
    row = {"job_id": job_id, "last_scheduled": scheduled, "last_started": now,
           "last_instance": instance, "runs": 1}
    with engine.begin() as conn:
        if _insert_ignoring_conflicts(conn, _jobs, [row], "job_id"):
            return True
        moved = conn.execute(
            update(_jobs).where(_jobs.c.job_id == job_id, _jobs.c.last_scheduled < scheduled)
            .values(last_scheduled=scheduled, last_started=now, last_instance=instance,
                    runs=_jobs.c.runs + 1)).rowcount
    return bool(moved)


def finish_job_run(conn: Connection, job_id: str, now: datetime, *, ok: bool) -> None:
    """Stamp the end of a run of ``job_id``: its success (or failure) time, for /metrics; in the
    caller's transaction (the one that audits the run)."""
    conn.execute(update(_jobs).where(_jobs.c.job_id == job_id)
                 .values({"last_success" if ok else "last_failure": now}))


__all__ = [
    "CLAIMED",
    "DONE",
    "FAILED",
    "PENDING",
    "Claim",
    "ServiceJobRecord",
    "WorkItemRecord",
    "WorkQueue",
    "WorkState",
    "apscheduler_jobs",
    "finish_job_run",
    "start_job_run",
]
