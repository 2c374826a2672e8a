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

from alembic import op

from modelyard.store.migrations.concurrently import create_index_concurrently

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
            create_index_concurrently(bind, name, "runs", columns)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _columns in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
