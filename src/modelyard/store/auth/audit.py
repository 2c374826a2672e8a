"""The auth audit log: every change to users, groups, tokens and grants, written in the change's own
transaction (a change that fails leaves no event; one that commits always has one)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.entities.auth import Actor, AuditEvent
from modelyard.store.sql.auth_schema import SqlAuditEvent
from modelyard.store.sql.engine import READ_ONLY

MAX_PAGE = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def record(session: Session, actor: Actor, action: str, target: str, **details: Any) -> None:
    """Add one event to the session's transaction. `details` must hold no secret."""
    session.add(
        SqlAuditEvent(
            event_time=now_ms(),
            actor=actor.name[:256],
            action=action,
            target=target[:512],
            details=json.dumps(details, sort_keys=True) if details else None,
            address=(actor.address or None) and actor.address[:64],
        )
    )


def list_events(engine: Engine, max_results: int = 100, before_id: int | None = None) -> list[AuditEvent]:
    """Newest first; page with `before_id` (the last id of the previous page)."""
    query = (
        select(SqlAuditEvent)
        .order_by(SqlAuditEvent.event_id.desc())
        .limit(max(1, min(max_results, MAX_PAGE)))
    )
    if before_id is not None:
        query = query.where(SqlAuditEvent.event_id < before_id)
    with Session(engine.execution_options(**READ_ONLY)) as session:
        return [
            AuditEvent(
                event_id=row.event_id,
                event_time=row.event_time,
                actor=row.actor,
                action=row.action,
                target=row.target,
                details=json.loads(row.details) if row.details else {},
                address=row.address,
            )
            for row in session.scalars(query)
        ]
