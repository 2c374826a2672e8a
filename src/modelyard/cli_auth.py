"""`modelyard users|tokens|groups|permissions|audit`: manage who may do what, straight in the database.

These commands open the tracking database (`--backend-store-uri`, default `$MODELYARD_BACKEND_STORE_URI`)
rather than a server, so the first admin can be made before any server runs (`modelyard users create
NAME --admin`) and an operator can recover access. Every change is audited with the actor "cli".
Servers of the same instance see a change within `MODELYARD_AUTH_CACHE_SECONDS`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from modelyard.cli import _fails_cleanly, _table, _time, admin_store_uri


def _ctx(url: str | None) -> Any:
    from modelyard.auth import passwords
    from modelyard.auth.context import AuthConfig, AuthContext
    from modelyard.settings import Settings
    from modelyard.store.sql.engine import create_engine_for
    from modelyard.store.sql.migrate import require_usable

    settings = Settings.from_env()
    passwords.configure(settings.auth_password_hash_time_cost, settings.auth_password_hash_memory_kib)
    engine = create_engine_for(admin_store_uri(url))
    require_usable(engine)
    return AuthContext.open(engine, AuthConfig.from_settings(settings))


def _db(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--backend-store-uri", "url", default=None, help="Database URI [$MODELYARD_BACKEND_STORE_URI, sqlite:///modelyard.db]."
    )(_fails_cleanly(func))


def _json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def _actor() -> Any:
    from modelyard.entities.auth import CLI

    return CLI


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


# ---- users ----------------------------------------------------------------------------------------
@click.group("users")
def users() -> None:
    """Users: passwords (argon2id), admins, service accounts."""


@users.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="May do everything, including managing users.")
@click.option("--service", is_flag=True, help="A service account (serving, endpoints): same rights, listed as such.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--no-password", is_flag=True, help="Signs in only through the SSO proxy or with tokens.")
@_db
def users_create(username: str, admin: bool, service: bool, password_stdin: bool, no_password: bool, url: str | None) -> None:
    from modelyard.auth import accounts

    password = None if no_password else _read_password(password_stdin)
    kind = accounts.SERVICE if service else accounts.PASSWORD
    user = accounts.create_user(_ctx(url), username, password, _actor(), is_admin=admin, kind=kind)
    click.echo(f"Created user {user.username}{' (admin)' if user.is_admin else ''}.")


@users.command("list")
@_json_option
@_db
def users_list(as_json: bool, url: str | None) -> None:
    ctx = _ctx(url)
    found = ctx.store.list_users()
    if as_json:
        click.echo(json.dumps([{**u.to_dict(), "kind": u.kind} for u in found], indent=2))
        return
    rows = [(u.username, "yes" if u.is_admin else "", u.kind, _time(u.creation_time)) for u in found]
    click.echo(_table(["USERNAME", "ADMIN", "KIND", "CREATED"], rows))


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@_db
def users_set_password(username: str, password_stdin: bool, url: str | None) -> None:
    from modelyard.auth import accounts

    accounts.change_password(_ctx(url), username, _read_password(password_stdin), _actor())
    click.echo(f"Password of {username} changed; their UI sessions are ended.")


@users.command("set-admin")
@click.argument("username")
@click.option("--admin/--no-admin", default=True, show_default=True)
@_db
def users_set_admin(username: str, admin: bool, url: str | None) -> None:
    _ctx(url).store.set_admin(username, admin, _actor())
    click.echo(f"{username} is {'now' if admin else 'no longer'} an admin.")


@users.command("delete")
@click.argument("username")
@_db
def users_delete(username: str, url: str | None) -> None:
    _ctx(url).store.delete_user(username, _actor())
    click.echo(f"Deleted user {username} with their tokens, sessions and grants.")


# ---- tokens ---------------------------------------------------------------------------------------
@click.group("tokens")
def tokens_group() -> None:
    """Personal access tokens: shown once, stored hashed, revocable."""


@tokens_group.command("create")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for.")
@click.option("--expires-in-days", type=float, default=None, help="Expire after this many days [never].")
@_db
def tokens_create(username: str, name: str, expires_in_days: float | None, url: str | None) -> None:
    from modelyard.auth import tokens

    ctx = _ctx(url)
    expiry = int((time.time() + expires_in_days * 86400) * 1000) if expires_in_days else None
    made = tokens.create(ctx, ctx.store.require_user(username), name, _actor(), expiry)
    click.echo(f"Token {made.token_id} for {username} (shown once, keep it secret):", err=True)
    click.echo(made.secret)


@tokens_group.command("list")
@click.argument("username", required=False)
@_json_option
@_db
def tokens_list(username: str | None, as_json: bool, url: str | None) -> None:
    from modelyard.auth import tokens

    ctx = _ctx(url)
    found = tokens.list_for(ctx, ctx.store.require_user(username) if username else None)
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in found], indent=2))
        return
    rows = [
        (t.token_id, t.username, t.name, _time(t.creation_time), _time(t.expiry_time), _time(t.last_used_time), _time(t.revoked_time))
        for t in found
    ]
    click.echo(_table(["ID", "USER", "NAME", "CREATED", "EXPIRES", "LAST USED", "REVOKED"], rows))


@tokens_group.command("revoke")
@click.argument("token_id")
@_db
def tokens_revoke(token_id: str, url: str | None) -> None:
    from modelyard.auth import tokens

    tokens.revoke(_ctx(url), token_id, _actor())
    click.echo(f"Revoked token {token_id}.")


# ---- groups ---------------------------------------------------------------------------------------
@click.group("groups")
def groups() -> None:
    """Groups of users (MLflow's roles): grant a team once."""


def _group_id(ctx: Any, name: str) -> int:
    return int(ctx.store.get_group_by_name(name).group_id)


@groups.command("create")
@click.argument("name")
@click.option("--description", default=None)
@_db
def groups_create(name: str, description: str | None, url: str | None) -> None:
    _ctx(url).store.create_group(name, description, _actor())
    click.echo(f"Created group {name}.")


@groups.command("list")
@_json_option
@_db
def groups_list(as_json: bool, url: str | None) -> None:
    ctx = _ctx(url)
    found = ctx.store.list_groups()
    users_by_id = {u.user_id: u.username for u in ctx.store.list_users()}
    members = {g.group_id: [users_by_id.get(m.user_id, "?") for m in ctx.store.list_members(g.group_id)] for g in found}
    if as_json:
        click.echo(json.dumps([{**g.to_dict(), "members": members[g.group_id]} for g in found], indent=2))
        return
    rows = [
        (g.name, ", ".join(members[g.group_id]), "; ".join(f"{p.resource_type}:{p.resource_pattern}={p.permission}" for p in g.grants))
        for g in found
    ]
    click.echo(_table(["GROUP", "MEMBERS", "GRANTS"], rows))


@groups.command("delete")
@click.argument("name")
@_db
def groups_delete(name: str, url: str | None) -> None:
    ctx = _ctx(url)
    ctx.store.delete_group(_group_id(ctx, name), _actor())
    click.echo(f"Deleted group {name}.")


@groups.command("add-member")
@click.argument("group")
@click.argument("username")
@_db
def groups_add_member(group: str, username: str, url: str | None) -> None:
    ctx = _ctx(url)
    ctx.store.add_member(_group_id(ctx, group), username, _actor())
    click.echo(f"{username} joined {group}.")


@groups.command("remove-member")
@click.argument("group")
@click.argument("username")
@_db
def groups_remove_member(group: str, username: str, url: str | None) -> None:
    ctx = _ctx(url)
    ctx.store.remove_member(_group_id(ctx, group), username, _actor())
    click.echo(f"{username} left {group}.")


_RESOURCE = click.Choice(["experiment", "registered_model"])
_PERMISSION = click.Choice(["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"], case_sensitive=False)


@groups.command("grant")
@click.argument("group")
@click.argument("resource_type", type=_RESOURCE)
@click.argument("resource_id")
@click.argument("permission", type=_PERMISSION)
@_db
def groups_grant(group: str, resource_type: str, resource_id: str, permission: str, url: str | None) -> None:
    """RESOURCE_ID is an experiment id or model name, or * for every one of the type."""
    ctx = _ctx(url)
    ctx.store.add_group_grant(_group_id(ctx, group), resource_type, resource_id, permission.upper(), _actor())
    click.echo(f"{group}: {permission.upper()} on {resource_type} {resource_id}.")


@groups.command("revoke")
@click.argument("group")
@click.argument("resource_type", type=_RESOURCE)
@click.argument("resource_id")
@_db
def groups_revoke(group: str, resource_type: str, resource_id: str, url: str | None) -> None:
    ctx = _ctx(url)
    found = [g for g in ctx.store.get_group_by_name(group).grants if (g.resource_type, g.resource_pattern) == (resource_type, resource_id)]
    if not found:
        raise click.ClickException(f"{group} has no grant on {resource_type} {resource_id}.")
    ctx.store.remove_group_grant(found[0].grant_id, _actor())
    click.echo(f"{group}: grant on {resource_type} {resource_id} removed.")


# ---- permissions (a user's own grants) --------------------------------------------------------------
@click.group("permissions")
def permissions() -> None:
    """A user's grants on experiments and registered models (they win over groups and the default)."""


@permissions.command("grant")
@click.argument("username")
@click.argument("resource_type", type=_RESOURCE)
@click.argument("resource_id")
@click.argument("permission", type=_PERMISSION)
@_db
def permissions_grant(username: str, resource_type: str, resource_id: str, permission: str, url: str | None) -> None:
    _ctx(url).store.grant_user(username, resource_type, resource_id, permission.upper(), _actor(), replace=True)
    click.echo(f"{username}: {permission.upper()} on {resource_type} {resource_id}.")


@permissions.command("revoke")
@click.argument("username")
@click.argument("resource_type", type=_RESOURCE)
@click.argument("resource_id")
@_db
def permissions_revoke(username: str, resource_type: str, resource_id: str, url: str | None) -> None:
    _ctx(url).store.revoke_user(username, resource_type, resource_id, _actor())
    click.echo(f"{username}: grant on {resource_type} {resource_id} removed.")


@permissions.command("list")
@click.argument("username")
@_json_option
@_db
def permissions_list(username: str, as_json: bool, url: str | None) -> None:
    ctx = _ctx(url)
    grants = ctx.store.list_user_grants(ctx.store.require_user(username).user_id)
    if as_json:
        click.echo(json.dumps([g.__dict__ for g in grants], indent=2))
        return
    click.echo(_table(["TYPE", "ID", "PERMISSION"], [(g.resource_type, g.resource_id, g.permission) for g in grants]))


# ---- audit ----------------------------------------------------------------------------------------
@click.command("audit")
@click.option("--max-results", type=int, default=50, show_default=True)
@_json_option
@_db
def audit(max_results: int, as_json: bool, url: str | None) -> None:
    """Changes to users, groups, tokens and grants, newest first."""
    from modelyard.store.auth import audit as audit_log

    events = audit_log.list_events(_ctx(url).store.engine, max_results)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    rows = [(_time(e.event_time), e.actor, e.address or "", e.action, e.target, json.dumps(e.details) if e.details else "") for e in events]
    click.echo(_table(["TIME", "ACTOR", "ADDRESS", "ACTION", "TARGET", "DETAILS"], rows))
