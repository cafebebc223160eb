"""Sent notifications: one row per condition, so every instance agrees what was already said.

A condition is announced once per state (its summary's digest). ``note`` upserts the conditions
that hold: a new one, or one whose state changed, becomes ``pending``; rows of conditions that
no longer hold are deleted (so a recurrence is announced again). ``claim`` takes one due row
with a conditional ``UPDATE`` that stamps a token and a lease, as the work queue does, so two
instances never both send it; ``sent`` and ``retry`` need that token.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Column, Integer, Text, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from lifecycle.store import audit
from lifecycle.store.db import UTCDateTime


class NotifyState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Gave up after max attempts (until the condition changes)."""


class NotificationRecord(SQLModel, table=True):
    __tablename__ = "notifications"

    id: int | None = Field(default=None, sa_type=BigInteger().with_variant(Integer(), "sqlite"),
                           primary_key=True)
    condition: str = Field(unique=True, max_length=255)
    state: str = Field(max_length=64)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=16)
    attempts: int = 0
    next_attempt: datetime = Field(sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


_n = NotificationRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Pending:
    id: int
    condition: str
    summary: str
    attempts: int
    token: str


def digest(summary: str) -> str:
    return hashlib.sha256(summary.encode()).hexdigest()[:32]


def note(engine: Engine, conditions: Iterable[tuple[str, str]], now: datetime) -> None:
    """Record the (condition, summary) pairs that hold now; forget the ones that do not."""
    rows = {key: {"condition": key, "state": digest(summary), "summary": summary,
                  "status": NotifyState.PENDING, "attempts": 0, "next_attempt": now,
                  "first_seen": now} for key, summary in conditions}
    with engine.begin() as conn:
        if rows:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(_n)
            changed = stmt.excluded.state != _n.c.state
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["condition"], where=changed,
                set_={"state": stmt.excluded.state, "summary": stmt.excluded.summary,
                      "status": NotifyState.PENDING, "attempts": 0, "next_attempt": now,
                      "claim_token": None, "lease_until": None, "error": None}),
                list(rows.values()))
        conn.execute(delete(_n).where(_n.c.condition.not_in(list(rows))))


def claim(engine: Engine, lease: timedelta, now: datetime) -> Pending | None:
    """Take one notification that is due (pending, or its sender's lease ran out)."""
    due = and_(_n.c.status == NotifyState.PENDING, _n.c.next_attempt <= now,
               or_(_n.c.lease_until.is_(None), _n.c.lease_until < now))
    pick = select(_n.c.id).where(due).order_by(_n.c.next_attempt, _n.c.id).limit(1)
    if engine.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    token = uuid.uuid4().hex
    stmt = (update(_n).where(_n.c.id == pick.scalar_subquery(), due)
            .values(claim_token=token, lease_until=now + lease, attempts=_n.c.attempts + 1)
            .returning(_n.c.id, _n.c.condition, _n.c.summary, _n.c.attempts))
    with engine.begin() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else Pending(row.id, row.condition, row.summary, row.attempts, token)


def finish(engine: Engine, item: Pending, now: datetime, *, error: str | None, retry_at: datetime | None,
           channels: list[str]) -> bool:
    """Record the outcome of sending ``item`` (with its audit row); False if the claim was lost."""
    if error is None:
        values = {"status": NotifyState.SENT, "sent_at": now, "error": None}
        action = "notify.sent"
    elif retry_at is not None:
        values = {"next_attempt": retry_at, "error": error}
        action = "notify.retry"
    else:
        values = {"status": NotifyState.FAILED, "error": error}
        action = "notify.failed"
    with engine.begin() as conn:
        done = conn.execute(update(_n).where(_n.c.id == item.id, _n.c.claim_token == item.token)
                            .values(claim_token=None, lease_until=None, **values)).rowcount
        if done:
            audit.record_in(conn, now, action, item.condition, summary=item.summary,
                            attempt=item.attempts, channels=channels, error=error)
    return bool(done)


def sent(engine: Engine) -> list[NotificationRecord]:
    with engine.connect() as conn:
        return [NotificationRecord(**row._mapping) for row in conn.execute(
            select(_n).order_by(_n.c.id))]
