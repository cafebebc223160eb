"""The audit log: one row per state-changing action; ``subject`` says what, JSON ``detail`` how."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from lifecycle.store.models import AuditRecord


def _values(at: datetime, action: str, subject: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"at": at, "action": action, "subject": subject,
            "detail": json.dumps(detail, sort_keys=True, default=str)}


def record(session: Session, at: datetime, action: str, subject: str, **detail: Any) -> None:
    """Add a row in the caller's transaction, so it commits or rolls back with the change."""
    session.add(AuditRecord(**_values(at, action, subject, detail)))


def record_in(conn: Connection, at: datetime, action: str, subject: str, **detail: Any) -> None:
    """:func:`record` for Core code that holds a connection rather than a session."""
    conn.execute(insert(AuditRecord.__table__).values(  # type: ignore[attr-defined]
        **_values(at, action, subject, detail)))


def entries(session: Session, *, action: str | None = None) -> list[AuditRecord]:
    query = select(AuditRecord).order_by(col(AuditRecord.id))
    if action is not None:
        query = query.where(AuditRecord.action == action)
    return list(session.exec(query))
