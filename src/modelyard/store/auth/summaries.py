"""Reads the web UI's auth pages need and the REST API has no one call for: who holds a grant on one
resource (the permissions section of an experiment's or a model's page), and who is in which group
(the admin's users and groups pages). Rows only, one query each; the pages decide what to show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from modelyard.store.auth.permissions import WILDCARD
from modelyard.store.sql.auth_schema import SqlGroup, SqlGroupGrant, SqlGroupMember, SqlUser, SqlUserGrant
from modelyard.store.sql.engine import READ_ONLY

USER, GROUP = "user", "group"


@dataclass(frozen=True)
class ResourceGrant:
    """One grant touching a resource: a user's, or a group's on it or on every resource of its type."""

    principal: str  # USER or GROUP
    name: str  # the user's or the group's name
    permission: str
    #: The resource id, or WILDCARD for a group's grant on every resource of the type.
    pattern: str
    grant_id: int

    @property
    def everything(self) -> bool:
        return self.pattern == WILDCARD


def grants_on(engine: Engine, resource_type: str, resource_id: str) -> list[ResourceGrant]:
    """The users' grants on the resource (by name), then the groups' (exact ones before wildcards)."""
    with Session(engine.execution_options(**READ_ONLY)) as session:
        users = session.execute(
            select(SqlUser.username, SqlUserGrant.permission, SqlUserGrant.grant_id)
            .join(SqlUser, SqlUser.user_id == SqlUserGrant.user_id)
            .where(SqlUserGrant.resource_type == resource_type, SqlUserGrant.resource_id == resource_id)
            .order_by(SqlUser.username)
        ).all()
        groups = session.execute(
            select(SqlGroup.name, SqlGroupGrant.permission, SqlGroupGrant.resource_pattern, SqlGroupGrant.grant_id)
            .join(SqlGroup, SqlGroup.group_id == SqlGroupGrant.group_id)
            .where(
                SqlGroupGrant.resource_type == resource_type,
                SqlGroupGrant.resource_pattern.in_([resource_id, WILDCARD]),
            )
            .order_by(SqlGroupGrant.resource_pattern == WILDCARD, SqlGroup.name)
        ).all()
    return [ResourceGrant(USER, name, permission, resource_id, gid) for name, permission, gid in users] + [
        ResourceGrant(GROUP, name, permission, pattern, gid) for name, permission, pattern, gid in groups
    ]


@dataclass(frozen=True)
class Memberships:
    """Group membership both ways: member names per group id, group names per user id (sorted)."""

    members: dict[int, list[str]]
    groups: dict[int, list[str]]


def memberships(engine: Engine) -> Memberships:
    members: dict[int, list[str]] = defaultdict(list)
    groups: dict[int, list[str]] = defaultdict(list)
    with Session(engine.execution_options(**READ_ONLY)) as session:
        rows = session.execute(
            select(SqlGroupMember.group_id, SqlGroup.name, SqlGroupMember.user_id, SqlUser.username)
            .join(SqlGroup, SqlGroup.group_id == SqlGroupMember.group_id)
            .join(SqlUser, SqlUser.user_id == SqlGroupMember.user_id)
            .order_by(SqlUser.username, SqlGroup.name)
        ).all()
    for group_id, group_name, user_id, username in rows:
        members[group_id].append(username)
        groups[user_id].append(group_name)
    return Memberships(dict(members), dict(groups))
