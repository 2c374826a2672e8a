"""Run-search indexes whose reads follow the page (issue #21): ordering by status and user id, and a
rare param or tag value's runs in the default order.

1. `runs` gets (experiment_id, lifecycle_stage, <attribute>, start_time DESC NULLS LAST, run_uuid) for
   status and user_id, as 0014 gave run name and end time: each value's runs are a range of the index
   in the tie-breaks' order, so a page ordered by the attribute reads its values one at a time, each
   value's runs forward (`store/tracking/sql_attribute_groups.py`), instead of sorting every run of the
   experiment (`store/sql/schema.py`, ATTRIBUTE_ORDER_INDEXES).
2. `params` and `tags` get their run's `start_time` (`store/sql/experiment_ids.py`: set on every new row
   by the BEFORE INSERT trigger that sets experiment_id, now START_FUNCTION), filled here for the rows
   that exist, and their (experiment_id, key, value prefix) indexes are replaced by (experiment_id, key,
   value prefix, start_time DESC NULLS LAST, run_uuid) ones: a filter on a rare value reads its runs in
   the page's order and stops at the page (`store/tracking/sql_anchors.py`).

Built to run beside a serving release, as 0011 (docs/operations.md, "Upgrades and migrations"): in the
migration's transaction the columns (nullable, no default: no table rewrite) and the triggers' new
function, so every row written from then on has its start_time; then outside any transaction the
existing rows filled in batches of BATCH_RUNS runs (each its own short transaction; the run_docs
triggers skip these updates), the indexes built CONCURRENTLY and the old ones dropped CONCURRENTLY,
ANALYZE. An upgrade stopped half-way is resumed by running it again: every step checks what is done.
SQLite gets the columns (NULL) and nothing else (its searches sort; teams at scale run PostgreSQL).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelyard.store.migrations.batches import in_run_batches
from modelyard.store.migrations.concurrently import create_index_concurrently

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: nullable columns a trigger fills, indexes it does
#: not read or that serve its searches as the ones they replace did (led by the same columns).
backward_compatible = True

TABLES = ("params", "tags")  # experiment_ids.START_TABLES, frozen here
BATCH_RUNS = 5_000
_SKIP_DOCUMENTS = "modelyard.unchanged_run_docs"  # run_docs.UNCHANGED_DOCUMENTS
_GIVEN = "modelyard.experiment_ids_given"  # experiment_ids.GIVEN
_OLD_FUNCTION = "modelyard_set_experiment_id"  # experiment_ids.FUNCTION (latest_metrics keeps it)
_FUNCTION = "modelyard_set_experiment_id_start_time"  # experiment_ids.START_FUNCTION
_FUNCTION_DDL = """CREATE OR REPLACE FUNCTION modelyard_set_experiment_id_start_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.experiment_id, r.start_time INTO NEW.experiment_id, NEW.start_time FROM runs r
    WHERE r.run_uuid = NEW.run_uuid;
    RETURN NEW;
END $$"""  # experiment_ids.FUNCTIONS[START_FUNCTION]
_PREFIX = "left(value, 200)"  # experiment_ids.VALUE_PREFIX

# (name, table, columns), frozen here (schema.ATTRIBUTE_ORDER_INDEXES, SqlParam's and SqlTag's).
_INDEXES = (
    ("idx_runs_experiment_stage_status", "runs",
     'experiment_id, lifecycle_stage, status COLLATE "C", start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
    ("idx_runs_experiment_stage_user", "runs",
     'experiment_id, lifecycle_stage, user_id COLLATE "C", start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
    ("idx_params_experiment_key_value_start", "params",
     f'experiment_id, key, {_PREFIX} text_pattern_ops, start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
    ("idx_tags_experiment_key_value_start", "tags",
     f'experiment_id, key, {_PREFIX} text_pattern_ops, start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
)  # fmt: skip
#: The indexes the new key/value ones replace (0011's), and their columns.
_OLD_INDEXES = (
    ("idx_params_experiment_key_value", "params", f"experiment_id, key, {_PREFIX} text_pattern_ops"),
    ("idx_tags_experiment_key_value", "tags", f"experiment_id, key, {_PREFIX} text_pattern_ops"),
)


def _trigger(table: str, function: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {table}_experiment_id ON {table}")
    op.execute(
        f"CREATE TRIGGER {table}_experiment_id BEFORE INSERT ON {table} FOR EACH ROW "
        f"WHEN (current_setting('{_GIVEN}', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION {function}()"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for table in TABLES:
            op.add_column(table, sa.Column("start_time", sa.BigInteger(), nullable=True))
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS start_time bigint")
    op.execute(_FUNCTION_DDL)
    for table in TABLES:
        _trigger(table, _FUNCTION)
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        _fill_start_times(bind)
        for name, table, columns in _INDEXES:
            create_index_concurrently(bind, name, table, columns)
        for name, _table, _columns in _OLD_INDEXES:
            bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        bind.exec_driver_sql("ANALYZE params, tags")


def _fill_start_times(bind: sa.Connection) -> None:
    """Every existing row's start_time (its run has one), BATCH_RUNS runs (in run_uuid order) per
    transaction."""
    statements = [
        f"UPDATE {table} t SET start_time = r.start_time FROM runs r "
        "WHERE r.run_uuid = t.run_uuid AND t.run_uuid > %(after)s {upper} AND t.start_time IS NULL AND r.start_time IS NOT NULL"
        for table in TABLES
    ]
    in_run_batches(bind, statements, BATCH_RUNS, _SKIP_DOCUMENTS)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name, _table, _columns in _INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        for name, table, columns in _OLD_INDEXES:
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
        for table in TABLES:
            _trigger(table, _OLD_FUNCTION)
        op.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("start_time")
