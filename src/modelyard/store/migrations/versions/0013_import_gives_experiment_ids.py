"""The experiment_id triggers of params, tags and latest_metrics skip a transaction that gives the
column itself (`store/sql/experiment_ids.py`, GIVEN): the bulk import writes ~26 such rows per run,
and the trigger's lookup of each row's run was ~15% of PostgreSQL's time for an import. Every other
writer (this release's, the one before, a COPY) still gets the trigger. PostgreSQL only.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: the same triggers, firing for all its writes.
backward_compatible = True

TABLES = ("params", "tags", "latest_metrics")  # experiment_ids.TABLES, frozen here
_FUNCTION = "modelyard_set_experiment_id"  # experiment_ids.FUNCTION
_GIVEN = "modelyard.experiment_ids_given"  # experiment_ids.GIVEN


def _recreate(table: str, when: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {table}_experiment_id ON {table}")
    op.execute(
        f"CREATE TRIGGER {table}_experiment_id BEFORE INSERT ON {table} FOR EACH ROW {when}"
        f"EXECUTE FUNCTION {_FUNCTION}()"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _recreate(table, f"WHEN (current_setting('{_GIVEN}', true) IS DISTINCT FROM 'on') ")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _recreate(table, "")
