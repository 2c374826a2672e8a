"""The delivery queue from the worker's side (claim, record an outcome) and the delivery log.

Claiming is one transaction that flips due rows to `sending`, counts the attempt and sets a lease
(`next_attempt_at` = now + lease) so no other worker takes them: on PostgreSQL the rows are picked
with `FOR UPDATE SKIP LOCKED`, so workers claiming together get disjoint rows without waiting; on
SQLite every write transaction begins IMMEDIATE, which serialises claims. An outcome is recorded only
while the row is still the same claim (status `sending`, same attempt number), so a worker whose
lease expired cannot overwrite the attempt that replaced it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from modelyard.entities import PagedList
from modelyard.exceptions import ModelyardException
from modelyard.store.search.paging import decode_position, next_keyset_page, query_fingerprint
from modelyard.store.sql.engine import READ_ONLY
from modelyard.store.sql.webhook_schema import SqlWebhook, SqlWebhookDelivery
from modelyard.store.webhooks.outbox import DELIVERED, FAILED, PENDING, SENDING, STATUSES
from modelyard.store.webhooks.subscriptions import not_found

MAX_PAGE = 1000
MAX_ERROR_CHARS = 1000
#: The longest wait between two attempts, whatever the backoff says.
MAX_BACKOFF_MS = 3_600_000


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    webhook_id: str
    event_id: str
    kind: str
    status: str
    attempts: int
    creation_time: int
    next_attempt_at: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    last_latency_ms: int | None = None
    delivered_time: int | None = None
    payload: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.delivery_id),
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "creation_timestamp": self.creation_time,
        }
        optional = {
            "next_attempt_timestamp": self.next_attempt_at if self.status in (PENDING, SENDING) else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "last_latency_ms": self.last_latency_ms,
            "delivered_timestamp": self.delivered_time,
            "payload": self.payload,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Delivery:
        return cls(
            delivery_id=int(d["id"]),
            webhook_id=d["webhook_id"],
            event_id=d["event_id"],
            kind=d["kind"],
            status=d["status"],
            attempts=int(d.get("attempts", 0)),
            creation_time=int(d.get("creation_timestamp", 0)),
            next_attempt_at=d.get("next_attempt_timestamp"),
            last_status_code=d.get("last_status_code"),
            last_error=d.get("last_error"),
            last_latency_ms=d.get("last_latency_ms"),
            delivered_time=d.get("delivered_timestamp"),
            payload=d.get("payload"),
        )

    @classmethod
    def from_row(cls, row: SqlWebhookDelivery) -> Delivery:
        return cls(
            delivery_id=row.delivery_id,
            webhook_id=row.webhook_id,
            event_id=row.event_id,
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            creation_time=row.creation_time,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            last_latency_ms=row.last_latency_ms,
            delivered_time=row.delivered_time,
            payload=row.payload,
        )


@dataclass(frozen=True)
class Claimed:
    """One attempt to make: what to send, where, and the key to sign it with."""

    delivery_id: int
    kind: str
    payload: str
    attempts: int
    url: str
    secret: str


# --- the worker's side -------------------------------------------------------------------------
def claim(engine: Engine, limit: int, lease_ms: int) -> list[Claimed]:
    """Take up to `limit` due deliveries (pending and due, or sending with an expired lease)."""
    now = _now_ms()
    due = or_(
        and_(SqlWebhookDelivery.status == PENDING, SqlWebhookDelivery.next_attempt_at <= now),
        and_(SqlWebhookDelivery.status == SENDING, SqlWebhookDelivery.next_attempt_at <= now),
    )
    picked = (
        select(SqlWebhookDelivery.delivery_id)
        .where(due)
        .order_by(SqlWebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # Idle polls read first, in a plain transaction: on SQLite the claim's write lock is taken only
    # when there is something to claim.
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        if session.scalars(select(SqlWebhookDelivery.delivery_id).where(due).limit(1)).first() is None:
            return []
    with Session(engine) as session, session.begin():
        ids = list(session.scalars(picked))
        if not ids:
            return []
        session.execute(
            update(SqlWebhookDelivery)
            .where(SqlWebhookDelivery.delivery_id.in_(ids))
            .values(status=SENDING, attempts=SqlWebhookDelivery.attempts + 1, next_attempt_at=now + lease_ms)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(
                SqlWebhookDelivery.delivery_id,
                SqlWebhookDelivery.kind,
                SqlWebhookDelivery.payload,
                SqlWebhookDelivery.attempts,
                SqlWebhook.url,
                SqlWebhook.secret,
            )
            .join(SqlWebhook, SqlWebhook.webhook_id == SqlWebhookDelivery.webhook_id)
            .where(SqlWebhookDelivery.delivery_id.in_(ids))
            .order_by(SqlWebhookDelivery.delivery_id)
        )
        return [Claimed(*row) for row in rows]


def backoff_ms(attempts: int, base_seconds: float) -> int:
    """Wait before attempt `attempts + 1`: base, 2 x base, 4 x base, ... capped at an hour."""
    return int(min(base_seconds * 1000 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_MS))


def record(
    engine: Engine,
    claimed: Claimed,
    *,
    status_code: int | None,
    error: str | None,
    latency_ms: int | None,
    max_attempts: int,
    backoff_seconds: float,
) -> str:
    """Store one attempt's outcome: delivered on a 2xx, else pending again after a backoff, or failed
    once `max_attempts` are used up. Returns the new status ('' if the claim was lost)."""
    now = _now_ms()
    ok = status_code is not None and 200 <= status_code < 300 and error is None
    if ok:
        values: dict[str, Any] = {"status": DELIVERED, "delivered_time": now, "last_error": None}
    elif claimed.attempts >= max_attempts:
        values = {"status": FAILED, "last_error": (error or f"HTTP {status_code}")[:MAX_ERROR_CHARS]}
    else:
        values = {
            "status": PENDING,
            "next_attempt_at": now + backoff_ms(claimed.attempts, backoff_seconds),
            "last_error": (error or f"HTTP {status_code}")[:MAX_ERROR_CHARS],
        }
    values.update(last_status_code=status_code, last_latency_ms=latency_ms)
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(SqlWebhookDelivery)
            .where(
                SqlWebhookDelivery.delivery_id == claimed.delivery_id,
                SqlWebhookDelivery.status == SENDING,
                SqlWebhookDelivery.attempts == claimed.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return str(values["status"]) if result.rowcount else ""  # type: ignore[attr-defined]


# --- the delivery log --------------------------------------------------------------------------
def list_deliveries(
    engine: Engine,
    webhook_id: str,
    status: str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> PagedList[Delivery]:
    """A webhook's deliveries, newest first, with each one's payload and last attempt's outcome."""
    if status is not None and status not in STATUSES:
        raise ModelyardException.invalid_parameter(f"status must be one of {', '.join(STATUSES)}.")
    if not 1 <= max_results <= MAX_PAGE:
        raise ModelyardException.invalid_parameter(f"max_results must be between 1 and {MAX_PAGE}.")
    fingerprint = query_fingerprint("webhook_deliveries", webhook_id, status)
    position = decode_position(page_token, fingerprint, ["int"])
    stmt = select(SqlWebhookDelivery).where(SqlWebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        stmt = stmt.where(SqlWebhookDelivery.status == status)
    if position.after is not None:
        stmt = stmt.where(SqlWebhookDelivery.delivery_id < position.after[0])
    stmt = stmt.order_by(SqlWebhookDelivery.delivery_id.desc()).offset(position.offset).limit(max_results + 1)
    with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
        if session.get(SqlWebhook, webhook_id) is None:
            raise not_found(webhook_id)
        rows = [Delivery.from_row(r) for r in session.scalars(stmt)]
    page, token = next_keyset_page(rows, max_results, fingerprint, lambda d: [d.delivery_id])
    return PagedList(page, token)


# --- keeping the log bounded -------------------------------------------------------------------
#: Rows deleted per statement (short transactions: the queue's writers never wait long).
PRUNE_BATCH = 5000
#: Only finished deliveries are pruned; pending and sending rows are the queue itself.
FINISHED = (DELIVERED, FAILED)


def prune(engine: Engine, keep_days: float, keep_rows: int, now_ms: int | None = None) -> int:
    """Delete finished deliveries older than `keep_days` and, per webhook, all but the newest
    `keep_rows` finished ones (0 turns either rule off); returns how many rows went. Run by every
    delivery worker now and then and by `modelyard gc`; idempotent, so several at once are harmless."""
    now = _now_ms() if now_ms is None else now_ms
    finished = SqlWebhookDelivery.status.in_(FINISHED)
    removed = 0
    if keep_days > 0:
        cutoff = now - int(keep_days * 86_400_000)
        removed += _delete_batches(engine, select(SqlWebhookDelivery.delivery_id).where(finished, SqlWebhookDelivery.creation_time < cutoff))
    if keep_rows > 0:
        with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
            webhook_ids = list(session.scalars(select(SqlWebhook.webhook_id)))
        for webhook_id in webhook_ids:
            mine = and_(finished, SqlWebhookDelivery.webhook_id == webhook_id)
            with Session(engine.execution_options(**READ_ONLY)) as session, session.begin():
                # The newest row past the cap (the (webhook_id, delivery_id) index walks to it).
                boundary = session.scalars(
                    select(SqlWebhookDelivery.delivery_id).where(mine)
                    .order_by(SqlWebhookDelivery.delivery_id.desc()).offset(keep_rows).limit(1)
                ).first()  # fmt: skip
            if boundary is not None:
                removed += _delete_batches(
                    engine, select(SqlWebhookDelivery.delivery_id).where(mine, SqlWebhookDelivery.delivery_id <= boundary)
                )
    return removed


def _delete_batches(engine: Engine, ids: Any) -> int:
    removed = 0
    while True:
        with Session(engine) as session, session.begin():
            batch = list(session.scalars(ids.limit(PRUNE_BATCH)))
            if batch:
                session.execute(
                    delete(SqlWebhookDelivery)
                    .where(SqlWebhookDelivery.delivery_id.in_(batch))
                    .execution_options(synchronize_session=False)
                )
        removed += len(batch)
        if len(batch) < PRUNE_BATCH:
            return removed
