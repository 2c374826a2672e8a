"""Browser sessions for the UI's sign-in: server-side, so signing out (or a password change, or an
admin deleting the user) ends them at once.

Interface for the UI (stable):

- `create(ctx, user) -> str`: after the login form's password checked out (`accounts.verify_password`,
  behind `rate_limit.check`/`rate_limit.failed` like every other sign-in), make a session and get the
  cookie value: 43 URL-safe characters from 256 random bits. The database keeps only its SHA-256, so
  a leaked database holds no usable session.
- Set it as `COOKIE_NAME` with `cookie_flags(secure=...)`: HttpOnly, SameSite=Lax, Path=/, Secure when
  the request came over HTTPS (`request.url.scheme == "https"`, or the proxy's X-Forwarded-Proto), and
  Max-Age of the session's lifetime (`MODELYARD_AUTH_SESSION_HOURS`).
- `verify(ctx, value) -> User | None`: the middleware (`modelyard.auth.identify`) calls it for every
  request that carries the cookie and no Authorization header, caching the answer per worker like any
  credential; routes then see `Identity(method=SESSION)` in `request.scope["modelyard.identity"]`
  (`identity.current_identity(request)`). The UI never has to call it itself.
- `destroy(ctx, value)`: sign-out. Deletes the row and drops every worker's cached proof of it, then
  the UI clears the cookie (Max-Age=0).
- `/login` and `/logout` are reserved, public paths in the rule table (`modelyard.auth.rules`); an
  unauthenticated browser GET of a page is redirected to `/login?next=<path>` by the middleware.
- CSRF: state-changing UI forms keep `ui/csrf.py`'s double-submit token; API writes from a page are
  covered by the browser guard's Origin and JSON content-type checks.
"""

from __future__ import annotations

import hashlib
import secrets

from modelyard.auth.context import AuthContext
from modelyard.entities.auth import User
from modelyard.store.auth.audit import now_ms

COOKIE_NAME = "modelyard_session"
_VALUE_CHARS = 43


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def create(ctx: AuthContext, user: User) -> str:
    value = secrets.token_urlsafe(32)
    ctx.store.insert_session(_digest(value), user.user_id, now_ms() + int(ctx.config.session_seconds * 1000))
    return value


def verify(ctx: AuthContext, value: str) -> User | None:
    if not isinstance(value, str) or len(value) != _VALUE_CHARS:
        return None
    found = ctx.store.find_session(_digest(value))
    if found is None:
        return None
    expiry_time, user = found
    return user if expiry_time > now_ms() else None


def destroy(ctx: AuthContext, value: str) -> None:
    """Idempotent: an unknown or expired value is not an error (a double sign-out)."""
    if isinstance(value, str) and value:
        ctx.store.delete_session(_digest(value))


def cookie_flags(secure: bool, max_age: int | None) -> dict[str, object]:
    """Keyword arguments for Starlette's `Response.set_cookie(COOKIE_NAME, value, **flags)`."""
    flags: dict[str, object] = {"httponly": True, "samesite": "lax", "path": "/", "secure": secure}
    if max_age is not None:
        flags["max_age"] = max_age
    return flags
