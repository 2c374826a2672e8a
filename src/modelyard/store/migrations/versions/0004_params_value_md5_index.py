"""An index that serves `params.<key> = '<value>'` searches on PostgreSQL: (key, md5(value)),
and statistics that let the planner estimate such a search.

A btree entry cannot hold a 6,000-character value, so the index holds its md5 and the search
compares md5(value) (to use the index) and then value itself (so a collision cannot match). The
extended statistics on (key, value, md5(value)) keep the planner from multiplying the selectivities
of the key and the two value tests (see schema.PARAMS_STATISTICS). SQLite has no md5() function; its
searches keep `idx_params_key_run`.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: an index and planner statistics only.
backward_compatible = True


STATISTICS = "params_key_value_md5"  # schema.PARAMS_STATISTICS, frozen with this revision


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("idx_params_key_value_md5", "params", ["key", sa.text("md5(value)")])
        op.execute(
            f"CREATE STATISTICS {STATISTICS} (dependencies, mcv) ON key, value, md5(value) FROM params"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
        op.drop_index("idx_params_key_value_md5", table_name="params")
