"""`metric_series_cache`: big metrics' whole-history chart series (store/tracking/metric_series.py),
and `latest_metrics.history_version`, which every metric write of a key counts (on PostgreSQL) so that
a stored series knows whether it is still its history's. The table starts empty: series are stored as
charts load them. Adding a NOT NULL column with a constant default rewrites nothing (PostgreSQL 11+).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: a table it never reads, a column with a default.
#: (While it writes, it does not count writes in history_version: a point it adds below a key's latest
#: one leaves that key's stored series out of date until the key's next write; docs/operations.md.)
backward_compatible = True


def upgrade() -> None:
    op.add_column(
        "latest_metrics", sa.Column("history_version", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_table(
        "metric_series_cache",
        sa.Column(
            "run_uuid", sa.String(32), sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("x_axis", sa.String(16), nullable=False),
        sa.Column("max_points", sa.Integer(), nullable=False),
        sa.Column("history_version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "key", "x_axis", "max_points", name="metric_series_cache_pk"),
    )


def downgrade() -> None:
    op.drop_table("metric_series_cache")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.drop_column("history_version")
