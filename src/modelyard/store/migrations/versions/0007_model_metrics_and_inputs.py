"""MLflow 3 links kept by the tracking API: metrics logged against a logged model (with the dataset
they were computed on) and run -> logged model inputs.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: new tables only.
backward_compatible = True


def upgrade() -> None:
    op.create_table(
        "logged_model_metrics",
        sa.Column(
            "model_id",
            sa.String(64),
            sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "run_uuid", sa.String(32), sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("dataset_name", sa.String(500), nullable=True),
        sa.Column("dataset_digest", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint(
            "model_id", "run_uuid", "key", "step", "timestamp", "value", name="logged_model_metric_pk"
        ),
    )
    op.create_table(
        "run_model_inputs",
        sa.Column(
            "run_uuid", sa.String(32), sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "model_id", name="run_model_input_pk"),
    )


def downgrade() -> None:
    op.drop_table("run_model_inputs")
    op.drop_table("logged_model_metrics")
