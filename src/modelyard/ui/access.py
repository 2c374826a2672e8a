"""What the UI needs to know about the signed-in user, on top of `modelyard.auth`.

Who may call a UI route is decided before the route runs, by the auth middleware and its rule table
(`modelyard.auth.rules`: pages by the resource they show, form posts by what they change, the
account pages for any signed-in user, the admin pages for admins). Routes use these helpers for what
depends on the answer: whether to show an experiment's permissions section (`can`), whose tokens to
list (`signed_in`), who the audit log names (`actor`). With auth off (`MODELYARD_AUTH` unset) there
is no `app.state.auth`: the account and admin pages answer 404 and `can` allows everything.
"""

from __future__ import annotations

from fastapi import Request

from modelyard import errors
from modelyard.auth.context import AuthContext
from modelyard.auth.identity import Identity, client_address, current_identity
from modelyard.entities.auth import Actor
from modelyard.exceptions import ModelyardException

AUTH_OFF = "This server runs without sign-in (MODELYARD_AUTH is off): there are no accounts to manage."


def auth_context(request: Request) -> AuthContext | None:
    return getattr(request.app.state, "auth", None)


def signed_in(request: Request) -> tuple[AuthContext, Identity]:
    """The auth context and the caller; 404 with auth off, 401 for an anonymous caller."""
    ctx = auth_context(request)
    if ctx is None:
        raise ModelyardException.not_found(AUTH_OFF)
    identity = current_identity(request)
    if identity is None:
        raise ModelyardException("Sign in first.", errors.UNAUTHENTICATED)
    return ctx, identity


def admin(request: Request) -> tuple[AuthContext, Identity]:
    """As `signed_in`, for an admin only (the rule table says so too; this keeps the route honest)."""
    ctx, identity = signed_in(request)
    if not identity.is_admin:
        raise ModelyardException("Only an admin may open this page.", errors.PERMISSION_DENIED)
    return ctx, identity


def can(request: Request, resource_type: str, resource_id: str, action: str) -> bool:
    """Whether the caller may do `action` ("read", "update", "delete", "manage") on the resource;
    always with auth off."""
    ctx, identity = auth_context(request), current_identity(request)
    if ctx is None or identity is None:
        return ctx is None
    return ctx.permission_for(identity, resource_type, resource_id).allows(action)


def actor(request: Request) -> Actor:
    """The caller as the audit log records them."""
    identity = current_identity(request)
    return Actor(identity.username if identity else "anonymous", client_address(request.scope))


def over_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a proxy that says so. A client
    lying about it only makes its own cookies HTTPS-only."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"
