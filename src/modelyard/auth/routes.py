"""MLflow 3.17's auth REST API, served by the tracking service when auth is on, plus modelyard's
personal access tokens and audit log.

Paths and JSON shapes are MLflow's, so `mlflow.server.get_app_client("basic-auth", tracking_uri=...)`
manages users and grants against modelyard: users under `/api/2.0/mlflow/users/*`, grants under
`/api/3.0/mlflow/users/permissions/*`, groups as MLflow's roles under `/api/3.0/mlflow/roles/*`, and
MLflow 2.x's `experiments/permissions/*` and `registered-models/permissions/*` for older clients.
Who may call what is in `modelyard.auth.rules` (the middleware checks it before these run); these
routes only add what depends on the answer (a token's owner). Every change is audited with the
caller's name and address.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelyard import errors
from modelyard.auth import accounts, tokens
from modelyard.auth.context import AuthContext
from modelyard.auth.identity import BASIC, TOKEN, Identity, client_address, current_identity
from modelyard.entities.auth import Actor, Group, User
from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import Args, ArgsDep, get_bool, get_int, get_str, require_str
from modelyard.protocol.responses import compact, empty_response, json_response
from modelyard.store.auth import audit, permissions

users = APIRouter(prefix="/mlflow", tags=["auth"])
v3 = APIRouter(prefix="/mlflow", tags=["auth"])
own = APIRouter(prefix="/modelyard", tags=["auth"])


def _ctx(request: Request) -> AuthContext:
    return request.app.state.auth  # type: ignore[no-any-return]


def _me(request: Request) -> Identity:
    identity = current_identity(request)
    if identity is None:  # the middleware lets no anonymous request reach these routes
        raise ModelyardException("Authentication required.", errors.UNAUTHENTICATED)
    return identity


def _actor(request: Request) -> Actor:
    return Actor(_me(request).username, client_address(request.scope))


def _user_json(ctx: AuthContext, user: User, groups: list[Group] | None = None) -> dict[str, Any]:
    out = user.to_dict()
    if groups is not None:
        out["roles"] = [g.to_dict() for g in groups]
    return out


def _role_id(args: Args, name: str = "role_id") -> int:
    value = get_int(args, name)
    if value is None:
        raise ModelyardException.invalid_parameter(f"Missing value for required parameter '{name}'.")
    return value


# --- users (/api/2.0/mlflow/users/*) -------------------------------------------------------------
@users.post("/users/create")
def create_user(request: Request, args: ArgsDep) -> Response:
    user = accounts.create_user(_ctx(request), require_str(args, "username"), get_str(args, "password") or "", _actor(request))
    return json_response({"user": user.to_dict()})


@users.get("/users/get")
def get_user(request: Request, args: ArgsDep) -> Response:
    return json_response({"user": _ctx(request).store.require_user(require_str(args, "username")).to_dict()})


@users.get("/users/list")
def list_users(request: Request) -> Response:
    ctx = _ctx(request)
    groups = ctx.store.list_groups()
    members: dict[int, list[Group]] = {}
    for group in groups:
        for membership in ctx.store.list_members(group.group_id):
            members.setdefault(membership.user_id, []).append(group)
    return json_response({"users": [_user_json(ctx, u, members.get(u.user_id, [])) for u in ctx.store.list_users()]})


@users.get("/users/current")
def current_user(request: Request) -> Response:
    me = _me(request)
    user = _ctx(request).store.require_user(me.username)
    return json_response({"is_basic_auth": me.method in (BASIC, TOKEN), "user": user.to_dict()})


@users.patch("/users/update-password")
def update_password(request: Request, args: ArgsDep) -> Response:
    ctx, me = _ctx(request), _me(request)
    username = require_str(args, "username")
    if not me.is_admin:  # changing one's own password needs the current one (a stolen token cannot)
        current = get_str(args, "current_password") or ""
        if accounts.verify_password(ctx, username, current) is None:
            raise ModelyardException(
                "current_password is required and must be the user's password.", errors.PERMISSION_DENIED
            )
    accounts.change_password(ctx, username, get_str(args, "password") or "", _actor(request))
    return empty_response()


@users.patch("/users/update-admin")
def update_admin(request: Request, args: ArgsDep) -> Response:
    _ctx(request).store.set_admin(require_str(args, "username"), get_bool(args, "is_admin"), _actor(request))
    return empty_response()


@users.delete("/users/delete")
def delete_user(request: Request, args: ArgsDep) -> Response:
    _ctx(request).store.delete_user(require_str(args, "username"), _actor(request))
    return empty_response()


# --- MLflow 2.x per-resource grants ---------------------------------------------------------------
def _v2_grant(request: Request, args: Args, resource_type: str, id_field: str, op: str) -> Response:
    ctx, actor = _ctx(request), _actor(request)
    username, resource_id = require_str(args, "username"), require_str(args, id_field)
    user = ctx.store.require_user(username)
    if op == "create":
        permission = require_str(args, "permission")
        ctx.store.grant_user(username, resource_type, resource_id, permission, actor)
    elif op == "update":
        ctx.store.update_user_grant(username, resource_type, resource_id, require_str(args, "permission"), actor)
        return empty_response()
    elif op == "delete":
        ctx.store.revoke_user(username, resource_type, resource_id, actor)
        return empty_response()
    grant = ctx.store.get_user_grant(user.user_id, resource_type, resource_id)
    if grant is None:
        raise ModelyardException.not_found(
            f"Permission for user={username} on {resource_type}={resource_id} not found."
        )
    key = "experiment_permission" if resource_type == permissions.EXPERIMENT else "registered_model_permission"
    return json_response({key: {id_field: resource_id, "user_id": user.user_id, "permission": grant.permission}})


def _v2_endpoint(resource_type: str, id_field: str, op: str) -> Any:
    def endpoint(request: Request, args: ArgsDep) -> Response:
        return _v2_grant(request, args, resource_type, id_field, op)

    endpoint.__name__ = f"{op}_{resource_type}_permission"
    return endpoint


def _v2_routes(path: str, resource_type: str, id_field: str) -> None:
    for method, op in (("post", "create"), ("get", "get"), ("patch", "update"), ("delete", "delete")):
        getattr(users, method)(f"/{path}/permissions/{op}")(_v2_endpoint(resource_type, id_field, op))


_v2_routes("experiments", permissions.EXPERIMENT, "experiment_id")
_v2_routes("registered-models", permissions.REGISTERED_MODEL, "name")


# --- grants (/api/3.0/mlflow/users/permissions/*) -----------------------------------------------
def _grant_args(args: Args) -> tuple[str, str, str]:
    resource_type = permissions.validate_resource_type(require_str(args, "resource_type"))
    return require_str(args, "username"), resource_type, require_str(args, "resource_id")


@v3.post("/users/permissions/grant")
def grant(request: Request, args: ArgsDep) -> Response:
    username, resource_type, resource_id = _grant_args(args)
    permission = permissions.get_permission(require_str(args, "permission")).name
    _ctx(request).store.grant_user(username, resource_type, resource_id, permission, _actor(request))
    return empty_response()


@v3.post("/users/permissions/revoke")
def revoke(request: Request, args: ArgsDep) -> Response:
    username, resource_type, resource_id = _grant_args(args)
    _ctx(request).store.revoke_user(username, resource_type, resource_id, _actor(request))
    return empty_response()


@v3.get("/users/permissions/get")
def get_permission(request: Request, args: ArgsDep) -> Response:
    """The user's effective permission (own grant, else groups, else the default), as MLflow answers:
    `allowed` is its can_use."""
    ctx = _ctx(request)
    username, resource_type, resource_id = _grant_args(args)
    user = ctx.store.require_user(username)
    identity = accounts.identity_of(ctx, user, BASIC)
    permission = ctx.permission_for(identity, resource_type, resource_id)
    return json_response({"allowed": permission.can_use, "permission": permission.name})


def _permission_list(ctx: AuthContext, user: User) -> dict[str, Any]:
    listed: list[dict[str, Any]] = [
        {
            "permission": g.permission,
            "resource_pattern": g.resource_id,
            "resource_type": g.resource_type,
            "role_id": None,
            "role_name": f"__user_{user.user_id}__",
            "workspace": "default",
        }
        for g in ctx.store.list_user_grants(user.user_id)
    ]
    for group in ctx.store.list_groups(user_id=user.user_id):
        for g in group.grants:
            listed.append(
                {
                    "permission": g.permission,
                    "resource_pattern": g.resource_pattern,
                    "resource_type": g.resource_type,
                    "role_id": group.group_id,
                    "role_name": group.name,
                    "workspace": group.workspace,
                }
            )
    return {"is_admin": user.is_admin, "permissions": listed}


@v3.get("/users/permissions/list")
def list_permissions(request: Request, args: ArgsDep) -> Response:
    ctx = _ctx(request)
    return json_response(_permission_list(ctx, ctx.store.require_user(require_str(args, "username"))))


@v3.get("/users/current/permissions")
def current_permissions(request: Request) -> Response:
    ctx = _ctx(request)
    return json_response(_permission_list(ctx, ctx.store.require_user(_me(request).username)))


@v3.get("/users/roles/list")
def list_user_roles(request: Request, args: ArgsDep) -> Response:
    ctx = _ctx(request)
    user = ctx.store.require_user(require_str(args, "username"))
    return json_response({"roles": [g.to_dict() for g in ctx.store.list_groups(user_id=user.user_id)]})


# --- groups (MLflow's roles, /api/3.0/mlflow/roles/*) ---------------------------------------------
@v3.post("/roles/create")
def create_role(request: Request, args: ArgsDep) -> Response:
    group = _ctx(request).store.create_group(
        require_str(args, "name"), get_str(args, "description"), _actor(request), get_str(args, "workspace") or "default"
    )
    return json_response({"role": group.to_dict()})


@v3.get("/roles/get")
def get_role(request: Request, args: ArgsDep) -> Response:
    return json_response({"role": _ctx(request).store.get_group(_role_id(args)).to_dict()})


@v3.get("/roles/list")
def list_roles(request: Request, args: ArgsDep) -> Response:
    groups = _ctx(request).store.list_groups(workspace=get_str(args, "workspace") or None)
    return json_response({"roles": [g.to_dict() for g in groups]})


@v3.patch("/roles/update")
def update_role(request: Request, args: ArgsDep) -> Response:
    group = _ctx(request).store.update_group(
        _role_id(args), get_str(args, "name"), get_str(args, "description"), _actor(request)
    )
    return json_response({"role": group.to_dict()})


@v3.delete("/roles/delete")
def delete_role(request: Request, args: ArgsDep) -> Response:
    _ctx(request).store.delete_group(_role_id(args), _actor(request))
    return empty_response()


@v3.post("/roles/assign")
def assign_role(request: Request, args: ArgsDep) -> Response:
    membership = _ctx(request).store.add_member(_role_id(args), require_str(args, "username"), _actor(request))
    return json_response({"assignment": membership.to_dict()})


@v3.delete("/roles/unassign")
def unassign_role(request: Request, args: ArgsDep) -> Response:
    _ctx(request).store.remove_member(_role_id(args), require_str(args, "username"), _actor(request))
    return empty_response()


@v3.get("/roles/users/list")
def list_role_users(request: Request, args: ArgsDep) -> Response:
    return json_response({"assignments": [m.to_dict() for m in _ctx(request).store.list_members(_role_id(args))]})


@v3.post("/roles/permissions/add")
def add_role_permission(request: Request, args: ArgsDep) -> Response:
    resource_type = permissions.validate_resource_type(require_str(args, "resource_type"))
    grant_ = _ctx(request).store.add_group_grant(
        _role_id(args),
        resource_type,
        require_str(args, "resource_pattern"),
        permissions.get_permission(require_str(args, "permission")).name,
        _actor(request),
    )
    return json_response({"role_permission": grant_.to_dict()})


@v3.get("/roles/permissions/list")
def list_role_permissions(request: Request, args: ArgsDep) -> Response:
    grants = _ctx(request).store.list_group_grants(_role_id(args))
    return json_response({"role_permissions": [g.to_dict() for g in grants]})


@v3.patch("/roles/permissions/update")
def update_role_permission(request: Request, args: ArgsDep) -> Response:
    permission = permissions.get_permission(require_str(args, "permission")).name
    grant_ = _ctx(request).store.update_group_grant(_role_id(args, "role_permission_id"), permission, _actor(request))
    return json_response({"role_permission": grant_.to_dict()})


@v3.delete("/roles/permissions/remove")
def remove_role_permission(request: Request, args: ArgsDep) -> Response:
    _ctx(request).store.remove_group_grant(_role_id(args, "role_permission_id"), _actor(request))
    return empty_response()


# --- modelyard: personal access tokens and the audit log ------------------------------------------
def _token_owner(request: Request, args: Args) -> User:
    """The `username` named (admins only, for someone else), else the caller."""
    ctx, me = _ctx(request), _me(request)
    username = get_str(args, "username") or me.username
    if username != me.username and not me.is_admin:
        raise ModelyardException("Permission denied: only an admin may manage another user's tokens.", errors.PERMISSION_DENIED)
    return ctx.store.require_user(username)


@own.post("/tokens/create")
def create_token(request: Request, args: ArgsDep) -> Response:
    owner = _token_owner(request, args)
    made = tokens.create(_ctx(request), owner, require_str(args, "name"), _actor(request), get_int(args, "expiry_time"))
    return json_response({"token": made.to_dict()})


@own.get("/tokens/list")
def list_tokens(request: Request, args: ArgsDep) -> Response:
    me = _me(request)
    everyone = me.is_admin and get_bool(args, "all")
    owner = None if everyone else _token_owner(request, args)
    return json_response({"tokens": [t.to_dict() for t in tokens.list_for(_ctx(request), owner)]})


@own.post("/tokens/revoke")
def revoke_token(request: Request, args: ArgsDep) -> Response:
    ctx, me = _ctx(request), _me(request)
    token = ctx.store.get_token(require_str(args, "id"))
    if token is None or (token.user_id != me.user_id and not me.is_admin):
        raise ModelyardException.not_found(f"Token {require_str(args, 'id')} not found")
    tokens.revoke(ctx, token.token_id, _actor(request))
    return empty_response()


@own.get("/audit/list")
def list_audit(request: Request, args: ArgsDep) -> Response:
    before = get_int(args, "before_id")
    events = audit.list_events(_ctx(request).store.engine, get_int(args, "max_results", 100) or 100, before)
    page = [e.to_dict() for e in events]
    return json_response(compact({"events": page, "next_before_id": events[-1].event_id if events else None}))


def include(app: Any) -> None:
    """Serve the API under MLflow's prefixes (and the UI's /ajax-api ones)."""
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        app.include_router(users, prefix=prefix)
        app.include_router(own, prefix=prefix)
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        app.include_router(v3, prefix=prefix)
