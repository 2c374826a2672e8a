"""An index that serves `params.<key> = '<value>'` searches on PostgreSQL: (key, md5(value)).

A btree entry cannot hold a 6,000-character value, so the index holds its md5 and the search
compares md5(value) (to use the index) and then value itself (so a collision cannot match). SQLite
has no md5() function; its searches keep `idx_params_key_run`.

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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("idx_params_key_value_md5", "params", ["key", sa.text("md5(value)")])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("idx_params_key_value_md5", table_name="params")
