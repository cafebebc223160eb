"""The audit log: one row per state-changing action; ``subject`` says what, JSON ``detail`` how."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lifecycle.store.models import AuditRecord


def record(session: Session, at: datetime, action: str, subject: str, **detail: Any) -> None:
    """Add a row in the caller's transaction, so it commits or rolls back with the change."""
    session.add(AuditRecord(at=at, action=action, subject=subject,
                            detail=json.dumps(detail, sort_keys=True, default=str)))


def entries(session: Session, *, action: str | None = None) -> list[AuditRecord]:
    query = select(AuditRecord).order_by(col(AuditRecord.id))
    if action is not None:
        query = query.where(AuditRecord.action == action)
    return list(session.exec(query))
