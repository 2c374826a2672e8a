"""Run-search indexes for ordering by status and by user id (issue #21), PostgreSQL only.

`runs` gets (experiment_id, lifecycle_stage, <attribute>, start_time DESC NULLS LAST, run_uuid), as 0014
gave run name and end time: each value's runs are a range of the index in the tie-breaks' order, so a
page ordered by the attribute reads its values one at a time, each value's runs forward
(`store/tracking/sql_attribute_groups.py`), instead of sorting every run of the experiment
(`store/sql/schema.py`, ATTRIBUTE_ORDER_INDEXES). Built CONCURRENTLY outside the migration's transaction,
as 0011's and 0014's are: writes go on, an upgrade stopped half-way is resumed by running it again (an
index a stopped build left invalid is dropped and built again). SQLite: nothing (its searches sort).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

from modelyard.store.migrations.concurrently import create_index_concurrently

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: two more indexes it does not read.
backward_compatible = True

# (name, columns), frozen here (schema.ATTRIBUTE_ORDER_INDEXES).
_INDEXES = (
    ("idx_runs_experiment_stage_status",
     'experiment_id, lifecycle_stage, status COLLATE "C", start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
    ("idx_runs_experiment_stage_user",
     'experiment_id, lifecycle_stage, user_id COLLATE "C", start_time DESC NULLS LAST, run_uuid COLLATE "C"'),
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
