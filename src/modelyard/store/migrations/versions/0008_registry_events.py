"""`registry_events`: the registry's append-only history (model, version, stage, alias, tag and
deploy events), written in the same transaction as the change each records.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: a new table only (it writes no events).
backward_compatible = True


def upgrade() -> None:
    op.create_table(
        "registry_events",
        sa.Column(
            "event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("event_time", sa.BigInteger, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(256)),
        sa.Column("endpoint", sa.String(256)),
        sa.Column("actor", sa.String(256)),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("idx_registry_events_model", "registry_events", ["model_name", "event_id"])
    op.create_index("idx_registry_events_endpoint", "registry_events", ["endpoint", "event_id"])


def downgrade() -> None:
    op.drop_index("idx_registry_events_endpoint", "registry_events")
    op.drop_index("idx_registry_events_model", "registry_events")
    op.drop_table("registry_events")
