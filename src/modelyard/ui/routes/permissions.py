"""Who may do what on an experiment or a registered model, in the browser.

- The permissions section of an experiment's page and of a model's page (`ui.grants_section`),
  shown to MANAGE holders only, posts to `/experiments/{id}/permissions` and `/model/permissions`,
  which the rule table lets through for MANAGE on that resource only.
- The admin's permissions page (`/admin/permissions`): the grants on any one resource, or all of one
  user's (their own and their groups'), with the same forms posting to `/admin/permissions`.

Granting to a user adds or changes their grant; granting to a group (admins only, like MLflow's
role API) adds or changes the group's grant on that resource. Every change is audited by the store
and takes effect on every worker at once (the auth caches are emptied).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard import errors
from modelyard.entities.auth import GroupGrant
from modelyard.exceptions import ModelyardException
from modelyard.store.auth import permissions
from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL, RESOURCE_TYPES
from modelyard.store.auth.summaries import GROUP, USER
from modelyard.ui import csrf
from modelyard.ui.access import actor, admin, signed_in
from modelyard.ui.forms import FormFields, field
from modelyard.ui.grants_section import KIND_NAMES, LEVELS, section
from modelyard.ui.next_url import safe_next
from modelyard.ui.render import UiRoute, bad_request, page
from modelyard.ui.routes.experiments import tracking_store
from modelyard.ui.routes.models import model_url, registry_store

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)


# --- the resources' own forms (MANAGE on the resource) ---------------------------------------------
@router.post("/experiments/{experiment_id}/permissions", dependencies=[CsrfChecked])
def experiment_permissions(request: Request, experiment_id: str, form: FormFields) -> Response:
    experiment_id = tracking_store(request).get_experiment(experiment_id).experiment_id
    change(request, EXPERIMENT, experiment_id, form)
    return RedirectResponse(safe_next(form.get("back"), f"/experiments/{experiment_id}"), status_code=303)


@router.post("/model/permissions", dependencies=[CsrfChecked])
def model_permissions(request: Request, form: FormFields) -> Response:
    name = registry_store(request).get_registered_model(field(form, "name")).name
    change(request, REGISTERED_MODEL, name, form)
    return RedirectResponse(safe_next(form.get("back"), model_url(name)), status_code=303)


def change(request: Request, resource_type: str, resource_id: str, form: dict[str, str]) -> None:
    """Grant (`op=grant`, adding or changing) or revoke (`op=revoke`) the `principal`'s (user or group)
    permission on the resource, named by `who`."""
    ctx, me = signed_in(request)
    op, principal, who = form.get("op", ""), form.get("principal", USER), field(form, "who")
    if principal not in (USER, GROUP):
        raise ModelyardException.invalid_parameter("principal must be 'user' or 'group'.")
    if principal == GROUP and not me.is_admin:
        raise ModelyardException("Only an admin may grant to or revoke from a group.", errors.PERMISSION_DENIED)
    by = actor(request)
    if op == "grant":
        level = permissions.get_permission(field(form, "permission")).name
        if principal == USER:
            ctx.store.grant_user(who, resource_type, resource_id, level, by, replace=True)
            return
        group = ctx.store.get_group_by_name(who)
        held = _group_grant(group.grants, resource_type, resource_id)
        if held is None:
            ctx.store.add_group_grant(group.group_id, resource_type, resource_id, level, by)
        else:
            ctx.store.update_group_grant(held, level, by)
    elif op == "revoke":
        if principal == USER:
            ctx.store.revoke_user(who, resource_type, resource_id, by)
            return
        held = _group_grant(ctx.store.get_group_by_name(who).grants, resource_type, resource_id)
        if held is None:
            raise ModelyardException.not_found(f"Group {who} has no grant on this {KIND_NAMES[resource_type]}.")
        ctx.store.remove_group_grant(held, by)
    else:
        raise ModelyardException.invalid_parameter("op must be 'grant' or 'revoke'.")


def _group_grant(grants: tuple[GroupGrant, ...], resource_type: str, resource_id: str) -> int | None:
    for grant in grants:
        if grant.resource_type == resource_type and grant.resource_pattern == resource_id:
            return grant.grant_id
    return None


# --- the admin's permissions page ------------------------------------------------------------------
def admin_permissions_url(**params: str) -> str:
    return "/admin/permissions" + ("?" + urlencode(params) if params else "")


@router.get("/admin/permissions")
def admin_permissions_page(
    request: Request, resource_type: str = "", resource_id: str = "", username: str = ""
) -> Response:
    ctx, _ = admin(request)
    shown = None
    label = ""
    if resource_type or resource_id:
        if resource_type not in RESOURCE_TYPES or not resource_id:
            raise bad_request("Name a resource: resource_type (experiment or registered_model) and resource_id.")
        resource_id, label = _resource(request, resource_type, resource_id)
        back = admin_permissions_url(resource_type=resource_type, resource_id=resource_id)
        hidden = (("resource_type", resource_type), ("resource_id", resource_id))
        shown = section(request, resource_type, resource_id, "/admin/permissions", hidden, back)
    user = ctx.store.require_user(username) if username else None
    return page(
        request,
        "admin_permissions.html",
        section="admin",
        tab="permissions",
        resource_type=resource_type,
        resource_id=resource_id,
        label=label,
        permissions=shown,
        user=user,
        user_grants=ctx.store.list_user_grants(user.user_id) if user else [],
        user_groups=ctx.store.list_groups(user_id=user.user_id) if user else [],
        default=ctx.config.default_permission.name,
        levels=LEVELS,
        kinds=KIND_NAMES,
        back=admin_permissions_url(username=username) if user else "",
        resource_url=resource_url,
    )


@router.post("/admin/permissions", dependencies=[CsrfChecked])
def admin_change(request: Request, form: FormFields) -> Response:
    admin(request)
    resource_type = field(form, "resource_type")
    if resource_type not in RESOURCE_TYPES:
        raise bad_request("resource_type must be experiment or registered_model.")
    resource_id, _ = _resource(request, resource_type, field(form, "resource_id"))
    change(request, resource_type, resource_id, form)
    default = admin_permissions_url(resource_type=resource_type, resource_id=resource_id)
    return RedirectResponse(safe_next(form.get("back"), default), status_code=303)


def _resource(request: Request, resource_type: str, resource_id: str) -> tuple[str, str]:
    """The resource's id as stored and its name (404 when there is no such resource)."""
    if resource_type == EXPERIMENT:
        experiment = tracking_store(request).get_experiment(resource_id)
        return experiment.experiment_id, experiment.name
    model = registry_store(request).get_registered_model(resource_id)
    return model.name, model.name


def resource_url(resource_type: str, resource_id: str) -> str:
    return f"/experiments/{resource_id}" if resource_type == EXPERIMENT else model_url(resource_id)
