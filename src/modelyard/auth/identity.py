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

from dataclasses import dataclass
from typing import Any

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
