"""Signing in and out of the UI (`/login`, `/logout`), when auth is on.

The sign-in form posts the user name and password with the CSRF token (so another site cannot sign
a browser in as someone else). The password is checked like every other sign-in: behind the failed-
login limits (`auth.rate_limit`: per user name and per client address, a 429 page while locked out),
with one message for a wrong password and for an unknown user. Success makes a server-side session
(`auth.sessions.create`), sets its cookie (HttpOnly, SameSite=Lax, Secure over HTTPS), renews the
CSRF token, and redirects to `next` when that is a path on this site (`ui.next_url`), else to the
experiments. Signing out deletes the session everywhere at once and clears the cookie.

With auth off there is nothing to sign in to: both pages send the browser on to the experiments.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard.auth import accounts, rate_limit, sessions
from modelyard.auth.context import AuthContext
from modelyard.auth.identity import client_address, current_identity
from modelyard.entities.auth import User
from modelyard.ui import csrf
from modelyard.ui.access import auth_context, over_https
from modelyard.ui.forms import FormFields
from modelyard.ui.next_url import safe_next
from modelyard.ui.render import UiRoute, page

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)
#: Deliberately the same for an unknown user, a wrong password and a user without one (SSO).
WRONG = "Wrong user name or password."


@router.get("/login")
def login_page(request: Request, next: str = "") -> Response:
    target = safe_next(next)
    if auth_context(request) is None or current_identity(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _form(request, target)


@router.post("/login", dependencies=[CsrfChecked])
def sign_in(request: Request, form: FormFields) -> Response:
    ctx = auth_context(request)
    target = safe_next(form.get("next"))
    if ctx is None:
        return RedirectResponse(target, status_code=303)
    username, password = form.get("username", "").strip(), form.get("password", "")
    if not username or not password:
        return _form(request, target, username, "Enter your user name and password.", 400)
    address = client_address(request.scope)
    try:
        rate_limit.check(ctx, username, address)
    except rate_limit.TooManyAttempts as exc:
        response = _form(request, target, username, exc.message, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    user = accounts.verify_password(ctx, username, password)
    if user is None:
        rate_limit.failed(ctx, username, address)
        return _form(request, target, username, WRONG, 401)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, ctx, user)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def sign_out(request: Request) -> Response:
    ctx = auth_context(request)
    if ctx is None:
        return RedirectResponse("/experiments", status_code=303)
    sessions.destroy(ctx, request.cookies.get(sessions.COOKIE_NAME, ""))
    response = RedirectResponse("/login", status_code=303)
    flags = sessions.cookie_flags(secure=over_https(request), max_age=None)
    response.delete_cookie(sessions.COOKIE_NAME, **flags)  # type: ignore[arg-type]
    csrf.renew(request, response)
    return response


def start_session(request: Request, response: Response, ctx: AuthContext, user: User) -> None:
    """A new session for `user`, its cookie and a fresh CSRF token on `response` (signing in, and
    after a password change, which ends the user's other sessions)."""
    value = sessions.create(ctx, user)
    flags = sessions.cookie_flags(secure=over_https(request), max_age=int(ctx.config.session_seconds))
    response.set_cookie(sessions.COOKIE_NAME, value, **flags)  # type: ignore[arg-type]
    csrf.renew(request, response)


def _form(request: Request, target: str, username: str = "", message: str = "", status_code: int = 200) -> Response:
    return page(
        request, "login.html", status_code, section="login", next=target, username=username, message=message
    )
