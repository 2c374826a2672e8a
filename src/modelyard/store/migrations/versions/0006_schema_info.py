"""`schema_info`: what the database says about its own schema to releases older than it.

A release that finds the database at a revision it does not know (a newer release migrated it) reads
the row `oldest_compatible_revision` here: if its own newest revision is that one or descends from it,
the schema is one it can use (every migration since was additive), so it runs without migrating
instead of failing. `modelyard.store.sql.migrate.upgrade` writes the row after every upgrade.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: a new table only.
backward_compatible = True


def upgrade() -> None:
    op.create_table(
        "schema_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schema_info")
