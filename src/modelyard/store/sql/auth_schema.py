"""Authentication and authorisation tables, on the tracking schema's `Base` (migration 0010).

Users, their groups (MLflow 3's "roles": a role holds permissions and users are assigned to it),
per-user grants, personal access tokens, browser sessions, the audit log and the failed-login
counters. Secrets are never stored: passwords as argon2id hashes, tokens and session ids as SHA-256
of a 256-bit random value (a hash of a high-entropy secret needs no slow hash). Grants name their
resource by the id MLflow's auth API uses: an experiment's id, a registered model's name.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.sql.schema import Base


class SqlUser(Base):
    __tablename__ = "auth_users"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(256), nullable=False, unique=True)
    #: argon2id (PHC string); NULL for users who only sign in through the trusted SSO proxy.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: "password" (made by an admin or the CLI), "sso" (created on first sight behind the proxy),
    #: "service" (a service account of the serving/endpoint services).
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="password")
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SqlGroup(Base):
    """A group of users (MLflow's role); its grants apply to every member."""

    __tablename__ = "auth_groups"
    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_auth_groups_name"),)

    group_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    #: MLflow's roles live in a workspace; modelyard has one, "default".
    workspace: Mapped[str] = mapped_column(String(256), nullable=False, default="default")
    description: Mapped[str | None] = mapped_column(String(5000))
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SqlGroupMember(Base):
    __tablename__ = "auth_group_members"
    __table_args__ = (
        UniqueConstraint("user_id", "group_id", name="uq_auth_group_members"),
        Index("idx_auth_group_members_group", "group_id"),
    )

    membership_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
    )
    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("auth_groups.group_id", ondelete="CASCADE"), nullable=False
    )


class SqlUserGrant(Base):
    """One user's permission on one resource; it wins over the user's groups and the default."""

    __tablename__ = "auth_user_grants"
    __table_args__ = (
        UniqueConstraint("user_id", "resource_type", "resource_id", name="uq_auth_user_grants"),
        # Renames and deletes of a resource find its grants.
        Index("idx_auth_user_grants_resource", "resource_type", "resource_id"),
    )

    grant_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
    )
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str] = mapped_column(String(256), nullable=False)
    permission: Mapped[str] = mapped_column(String(32), nullable=False)


class SqlGroupGrant(Base):
    """A group's permission on a resource, or on every resource of a type (`resource_pattern` "*")."""

    __tablename__ = "auth_group_grants"
    __table_args__ = (
        UniqueConstraint("group_id", "resource_type", "resource_pattern", name="uq_auth_group_grants"),
        Index("idx_auth_group_grants_resource", "resource_type", "resource_pattern"),
    )

    grant_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("auth_groups.group_id", ondelete="CASCADE"), nullable=False
    )
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_pattern: Mapped[str] = mapped_column(String(256), nullable=False)
    permission: Mapped[str] = mapped_column(String(32), nullable=False)


class SqlToken(Base):
    """A personal access token: its SHA-256, never the token itself (shown once, at creation)."""

    __tablename__ = "auth_tokens"
    __table_args__ = (Index("idx_auth_tokens_user", "user_id"),)

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expiry_time: Mapped[int | None] = mapped_column(BigInteger)
    last_used_time: Mapped[int | None] = mapped_column(BigInteger)
    revoked_time: Mapped[int | None] = mapped_column(BigInteger)


class SqlSession(Base):
    """A browser session (the UI's login): the SHA-256 of the cookie's random id."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("idx_auth_sessions_user", "user_id"),)

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False
    )
    creation_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expiry_time: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SqlAuditEvent(Base):
    """One change to users, groups, tokens or permissions: who did what to whom, from where."""

    __tablename__ = "auth_audit_log"
    __table_args__ = (Index("idx_auth_audit_log_time", "event_time"),)

    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The acting user's name; "system" for start-up bootstrap, "cli" for the local CLI.
    actor: Mapped[str] = mapped_column(String(256), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(512), nullable=False)
    #: JSON object with the change's details (never a secret).
    details: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))


class SqlLoginFailures(Base):
    """Failed sign-ins per key ("user:<name>" or "addr:<ip>") in the current window, shared by every
    worker and replica so the limit is one limit, not one per process."""

    __tablename__ = "auth_login_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, nullable=False)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
