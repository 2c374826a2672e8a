"""Run-search indexes led by experiment, and the default order's index (issues #21, #15).

PostgreSQL: `params`, `tags` and `latest_metrics` get `experiment_id`, set on every new row by a BEFORE
INSERT trigger (`store/sql/experiment_ids.py`) and filled here for the rows that exist; their
(key, value) indexes are replaced by (experiment_id, key, value) ones, and `runs` gets an index in the
default search's order (start_time DESC NULLS LAST, run_uuid). SQLite gets the columns (NULL) and
keeps its indexes.

Built to run beside a serving release (docs/operations.md, "Upgrades and migrations"):
1. in the migration's transaction, the columns (nullable, no default: no table rewrite) and the
   trigger, so every row written from then on, by any release, has its experiment_id;
2. then outside any transaction (Alembic's autocommit block, which commits what came before):
   the existing rows filled in batches of BATCH_RUNS runs, each batch its own short transaction (the
   run_docs triggers skip these updates, which change no key or value); the new indexes built
   CONCURRENTLY (writes go on); the old ones dropped CONCURRENTLY; statistics, ANALYZE.
An upgrade stopped half-way is resumed by running it again: every step checks what is done (an
index a stopped CONCURRENTLY build left invalid is dropped and built again).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelyard.store.migrations.batches import in_run_batches
from modelyard.store.migrations.concurrently import create_index_concurrently

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: nullable columns a trigger fills, other indexes
#: (its searches read the new ones less well: a rollback is slower, not wrong).
backward_compatible = True

TABLES = ("params", "tags", "latest_metrics")
BATCH_RUNS = 5_000
_SKIP_DOCUMENTS = "modelyard.unchanged_run_docs"  # run_docs.UNCHANGED_DOCUMENTS, frozen here
_FUNCTION = "modelyard_set_experiment_id"  # experiment_ids.FUNCTION
_PREFIX = "left(value, 200)"  # experiment_ids.VALUE_PREFIX

# New indexes (name, table, columns) and the ones they replace (name, table, columns), frozen here.
_NEW_INDEXES = (
    ("idx_runs_experiment_stage_order", "runs",
     'experiment_id, lifecycle_stage, start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
    ("idx_params_experiment_key_value", "params", f"experiment_id, key, {_PREFIX} text_pattern_ops"),
    ("idx_tags_experiment_key_value", "tags", f"experiment_id, key, {_PREFIX} text_pattern_ops"),
    ("idx_latest_metrics_experiment_key_value", "latest_metrics", "experiment_id, key, value"),
)  # fmt: skip
_OLD_INDEXES = (
    ("idx_runs_experiment_stage_start", "runs", "experiment_id, lifecycle_stage, start_time"),
    ("idx_params_key_run", "params", "key, run_uuid"),
    ("idx_params_key_value_md5", "params", "key, md5(value)"),
    ("idx_tags_key", "tags", "key"),
    ("idx_latest_metrics_key_value", "latest_metrics", "key, value"),
)
_NEW_STATISTICS = (
    ("params_key_value_prefix", f"CREATE STATISTICS params_key_value_prefix (mcv) ON key, ({_PREFIX}) FROM params"),
    ("tags_key_value_prefix", f"CREATE STATISTICS tags_key_value_prefix (mcv) ON key, ({_PREFIX}) FROM tags"),
)  # fmt: skip
_OLD_STATISTICS = (
    "CREATE STATISTICS params_key_value_md5 (dependencies, mcv) ON key, value, md5(value) FROM params"
)

# run_docs' trigger functions (0005's, plus the skip), frozen here.
_DOCUMENTS = {
    "params_json": """(SELECT '[' || string_agg('{"key":' || to_json(p.key)::text || ',"value":'
        || to_json(p.value)::text || '}', ',' ORDER BY p.key) || ']'
        FROM params p WHERE p.run_uuid = runs.run_uuid)""",
    "tags_json": """(SELECT '[' || string_agg('{"key":' || to_json(t.key)::text || ',"value":'
        || to_json(coalesce(t.value, ''))::text || '}', ',' ORDER BY t.key) || ']'
        FROM tags t WHERE t.run_uuid = runs.run_uuid)""",
}


def _documents_function(column: str, skip: bool) -> str:
    check = (
        f"""    IF current_setting('{_SKIP_DOCUMENTS}', true) = 'on' THEN
        RETURN NULL;
    END IF;
"""
        if skip
        else ""
    )
    return f"""CREATE OR REPLACE FUNCTION modelyard_refresh_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{check}    UPDATE runs SET {column} = {_DOCUMENTS[column]} WHERE run_uuid IN (SELECT run_uuid FROM changed_rows);
    RETURN NULL;
END $$"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for table in TABLES:
            op.add_column(table, sa.Column("experiment_id", sa.Integer(), nullable=True))
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS experiment_id integer")
    op.execute(
        f"""CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.experiment_id := (SELECT r.experiment_id FROM runs r WHERE r.run_uuid = NEW.run_uuid);
    RETURN NEW;
END $$"""
    )
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_experiment_id ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_experiment_id BEFORE INSERT ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()"
        )
    for column in _DOCUMENTS:
        op.execute(_documents_function(column, skip=True))
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        _fill_experiment_ids(bind)
        for name, table, columns in _NEW_INDEXES:
            create_index_concurrently(bind, name, table, columns)
        for name, _table, _columns in _OLD_INDEXES:
            bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        bind.exec_driver_sql("DROP STATISTICS IF EXISTS params_key_value_md5")
        for name, ddl in _NEW_STATISTICS:
            if (
                bind.exec_driver_sql(f"SELECT 1 FROM pg_statistic_ext WHERE stxname = '{name}'").first()
                is None
            ):
                bind.exec_driver_sql(ddl)
        bind.exec_driver_sql("ANALYZE runs, params, tags, latest_metrics")


def _fill_experiment_ids(bind: sa.Connection) -> None:
    """Every existing row's experiment_id, BATCH_RUNS runs (in run_uuid order) per transaction."""
    statements = [
        f"UPDATE {table} t SET experiment_id = r.experiment_id FROM runs r "
        "WHERE r.run_uuid = t.run_uuid AND t.run_uuid > %(after)s {upper} AND t.experiment_id IS NULL"
        for table in TABLES
    ]
    in_run_batches(bind, statements, BATCH_RUNS, _SKIP_DOCUMENTS)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name, _table, _columns in _NEW_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        for name, table, columns in _OLD_INDEXES:
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
        for name, _ddl in _NEW_STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
        op.execute(_OLD_STATISTICS)
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_experiment_id ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
        for column in _DOCUMENTS:
            op.execute(_documents_function(column, skip=False))
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("experiment_id")
