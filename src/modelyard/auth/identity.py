"""Who a request acts for: the `Identity` the auth middleware proved, and how routes read it.

Interface for routes (the API routers and the UI), stable:

- The middleware (`modelyard.auth.middleware`) puts the caller's `Identity` in the ASGI scope under
  `SCOPE_KEY` before the request reaches any route; FastAPI routes read it with
  `current_identity(request)` (or `request.scope.get(SCOPE_KEY)`).
- With auth off (`MODELYARD_AUTH` unset) no middleware is installed and `current_identity` answers
  None: callers treat None as "no auth, everything allowed".
- A request on a public route (the login page, `/health`, static files) that carries no credentials
  has no identity either: None there means anonymous.
- `Identity.username` is the MLflow user name (what `users/current` answers, what runs record as
  `user_id`); `groups` are the names of the user's groups (from the database, plus the SSO proxy's
  groups header for trusted-header sign-ins); `method` says how it was proved.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from modelyard import errors
from modelyard.entities.auth import Actor
from modelyard.exceptions import ModelyardException
from modelyard.store.search.visibility import Visibility

#: The ASGI scope key holding the request's `Identity`.
SCOPE_KEY = "modelyard.identity"

BASIC = "basic"  # HTTP basic auth with the user's password
TOKEN = "token"  # a personal access token, as a bearer token or as the basic-auth password
SSO = "sso"  # the trusted proxy's headers
SESSION = "session"  # the UI's session cookie


@dataclass(frozen=True)
class Identity:
    user_id: int
    username: str
    is_admin: bool
    groups: tuple[str, ...] = ()
    method: str = BASIC
    #: The token's id when `method` is TOKEN (so a token can list/revoke itself, and audit names it).
    token_id: str | None = None


def current_identity(request: Any) -> Identity | None:
    """The identity of a Starlette/FastAPI request (or anything with an ASGI `scope`), or None."""
    scope = getattr(request, "scope", request)
    identity = scope.get(SCOPE_KEY)
    return identity if isinstance(identity, Identity) else None


def client_address(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def readable(request: Any, resource_type: str) -> Visibility | None:
    """The experiments ("experiment") or registered models ("registered_model") the request's caller
    may read, for a store's `visible=` filter; None when auth is off (no filter, no cost). Call it from a
    plain `def` route (it may load the caller's grants from the database)."""
    auth, identity = _auth(request), current_identity(request)
    if auth is None or identity is None:
        return None
    return auth.visibility(identity, resource_type)  # type: ignore[no-any-return]


def require(request: Any, resource_type: str, resource_id: str, action: str) -> None:
    """Raise PERMISSION_DENIED unless the caller may do `action` ("read", "update", "delete",
    "manage") on the resource; nothing when auth is off. For routes that find out what they touch
    while they run (`/graphql` resolvers)."""
    auth, identity = _auth(request), current_identity(request)
    if auth is None or identity is None:
        return
    if not auth.permission_for(identity, resource_type, resource_id).allows(action):
        raise ModelyardException(
            f"Permission denied: user '{identity.username}' may not {action} {resource_type} '{resource_id}'.",
            errors.PERMISSION_DENIED,
        )


# --- what routes report after a change, so grants follow resources (no-ops with auth off) ------------
def record_creator(request: Any, resource_type: str, resource_id: str) -> None:
    """The creator of an experiment or registered model gets MANAGE on it (as in MLflow)."""
    auth, identity = _auth(request), current_identity(request)
    if auth is not None and identity is not None:
        auth.store.grant_user(identity.username, resource_type, resource_id, "MANAGE", _actor(request, identity), replace=True)


def record_rename(request: Any, resource_type: str, old_id: str, new_id: str) -> None:
    """A registered model's grants follow its new name."""
    auth, identity = _auth(request), current_identity(request)
    if auth is not None and identity is not None and old_id != new_id:
        auth.store.rename_resource(resource_type, old_id, new_id, _actor(request, identity))


def record_delete(request: Any, resource_type: str, resource_id: str) -> None:
    """A deleted registered model's grants go with it (a new model of that name starts clean)."""
    auth, identity = _auth(request), current_identity(request)
    if auth is not None and identity is not None:
        auth.store.delete_resource(resource_type, resource_id, _actor(request, identity))


def _auth(request: Any) -> Any:
    scope = getattr(request, "scope", request)
    return getattr(getattr(scope.get("app"), "state", None), "auth", None)


def _actor(request: Any, identity: Identity) -> Actor:
    return Actor(identity.username, client_address(getattr(request, "scope", request)))


def request_user(request: Request) -> str | None:
    """The user a request acts for: with auth on, the authenticated user (nothing the request says
    about itself counts); with auth off, the basic-auth user name the mlflow client sends from
    MLFLOW_TRACKING_USERNAME, else an `X-Modelyard-User` header (a label, not a proof)."""
    identity = current_identity(request)
    if identity is not None:
        return identity.username
    if getattr(request.app.state, "auth", None) is not None:
        return None
    authorization = request.headers.get("authorization", "")
    if authorization[:6].lower() == "basic ":
        try:
            user = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            user = ""
        if user:
            return user[:256]
    return request.headers.get("x-modelyard-user", "")[:256] or None
