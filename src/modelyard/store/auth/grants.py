"""Groups (MLflow's roles), memberships, and the grants of users and groups (rows only).

A user's grant on a resource is unique per (user, type, id); a group's per (group, type, pattern),
the pattern being a resource id or "*". `load_profile` reads all a user needs for permission checks
in two queries. Every change takes the `Actor` making it and audits in its own transaction.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelyard.entities.auth import Actor, Group, GroupGrant, Membership, UserGrant
from modelyard.exceptions import ModelyardException
from modelyard.store.auth import audit
from modelyard.store.auth.audit import now_ms
from modelyard.store.auth.permissions import GrantProfile, Permission, get_permission
from modelyard.store.auth.rows import AuthRows
from modelyard.store.sql.auth_schema import SqlGroup, SqlGroupGrant, SqlGroupMember, SqlUser, SqlUserGrant

DEFAULT_WORKSPACE = "default"
MAX_GROUP_NAME_CHARS = 256
MAX_RESOURCE_ID_CHARS = 256


def group_not_found(group_id: object) -> ModelyardException:
    return ModelyardException.not_found(f"Role with id={group_id} not found")


def _grant(row: SqlGroupGrant) -> GroupGrant:
    return GroupGrant(row.grant_id, row.group_id, row.resource_type, row.resource_pattern, row.permission)


def _resource_id(resource_id: object) -> str:
    if not isinstance(resource_id, str) or not resource_id or len(resource_id) > MAX_RESOURCE_ID_CHARS:
        raise ModelyardException.invalid_parameter(
            f"resource_id must be a string of 1 to {MAX_RESOURCE_ID_CHARS} characters."
        )
    return resource_id



class GrantStore(AuthRows):
    # --- the permission profile --------------------------------------------------------------------
    def load_profile(self, user_id: int, is_admin: bool, group_names: tuple[str, ...] = ()) -> GrantProfile:
        """The user's grants and those of their groups: the groups they are a member of, and the
        groups named in `group_names` (what a trusted SSO proxy says they belong to)."""
        member_of = select(SqlGroupMember.group_id).where(SqlGroupMember.user_id == user_id)
        in_group = SqlGroupGrant.group_id.in_(member_of)
        if group_names:
            named = select(SqlGroup.group_id).where(SqlGroup.name.in_(group_names))
            in_group = or_(in_group, SqlGroupGrant.group_id.in_(named))
        with Session(self._read) as session:
            own = {
                (row.resource_type, row.resource_id): get_permission(row.permission)
                for row in session.scalars(select(SqlUserGrant).where(SqlUserGrant.user_id == user_id))
            }
            groups: dict[tuple[str, str], Permission] = {}
            rows = session.execute(
                select(
                    SqlGroupGrant.resource_type, SqlGroupGrant.resource_pattern, SqlGroupGrant.permission
                ).where(in_group)
            )
            for resource_type, pattern, name in rows:
                permission = get_permission(name)
                held = groups.get((resource_type, pattern))
                if held is None or permission.rank > held.rank:
                    groups[(resource_type, pattern)] = permission
        return GrantProfile(is_admin=is_admin, user=own, groups=groups)

    def group_names_of(self, user_id: int) -> tuple[str, ...]:
        with Session(self._read) as session:
            return tuple(
                session.scalars(
                    select(SqlGroup.name)
                    .join(SqlGroupMember, SqlGroupMember.group_id == SqlGroup.group_id)
                    .where(SqlGroupMember.user_id == user_id)
                    .order_by(SqlGroup.name)
                )
            )

    # --- user grants ---------------------------------------------------------------------------------
    def get_user_grant(self, user_id: int, resource_type: str, resource_id: str) -> UserGrant | None:
        with Session(self._read) as session:
            row = session.scalar(
                select(SqlUserGrant).where(
                    SqlUserGrant.user_id == user_id,
                    SqlUserGrant.resource_type == resource_type,
                    SqlUserGrant.resource_id == resource_id,
                )
            )
            return UserGrant(user_id, resource_type, resource_id, row.permission) if row is not None else None

    def list_user_grants(self, user_id: int) -> list[UserGrant]:
        with Session(self._read) as session:
            rows = session.scalars(
                select(SqlUserGrant).where(SqlUserGrant.user_id == user_id).order_by(SqlUserGrant.grant_id)
            )
            return [UserGrant(r.user_id, r.resource_type, r.resource_id, r.permission) for r in rows]

    def grant_user(
        self,
        username: str,
        resource_type: str,
        resource_id: str,
        permission: str,
        by: Actor,
        *,
        replace: bool = False,
    ) -> None:
        """Add a user's grant; with `replace`, an existing one is changed instead of refused."""
        _resource_id(resource_id)
        get_permission(permission)
        exists = ModelyardException.already_exists(
            f"Permission for user={username} on resource_type={resource_type}, resource_id={resource_id} already exists."
        )
        try:
            with self._changing() as session:
                user_id = self._user_id(session, username)
                row = session.scalar(
                    select(SqlUserGrant).where(
                        SqlUserGrant.user_id == user_id,
                        SqlUserGrant.resource_type == resource_type,
                        SqlUserGrant.resource_id == resource_id,
                    )
                )
                if row is not None and not replace:
                    raise exists
                before = row.permission if row is not None else None
                if row is None:
                    session.add(
                        SqlUserGrant(
                            user_id=user_id,
                            resource_type=resource_type,
                            resource_id=resource_id,
                            permission=permission,
                        )
                    )
                else:
                    row.permission = permission
                audit.record(
                    session,
                    by,
                    "grant.user",
                    username,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    permission=permission,
                    before=before,
                )
        except IntegrityError as exc:
            raise exists from exc

    def update_user_grant(
        self, username: str, resource_type: str, resource_id: str, permission: str, by: Actor
    ) -> None:
        get_permission(permission)
        with self._changing() as session:
            user_id = self._user_id(session, username)
            done = session.execute(
                update(SqlUserGrant)
                .where(
                    SqlUserGrant.user_id == user_id,
                    SqlUserGrant.resource_type == resource_type,
                    SqlUserGrant.resource_id == resource_id,
                )
                .values(permission=permission)
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise self._grant_not_found(username, resource_type, resource_id)
            audit.record(
                session,
                by,
                "grant.user",
                username,
                resource_type=resource_type,
                resource_id=resource_id,
                permission=permission,
            )

    def revoke_user(self, username: str, resource_type: str, resource_id: str, by: Actor) -> None:
        with self._changing() as session:
            user_id = self._user_id(session, username)
            done = session.execute(
                delete(SqlUserGrant).where(
                    SqlUserGrant.user_id == user_id,
                    SqlUserGrant.resource_type == resource_type,
                    SqlUserGrant.resource_id == resource_id,
                )
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise self._grant_not_found(username, resource_type, resource_id)
            audit.record(
                session, by, "revoke.user", username, resource_type=resource_type, resource_id=resource_id
            )

    def rename_resource(self, resource_type: str, old_id: str, new_id: str, by: Actor) -> None:
        """A registered model's grants follow its rename (they are keyed by name, as in MLflow)."""
        with self._changing() as session:
            session.execute(
                delete(SqlUserGrant).where(
                    SqlUserGrant.resource_type == resource_type, SqlUserGrant.resource_id == new_id
                )
            )
            session.execute(
                update(SqlUserGrant)
                .where(SqlUserGrant.resource_type == resource_type, SqlUserGrant.resource_id == old_id)
                .values(resource_id=new_id)
            )
            session.execute(
                delete(SqlGroupGrant).where(
                    SqlGroupGrant.resource_type == resource_type, SqlGroupGrant.resource_pattern == new_id
                )
            )
            session.execute(
                update(SqlGroupGrant)
                .where(
                    SqlGroupGrant.resource_type == resource_type, SqlGroupGrant.resource_pattern == old_id
                )
                .values(resource_pattern=new_id)
            )
            audit.record(session, by, "grant.rename_resource", f"{resource_type}:{old_id}", new_id=new_id)

    def delete_resource(self, resource_type: str, resource_id: str, by: Actor) -> None:
        """A deleted registered model takes its grants with it (a new model of that name starts clean)."""
        with self._changing() as session:
            session.execute(
                delete(SqlUserGrant).where(
                    SqlUserGrant.resource_type == resource_type, SqlUserGrant.resource_id == resource_id
                )
            )
            session.execute(
                delete(SqlGroupGrant).where(
                    SqlGroupGrant.resource_type == resource_type,
                    SqlGroupGrant.resource_pattern == resource_id,
                )
            )
            audit.record(session, by, "grant.delete_resource", f"{resource_type}:{resource_id}")

    # --- groups ------------------------------------------------------------------------------------
    def create_group(
        self, name: str, description: str | None, by: Actor, workspace: str = DEFAULT_WORKSPACE
    ) -> Group:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_GROUP_NAME_CHARS:
            raise ModelyardException.invalid_parameter(
                f"name must be a string of 1 to {MAX_GROUP_NAME_CHARS} characters."
            )
        exists = ModelyardException.already_exists(
            f"Role (name={name}, workspace={workspace}) already exists."
        )
        try:
            with Session(self.engine) as session, session.begin():
                if session.scalar(
                    select(SqlGroup.group_id).where(SqlGroup.workspace == workspace, SqlGroup.name == name)
                ):
                    raise exists
                row = SqlGroup(
                    name=name, workspace=workspace, description=description, creation_time=now_ms()
                )
                session.add(row)
                session.flush()
                audit.record(session, by, "group.create", name, group_id=row.group_id)
                return Group(row.group_id, row.name, row.workspace, row.description)
        except IntegrityError as exc:
            raise exists from exc

    def get_group(self, group_id: int) -> Group:
        with Session(self._read) as session:
            row = session.get(SqlGroup, group_id)
            if row is None:
                raise group_not_found(group_id)
            return self._group(session, row)

    def get_group_by_name(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> Group:
        with Session(self._read) as session:
            row = session.scalar(
                select(SqlGroup).where(SqlGroup.workspace == workspace, SqlGroup.name == name)
            )
            if row is None:
                raise ModelyardException.not_found(f"Role with name={name} not found")
            return self._group(session, row)

    def list_groups(self, workspace: str | None = None, user_id: int | None = None) -> list[Group]:
        query = select(SqlGroup).order_by(SqlGroup.group_id)
        if workspace is not None:
            query = query.where(SqlGroup.workspace == workspace)
        if user_id is not None:
            query = query.join(SqlGroupMember, SqlGroupMember.group_id == SqlGroup.group_id).where(
                SqlGroupMember.user_id == user_id
            )
        with Session(self._read) as session:
            rows = list(session.scalars(query))
            grants: dict[int, list[GroupGrant]] = defaultdict(list)
            if rows:
                for grant in session.scalars(
                    select(SqlGroupGrant)
                    .where(SqlGroupGrant.group_id.in_([r.group_id for r in rows]))
                    .order_by(SqlGroupGrant.grant_id)
                ):
                    grants[grant.group_id].append(_grant(grant))
            return [
                Group(r.group_id, r.name, r.workspace, r.description, tuple(grants[r.group_id])) for r in rows
            ]

    def update_group(self, group_id: int, name: str | None, description: str | None, by: Actor) -> Group:
        with self._changing() as session:
            row = session.get(SqlGroup, group_id)
            if row is None:
                raise group_not_found(group_id)
            if name is not None:
                row.name = name
            if description is not None:
                row.description = description
            audit.record(
                session, by, "group.update", row.name, group_id=group_id, description=description
            )
            session.flush()
            return self._group(session, row)

    def delete_group(self, group_id: int, by: Actor) -> None:
        with self._changing() as session:
            row = session.get(SqlGroup, group_id)
            if row is None:
                raise group_not_found(group_id)
            audit.record(session, by, "group.delete", row.name, group_id=group_id)
            session.delete(row)

    def add_member(self, group_id: int, username: str, by: Actor) -> Membership:
        try:
            with self._changing() as session:
                user_id = self._user_id(session, username)
                group = session.get(SqlGroup, group_id)
                if group is None:
                    raise group_not_found(group_id)
                if session.scalar(
                    select(SqlGroupMember.membership_id).where(
                        SqlGroupMember.user_id == user_id, SqlGroupMember.group_id == group_id
                    )
                ):
                    raise ModelyardException.already_exists(
                        f"User role assignment (user_id={user_id}, role_id={group_id}) already exists"
                    )
                row = SqlGroupMember(user_id=user_id, group_id=group_id)
                session.add(row)
                session.flush()
                audit.record(session, by, "group.add_member", group.name, username=username)
                return Membership(row.membership_id, user_id, group_id)
        except IntegrityError as exc:
            raise ModelyardException.already_exists(f"User {username} is already in role {group_id}") from exc

    def remove_member(self, group_id: int, username: str, by: Actor) -> None:
        with self._changing() as session:
            user_id = self._user_id(session, username)
            done = session.execute(
                delete(SqlGroupMember).where(
                    SqlGroupMember.user_id == user_id, SqlGroupMember.group_id == group_id
                )
            )
            if done.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelyardException.not_found(
                    f"User role assignment (user_id={user_id}, role_id={group_id}) not found"
                )
            audit.record(session, by, "group.remove_member", str(group_id), username=username)

    def list_members(self, group_id: int) -> list[Membership]:
        with Session(self._read) as session:
            if session.get(SqlGroup, group_id) is None:
                raise group_not_found(group_id)
            rows = session.scalars(
                select(SqlGroupMember)
                .where(SqlGroupMember.group_id == group_id)
                .order_by(SqlGroupMember.membership_id)
            )
            return [Membership(r.membership_id, r.user_id, r.group_id) for r in rows]

    def add_group_grant(
        self, group_id: int, resource_type: str, pattern: str, permission: str, by: Actor
    ) -> GroupGrant:
        _resource_id(pattern)
        get_permission(permission)
        exists = ModelyardException.already_exists(
            f"Permission for role={group_id} on resource_type={resource_type}, resource_pattern={pattern} already exists."
        )
        try:
            with self._changing() as session:
                group = session.get(SqlGroup, group_id)
                if group is None:
                    raise group_not_found(group_id)
                if session.scalar(
                    select(SqlGroupGrant.grant_id).where(
                        SqlGroupGrant.group_id == group_id,
                        SqlGroupGrant.resource_type == resource_type,
                        SqlGroupGrant.resource_pattern == pattern,
                    )
                ):
                    raise exists
                row = SqlGroupGrant(
                    group_id=group_id,
                    resource_type=resource_type,
                    resource_pattern=pattern,
                    permission=permission,
                )
                session.add(row)
                session.flush()
                audit.record(
                    session,
                    by,
                    "grant.group",
                    group.name,
                    resource_type=resource_type,
                    resource_pattern=pattern,
                    permission=permission,
                )
                return _grant(row)
        except IntegrityError as exc:
            raise exists from exc

    def update_group_grant(self, grant_id: int, permission: str, by: Actor) -> GroupGrant:
        get_permission(permission)
        with self._changing() as session:
            row = session.get(SqlGroupGrant, grant_id)
            if row is None:
                raise ModelyardException.not_found(f"Role permission with id={grant_id} not found")
            before, row.permission = row.permission, permission
            audit.record(
                session,
                by,
                "grant.group_update",
                str(row.group_id),
                grant_id=grant_id,
                permission=permission,
                before=before,
            )
            return _grant(row)

    def remove_group_grant(self, grant_id: int, by: Actor) -> None:
        with self._changing() as session:
            row = session.get(SqlGroupGrant, grant_id)
            if row is None:
                raise ModelyardException.not_found(f"Role permission with id={grant_id} not found")
            audit.record(
                session,
                by,
                "revoke.group",
                str(row.group_id),
                resource_type=row.resource_type,
                resource_pattern=row.resource_pattern,
            )
            session.delete(row)

    def list_group_grants(self, group_id: int) -> list[GroupGrant]:
        return list(self.get_group(group_id).grants)

    # --- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _user_id(session: Session, username: str) -> int:
        user_id = session.scalar(select(SqlUser.user_id).where(SqlUser.username == username))
        if user_id is None:
            raise ModelyardException.not_found(f"User with username={username} not found")
        return int(user_id)

    @staticmethod
    def _grant_not_found(username: str, resource_type: str, resource_id: str) -> ModelyardException:
        return ModelyardException.not_found(
            f"Permission for user={username} on resource_type={resource_type}, resource_id={resource_id} not found."
        )

    @staticmethod
    def _group(session: Session, row: SqlGroup) -> Group:
        grants = session.scalars(
            select(SqlGroupGrant)
            .where(SqlGroupGrant.group_id == row.group_id)
            .order_by(SqlGroupGrant.grant_id)
        )
        return Group(row.group_id, row.name, row.workspace, row.description, tuple(_grant(g) for g in grants))
