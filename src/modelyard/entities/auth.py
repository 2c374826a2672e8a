"""Users, groups (MLflow's roles), grants, tokens and audit events, in MLflow 3.17's auth REST shapes.

MLflow's auth API calls a group a "role" and a group grant a "role permission"; modelyard keeps the
wire names and calls them groups in its own CLI and docs. A token's secret appears in `to_dict()`
only on the object `create` returns (it is shown once, never stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit log: a user name ("cli", "system" for local tooling) and the
    client address the request came from, when there was one."""

    name: str
    address: str | None = None


SYSTEM = Actor("system")
CLI = Actor("cli")


@dataclass(frozen=True)
class GroupGrant:
    grant_id: int
    group_id: int
    resource_type: str
    resource_pattern: str
    permission: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.grant_id,
            "role_id": self.group_id,
            "resource_type": self.resource_type,
            "resource_pattern": self.resource_pattern,
            "permission": self.permission,
        }


@dataclass(frozen=True)
class Group:
    group_id: int
    name: str
    workspace: str = "default"
    description: str | None = None
    grants: tuple[GroupGrant, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.group_id,
            "name": self.name,
            "workspace": self.workspace,
            "description": self.description,
            "permissions": [grant.to_dict() for grant in self.grants],
        }


@dataclass(frozen=True)
class Membership:
    membership_id: int
    user_id: int
    group_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.membership_id, "role_id": self.group_id, "user_id": self.user_id}


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    is_admin: bool
    kind: str = "password"
    creation_time: int = 0
    #: The argon2id hash; never in `to_dict()`.
    password_hash: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.user_id, "username": self.username, "is_admin": self.is_admin}


@dataclass(frozen=True)
class UserGrant:
    user_id: int
    resource_type: str
    resource_id: str
    permission: str


@dataclass(frozen=True)
class Token:
    token_id: str
    user_id: int
    username: str
    name: str
    creation_time: int
    expiry_time: int | None = None
    last_used_time: int | None = None
    revoked_time: int | None = None
    #: The token itself: only on the object `create` returns.
    secret: str | None = field(default=None, repr=False)

    def active(self, now_ms: int) -> bool:
        return self.revoked_time is None and (self.expiry_time is None or self.expiry_time > now_ms)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.token_id,
            "username": self.username,
            "name": self.name,
            "creation_time": self.creation_time,
            "expiry_time": self.expiry_time,
            "last_used_time": self.last_used_time,
            "revoked_time": self.revoked_time,
        }
        if self.secret is not None:
            out["token"] = self.secret
        return out


@dataclass(frozen=True)
class AuditEvent:
    event_id: int
    event_time: int
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    address: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "time": self.event_time,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "address": self.address,
        }
