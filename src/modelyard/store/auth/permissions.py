"""Permission levels as MLflow's auth defines them, and how a caller's permission on a resource is resolved.

Levels (what each allows): READ reads; USE reads and uses (MLflow's level for serving/using a
resource, kept so its grants round-trip); EDIT also writes (log, tag, create versions, move aliases,
rename); MANAGE also deletes and manages grants; NO_PERMISSIONS allows nothing.

Resolution for one user and one resource, first match wins:
1. an admin may do everything;
2. the user's own grant on the resource;
3. the highest of the user's groups' grants on it (a grant on the exact id, or on "*", every
   resource of the type);
4. the configured default (`MODELYARD_AUTH_DEFAULT_PERMISSION`).
The creator of an experiment or registered model is given a MANAGE grant when it is created.

`GrantProfile` holds everything resolution needs for one user (loaded with two queries, cached per
worker by `modelyard.auth.cache`), so checking a request costs dictionary look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.exceptions import ModelyardException
from modelyard.store.search.visibility import Visibility

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
RESOURCE_TYPES = (EXPERIMENT, REGISTERED_MODEL)
#: A group grant's pattern that matches every resource of its type.
WILDCARD = "*"


@dataclass(frozen=True)
class Permission:
    name: str
    rank: int
    can_read: bool
    can_use: bool
    can_update: bool
    can_delete: bool
    can_manage: bool

    def allows(self, action: str) -> bool:
        """`action` is one of ACTIONS: read, use, update, delete, manage."""
        return bool(getattr(self, f"can_{action}"))


NO_PERMISSIONS = Permission("NO_PERMISSIONS", 0, False, False, False, False, False)
READ = Permission("READ", 1, True, False, False, False, False)
USE = Permission("USE", 2, True, True, False, False, False)
EDIT = Permission("EDIT", 3, True, True, True, False, False)
MANAGE = Permission("MANAGE", 4, True, True, True, True, True)
ALL = {p.name: p for p in (READ, USE, EDIT, MANAGE, NO_PERMISSIONS)}
ACTIONS = ("read", "use", "update", "delete", "manage")


def get_permission(name: object) -> Permission:
    """The level called `name`; a 400 naming the valid ones otherwise."""
    if isinstance(name, str) and name in ALL:
        return ALL[name]
    raise ModelyardException.invalid_parameter(
        f"Invalid permission '{name}'. Valid permissions are: {tuple(ALL)}"
    )


def validate_resource_type(resource_type: object) -> str:
    if isinstance(resource_type, str) and resource_type in RESOURCE_TYPES:
        return resource_type
    raise ModelyardException.invalid_parameter(
        f"Invalid resource type '{resource_type}'. Valid resource types are: {RESOURCE_TYPES}"
    )


def highest(permissions: list[Permission]) -> Permission | None:
    return max(permissions, key=lambda p: p.rank) if permissions else None


@dataclass(frozen=True)
class GrantProfile:
    """One user's grants: their own, keyed by (type, id), and their groups' highest per (type, pattern)."""

    is_admin: bool
    user: dict[tuple[str, str], Permission] = field(default_factory=dict)
    groups: dict[tuple[str, str], Permission] = field(default_factory=dict)

    def permission_for(self, resource_type: str, resource_id: str, default: Permission) -> Permission:
        if self.is_admin:
            return MANAGE
        own = self.user.get((resource_type, resource_id))
        if own is not None:
            return own
        group = self.group_permission(resource_type, resource_id)
        return group if group is not None else default

    def group_permission(self, resource_type: str, resource_id: str) -> Permission | None:
        exact = self.groups.get((resource_type, resource_id))
        every = self.groups.get((resource_type, WILDCARD))
        if exact is None or every is None:
            return exact or every
        return exact if exact.rank >= every.rank else every

    def readable(self, resource_type: str, default: Permission) -> Visibility:
        """Which resources of a type this user may read, as a set a SQL query can filter on."""
        if self.is_admin:
            return Visibility(everything=True)
        fallback = self.groups.get((resource_type, WILDCARD)) or default
        listed = {rid for (rtype, rid) in self.user if rtype == resource_type}
        listed |= {rid for (rtype, rid) in self.groups if rtype == resource_type and rid != WILDCARD}
        readable = {rid for rid in listed if self.permission_for(resource_type, rid, default).can_read}
        if fallback.can_read:
            return Visibility(everything=False, excluded=frozenset(listed - readable))
        return Visibility(everything=False, only=frozenset(readable))
