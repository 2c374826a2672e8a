"""Webhook tables, on the tracking schema's `Base`: the subscriptions and their durable delivery queue.

`webhook_deliveries` is both the queue the delivery worker claims from and the delivery log a user
reads: one row per (event, webhook), written in the transaction of the change that caused the event,
so an event is queued exactly when its change commits. `next_attempt_at` is when a `pending` row is
due, and while a row is `sending` it is the end of the claimer's lease: a worker that died mid-send
leaves a row that becomes claimable again then (delivery is at-least-once; receivers dedupe by id).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.sql.schema import Base


class SqlWebhook(Base):
    __tablename__ = "webhooks"

    webhook_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    #: JSON array of the event kinds it receives (`modelyard.store.webhooks.kinds`).
    events: Mapped[str] = mapped_column(Text, nullable=False)
    #: The HMAC key; returned to the user once, when it is made (create, or update with rotation).
    secret: Mapped[str] = mapped_column(String(256), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    description: Mapped[str | None] = mapped_column(String(5000))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_updated_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SqlWebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker's claim: due rows by status and time.
        Index("idx_webhook_deliveries_due", "status", "next_attempt_at"),
        # A webhook's delivery log, newest first.
        Index("idx_webhook_deliveries_webhook", "webhook_id", "delivery_id"),
    )

    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    webhook_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False
    )
    #: The same for every webhook that gets one event.
    event_id: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The JSON body sent (signed as these exact bytes, UTF-8).
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    #: pending -> sending -> delivered | pending (retry) | failed (attempts used up).
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    delivered_time: Mapped[int | None] = mapped_column(BigInteger)
