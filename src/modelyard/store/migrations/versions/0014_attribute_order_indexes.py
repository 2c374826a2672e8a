"""Run-search indexes for ordering by run name and by end time (issue #21), PostgreSQL only.

`runs` gets (experiment_id, lifecycle_stage, <attribute>, start_time DESC NULLS LAST, run_uuid): a page
ordered by the attribute is a range of one index read in order (ascending) or backwards (descending,
runs of equal value sorted), instead of a sort of every run of the experiment (`store/sql/schema.py`,
ATTRIBUTE_ORDER_INDEXES). Built CONCURRENTLY outside the migration's transaction, as 0011's are: writes
go on, an upgrade stopped half-way is resumed by running it again (an index a stopped build left invalid
is dropped and built again). SQLite: nothing (its searches sort; teams at scale run PostgreSQL).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: two more indexes it does not read.
backward_compatible = True

# (name, columns), frozen here (schema.ATTRIBUTE_ORDER_INDEXES).
_INDEXES = (
    ("idx_runs_experiment_stage_name",
     'experiment_id, lifecycle_stage, name COLLATE "C", start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
    ("idx_runs_experiment_stage_end",
     'experiment_id, lifecycle_stage, end_time, start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
)  # fmt: skip


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        for name, columns in _INDEXES:
            _create_concurrently(bind, name, columns)


def _create_concurrently(bind: sa.Connection, name: str, columns: str) -> None:
    valid = bind.exec_driver_sql(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %(name)s",
        {"name": name},
    ).scalar()
    if valid:
        return
    if valid is not None:  # left invalid by a build that was stopped
        bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY {name}")
    bind.exec_driver_sql(f"CREATE INDEX CONCURRENTLY {name} ON runs ({columns})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _columns in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
