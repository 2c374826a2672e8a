"""MLflow 3 logged models: models, their tags and params, and run -> model outputs.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: new tables only.
backward_compatible = True


def _model_fk() -> sa.ForeignKey:
    return sa.ForeignKey("logged_models.model_id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column(
            "experiment_id",
            sa.Integer(),
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.Text(), nullable=False),
        sa.Column("creation_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("model_type", sa.String(500), nullable=True),
        sa.Column("source_run_id", sa.String(32), nullable=True),
        sa.Column("status_message", sa.Text(), nullable=True),
    )
    op.create_index(
        "idx_logged_models_experiment_created", "logged_models", ["experiment_id", "creation_timestamp_ms"]
    )
    op.create_index("idx_logged_models_source_run", "logged_models", ["source_run_id"])
    op.create_table(
        "logged_model_tags",
        sa.Column("model_id", sa.String(64), _model_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", name="logged_model_tag_pk"),
    )
    op.create_table(
        "logged_model_params",
        sa.Column("model_id", sa.String(64), _model_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", name="logged_model_param_pk"),
    )
    op.create_table(
        "run_model_outputs",
        sa.Column(
            "run_uuid", sa.String(32), sa.ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("model_id", sa.String(64), _model_fk(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "model_id", name="run_model_output_pk"),
    )


def downgrade() -> None:
    for table in ("run_model_outputs", "logged_model_params", "logged_model_tags", "logged_models"):
        op.drop_table(table)
