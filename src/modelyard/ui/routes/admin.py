"""The admin's pages (admins only; the rule table refuses everyone else with a 403 page): users,
groups and the audit log. Grants are on `/admin/permissions` (`ui.routes.permissions`).

- `/admin/users`: create (name, password, admin or not), make or unmake admin, set a new password
  (which ends that user's sessions), delete (their grants, memberships, tokens and sessions go too).
  An admin cannot take away their own admin rights or delete themselves, so a server is never left
  without the admin it needs to start.
- `/admin/groups`: create, add and remove members, delete; each group's grants are listed (and
  changed on the permissions pages).
- `/admin/audit`: every change to users, groups, tokens and grants, newest first, a page at a time.

Every form carries the CSRF token and posts back with a redirect (303) to the page it came from.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard import errors
from modelyard.auth import accounts
from modelyard.exceptions import ModelyardException
from modelyard.store.auth import audit
from modelyard.store.auth.summaries import memberships
from modelyard.ui import csrf
from modelyard.ui.access import actor, admin
from modelyard.ui.forms import FormFields, field
from modelyard.ui.grants_section import KIND_NAMES
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.routes.permissions import admin_permissions_url, resource_url

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)
AUDIT_PAGE = 50


@router.get("/admin")
def admin_home() -> Response:
    return RedirectResponse("/admin/users", status_code=307)


# --- users ----------------------------------------------------------------------------------------
@router.get("/admin/users")
def users_page(request: Request) -> Response:
    ctx, _ = admin(request)
    return page(
        request,
        "admin_users.html",
        section="admin",
        tab="users",
        users=ctx.store.list_users(),
        groups_of=memberships(ctx.store.engine).groups,
        permissions_url=admin_permissions_url,
    )


@router.post("/admin/users", dependencies=[CsrfChecked])
def create_user(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    username = field(form, "username")
    accounts.create_user(ctx, username, form.get("password", ""), actor(request), is_admin=bool(form.get("is_admin")))
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/admin", dependencies=[CsrfChecked])
def set_admin(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    username = _not_myself(request, field(form, "username"), "take away your own admin rights")
    ctx.store.set_admin(username, form.get("is_admin") == "1", actor(request))
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/password", dependencies=[CsrfChecked])
def reset_password(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    accounts.change_password(ctx, field(form, "username"), form.get("password", ""), actor(request))
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/delete", dependencies=[CsrfChecked])
def delete_user(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    username = _not_myself(request, field(form, "username"), "delete yourself")
    ctx.store.delete_user(username, actor(request))
    return RedirectResponse("/admin/users", status_code=303)


def _not_myself(request: Request, username: str, what: str) -> str:
    _, me = admin(request)
    if username == me.username:
        raise ModelyardException(
            f"You cannot {what}: another admin has to (a server must keep an admin).", errors.INVALID_PARAMETER_VALUE
        )
    return username


# --- groups ---------------------------------------------------------------------------------------
@router.get("/admin/groups")
def groups_page(request: Request) -> Response:
    ctx, _ = admin(request)
    return page(
        request,
        "admin_groups.html",
        section="admin",
        tab="groups",
        groups=ctx.store.list_groups(),
        members=memberships(ctx.store.engine).members,
        usernames=[u.username for u in ctx.store.list_users()],
        kinds=KIND_NAMES,
        resource_url=resource_url,
    )


@router.post("/admin/groups", dependencies=[CsrfChecked])
def create_group(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    ctx.store.create_group(field(form, "name"), form.get("description", "").strip() or None, actor(request))
    return RedirectResponse("/admin/groups", status_code=303)


@router.post("/admin/groups/members", dependencies=[CsrfChecked])
def change_members(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    group_id, username, op = _group_id(form), field(form, "username"), form.get("op", "")
    if op == "add":
        ctx.store.add_member(group_id, username, actor(request))
    elif op == "remove":
        ctx.store.remove_member(group_id, username, actor(request))
    else:
        raise bad_request("op must be 'add' or 'remove'.")
    return RedirectResponse(f"/admin/groups#group-{group_id}", status_code=303)


@router.post("/admin/groups/delete", dependencies=[CsrfChecked])
def delete_group(request: Request, form: FormFields) -> Response:
    ctx, _ = admin(request)
    ctx.store.delete_group(_group_id(form), actor(request))
    return RedirectResponse("/admin/groups", status_code=303)


def _group_id(form: dict[str, str]) -> int:
    value = field(form, "group_id")
    if not value.isdigit():
        raise bad_request("group_id must be a number.")
    return int(value)


# --- the audit log --------------------------------------------------------------------------------
@router.get("/admin/audit")
def audit_page(request: Request, before_id: int | None = None) -> Response:
    ctx, _ = admin(request)
    events = audit.list_events(ctx.store.engine, AUDIT_PAGE, before_id)
    older = f"/admin/audit?before_id={events[-1].event_id}" if len(events) == AUDIT_PAGE else None
    return page(
        request, "admin_audit.html", section="admin", tab="audit", events=events, older_url=older, paged=before_id is not None
    )
