"""Model registry: registered models, versions, their tags, and aliases.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: new tables only.
backward_compatible = True


def _model_fk() -> sa.ForeignKey:
    return sa.ForeignKey("registered_models.name", onupdate="CASCADE", ondelete="CASCADE")


def _version_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        onupdate="CASCADE",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(5000), nullable=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("name", sa.String(256), _model_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(5000), nullable=True),
        sa.PrimaryKeyConstraint("name", "key", name="registered_model_tag_pk"),
    )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(256), _model_fk(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(5000), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("current_stage", sa.String(20), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("storage_location", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("run_link", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_message", sa.String(500), nullable=True),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("name", "version", name="model_version_pk"),
    )
    op.create_index("idx_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(5000), nullable=True),
        sa.PrimaryKeyConstraint("name", "version", "key", name="model_version_tag_pk"),
        _version_fk(),
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="registered_model_alias_pk"),
        _version_fk(),
    )


def downgrade() -> None:
    for table in (
        "registered_model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(table)
