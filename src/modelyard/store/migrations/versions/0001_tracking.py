"""Tracking tables: experiments, runs, params, tags, metrics, latest metrics, run inputs; and the
experiment `0` named `Default` that the mlflow client expects to exist from the start.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_DOUBLE = sa.Float(precision=53)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_uuid", ondelete="CASCADE")


def upgrade() -> None:
    experiments = op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("artifact_location", sa.Text(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=True),
        sa.Column("last_update_time", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column(
            "experiment_id",
            sa.Integer(),
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(5000), nullable=True),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="experiment_tag_pk"),
    )
    op.create_table(
        "runs",
        sa.Column("run_uuid", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(250), nullable=True),
        sa.Column(
            "experiment_id",
            sa.Integer(),
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("deleted_time", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
    )
    op.create_index(
        "idx_runs_experiment_stage_start", "runs", ["experiment_id", "lifecycle_stage", "start_time"]
    )
    op.create_table(
        "params",
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(6000), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "key", name="param_pk"),
    )
    op.create_index("idx_params_key_run", "params", ["key", "run_uuid"])
    op.create_table(
        "tags",
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(8000), nullable=True),
        sa.PrimaryKeyConstraint("run_uuid", "key", name="tag_pk"),
    )
    op.create_index("idx_tags_key", "tags", ["key"])
    op.create_table(
        "metrics",
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", _DOUBLE, nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "key", "step", "timestamp", "value", name="metric_pk"),
    )
    op.create_table(
        "latest_metrics",
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", _DOUBLE, nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "key", name="latest_metric_pk"),
    )
    op.create_index("idx_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "run_inputs",
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "digest", name="run_input_pk"),
    )

    now = int(time.time() * 1000)
    # The store fills artifact_location on first use, when it knows the configured artifact root.
    op.bulk_insert(
        experiments,
        [
            {
                "experiment_id": 0,
                "name": "Default",
                "artifact_location": None,
                "lifecycle_stage": "active",
                "creation_time": now,
                "last_update_time": now,
            }
        ],
    )


def downgrade() -> None:
    for table in ("run_inputs", "latest_metrics", "metrics", "tags", "params", "runs", "experiment_tags"):
        op.drop_table(table)
    op.drop_table("experiments")
