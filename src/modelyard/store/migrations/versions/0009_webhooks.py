"""`webhooks` and `webhook_deliveries`: webhook subscriptions and their durable delivery queue/log.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: new tables only (it queues no deliveries).
backward_compatible = True


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("description", sa.String(5000)),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "delivery_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "webhook_id",
            sa.String(32),
            sa.ForeignKey("webhooks.webhook_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(1000)),
        sa.Column("last_latency_ms", sa.Integer),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("delivered_time", sa.BigInteger),
    )
    op.create_index("idx_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("idx_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "delivery_id"])


def downgrade() -> None:
    op.drop_index("idx_webhook_deliveries_webhook", "webhook_deliveries")
    op.drop_index("idx_webhook_deliveries_due", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
