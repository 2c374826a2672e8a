"""Users, groups, grants, tokens, sessions, the auth audit log and failed-login counters.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
#: The previous release keeps working on this schema: new tables only.
backward_compatible = True

_EVENT_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(256), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "auth_groups",
        sa.Column("group_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("workspace", sa.String(256), nullable=False),
        sa.Column("description", sa.String(5000)),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("workspace", "name", name="uq_auth_groups_name"),
    )
    op.create_table(
        "auth_group_members",
        sa.Column("membership_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "group_id", sa.Integer, sa.ForeignKey("auth_groups.group_id", ondelete="CASCADE"), nullable=False
        ),
        sa.UniqueConstraint("user_id", "group_id", name="uq_auth_group_members"),
    )
    op.create_index("idx_auth_group_members_group", "auth_group_members", ["group_id"])
    op.create_table(
        "auth_user_grants",
        sa.Column("grant_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(256), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.UniqueConstraint("user_id", "resource_type", "resource_id", name="uq_auth_user_grants"),
    )
    op.create_index("idx_auth_user_grants_resource", "auth_user_grants", ["resource_type", "resource_id"])
    op.create_table(
        "auth_group_grants",
        sa.Column("grant_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "group_id", sa.Integer, sa.ForeignKey("auth_groups.group_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_pattern", sa.String(256), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.UniqueConstraint("group_id", "resource_type", "resource_pattern", name="uq_auth_group_grants"),
    )
    op.create_index(
        "idx_auth_group_grants_resource", "auth_group_grants", ["resource_type", "resource_pattern"]
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("expiry_time", sa.BigInteger),
        sa.Column("last_used_time", sa.BigInteger),
        sa.Column("revoked_time", sa.BigInteger),
    )
    op.create_index("idx_auth_tokens_user", "auth_tokens", ["user_id"])
    op.create_table(
        "auth_sessions",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("expiry_time", sa.BigInteger, nullable=False),
    )
    op.create_index("idx_auth_sessions_user", "auth_sessions", ["user_id"])
    op.create_table(
        "auth_audit_log",
        sa.Column("event_id", _EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("event_time", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("details", sa.Text),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("idx_auth_audit_log_time", "auth_audit_log", ["event_time"])
    op.create_table(
        "auth_login_failures",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_login_failures")
    op.drop_index("idx_auth_audit_log_time", "auth_audit_log")
    op.drop_table("auth_audit_log")
    op.drop_index("idx_auth_sessions_user", "auth_sessions")
    op.drop_table("auth_sessions")
    op.drop_index("idx_auth_tokens_user", "auth_tokens")
    op.drop_table("auth_tokens")
    op.drop_index("idx_auth_group_grants_resource", "auth_group_grants")
    op.drop_table("auth_group_grants")
    op.drop_index("idx_auth_user_grants_resource", "auth_user_grants")
    op.drop_table("auth_user_grants")
    op.drop_index("idx_auth_group_members_group", "auth_group_members")
    op.drop_table("auth_group_members")
    op.drop_table("auth_groups")
    op.drop_table("auth_users")
