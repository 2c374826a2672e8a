"""The permissions section of an experiment's or a model's page (and of the admin's permissions page):
the users' and groups' grants on one resource, the default for everyone else, and the forms to grant
and revoke (`templates/_permissions.html`). Shown to the resource's MANAGE holders only; the forms
post to `ui.routes.permissions`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import Request

from modelyard.store.auth.permissions import EXPERIMENT, REGISTERED_MODEL
from modelyard.store.auth.summaries import ResourceGrant, grants_on
from modelyard.ui.access import auth_context, can, signed_in
from modelyard.ui.next_url import here

#: The levels offered in the forms, weakest first (MLflow's names).
LEVELS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
KIND_NAMES = {EXPERIMENT: "experiment", REGISTERED_MODEL: "registered model"}


@dataclass(frozen=True)
class Section:
    """What the `_permissions.html` partial shows for one resource."""

    resource_type: str
    resource_id: str
    #: Where its forms post, and the hidden fields naming the resource there.
    action: str
    hidden: tuple[tuple[str, str], ...]
    grants: list[ResourceGrant]
    #: The permission of everyone without a grant (MODELYARD_AUTH_DEFAULT_PERMISSION).
    default: str
    #: Groups may be granted to by admins only.
    groups_allowed: bool
    #: Where the forms come back to.
    back: str
    #: Shown open (the page is back from one of its forms).
    open: bool = False
    levels: tuple[str, ...] = LEVELS

    @property
    def kind(self) -> str:
        return KIND_NAMES[self.resource_type]


def permissions_section(request: Request, resource_type: str, resource_id: str) -> Section | None:
    """The section for a resource's page; None with auth off or when the caller may not manage it.
    Its forms come back to the page as it is, with `perms=1`: the section open."""
    if auth_context(request) is None or not can(request, resource_type, resource_id, "manage"):
        return None
    if resource_type == EXPERIMENT:
        action, hidden = f"/experiments/{resource_id}/permissions", ()
    else:
        action, hidden = "/model/permissions", (("name", resource_id),)
    shown = section(request, resource_type, resource_id, action, hidden, here(request, perms="1"))
    return replace(shown, open=request.query_params.get("perms") == "1")


def section(
    request: Request, resource_type: str, resource_id: str, action: str, hidden: tuple[tuple[str, str], ...], back: str
) -> Section:
    ctx, me = signed_in(request)
    return Section(
        resource_type,
        resource_id,
        action,
        hidden,
        grants_on(ctx.store.engine, resource_type, resource_id),
        ctx.config.default_permission.name,
        me.is_admin,
        back,
    )
