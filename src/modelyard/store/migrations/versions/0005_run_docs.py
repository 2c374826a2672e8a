"""`runs.params_json` and `runs.tags_json`: each run's params and tags as their REST JSON text, which
PostgreSQL's search pages read instead of the params and tags tables, and the triggers that keep them
(see store/sql/run_docs.py). Filled here from the tables on PostgreSQL in one UPDATE (a few seconds
per 100,000 runs with 15 params and tags each); SQLite gets the columns, NULL, and no triggers.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: nullable columns that triggers keep right,
#: whichever release writes.
backward_compatible = True

# run_docs.PARAMS_JSON / TAGS_JSON and trigger_ddl(), frozen with this revision.
_DOCUMENTS = {
    "params_json": """(SELECT '[' || string_agg('{"key":' || to_json(p.key)::text || ',"value":'
        || to_json(p.value)::text || '}', ',' ORDER BY p.key) || ']'
        FROM params p WHERE p.run_uuid = runs.run_uuid)""",
    "tags_json": """(SELECT '[' || string_agg('{"key":' || to_json(t.key)::text || ',"value":'
        || to_json(coalesce(t.value, ''))::text || '}', ',' ORDER BY t.key) || ']'
        FROM tags t WHERE t.run_uuid = runs.run_uuid)""",
}
_TABLES = {"params": "params_json", "tags": "tags_json"}
_EVENTS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))


def upgrade() -> None:
    op.add_column("runs", sa.Column("params_json", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("tags_json", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _TABLES.items():
        function = f"modelyard_refresh_{column}"
        op.execute(
            f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE runs SET {column} = {_DOCUMENTS[column]} WHERE run_uuid IN (SELECT run_uuid FROM changed_rows);
    RETURN NULL;
END $$"""
        )
        for event, rows in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_json_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {rows} TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    op.execute(
        f"UPDATE runs SET params_json = {_DOCUMENTS['params_json']}, tags_json = {_DOCUMENTS['tags_json']}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _TABLES.items():
            for event, _rows in _EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_json_{event.lower()} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS modelyard_refresh_{column}()")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("tags_json")
        batch.drop_column("params_json")
