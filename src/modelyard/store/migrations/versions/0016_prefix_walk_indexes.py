"""Run-search indexes for a param's or tag's `LIKE 'prefix%'` that many values share (issue #21),
PostgreSQL only.

`params` and `tags` get (experiment_id, key, start_time DESC NULLS LAST, run_uuid, substr(value, 1, 200)
text_pattern_ops) (`substr`, not the value index's `left`: `=` and IN cannot use it, so the planner keeps
their exact ranges): a key's rows in the default order with the value's prefix in the index, so a page
filtered by a prefix of many values (a prefix of ids) reads the key's entries in its order and tests
the prefix on each entry without reading the table, instead of probing every run's param
(`store/tracking/sql_prefix_heads.prefix_walk_in_page_order`). Built CONCURRENTLY outside the
migration's transaction, as 0014's are: writes go on, an upgrade stopped half-way is resumed by running
it again. SQLite: nothing.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

from modelyard.store.migrations.concurrently import create_index_concurrently

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: two more indexes it does not read.
backward_compatible = True

# (name, table, columns), frozen here (store/sql/schema.py).
_INDEXES = (
    ("idx_params_experiment_key_start_value", "params",
     'experiment_id, key, start_time DESC NULLS LAST, run_uuid COLLATE "C", substr(value, 1, 200) text_pattern_ops'),
    ("idx_tags_experiment_key_start_value", "tags",
     'experiment_id, key, start_time DESC NULLS LAST, run_uuid COLLATE "C", substr(value, 1, 200) text_pattern_ops'),
)  # fmt: skip


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        for name, table, columns in _INDEXES:
            create_index_concurrently(bind, name, table, columns)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _table, _columns in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
