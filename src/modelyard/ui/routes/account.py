"""The signed-in user's own page (`/account`): their groups, a password change, and their personal
access tokens (for the `mlflow` client's MLFLOW_TRACKING_TOKEN and scripts).

A new token is shown once, on the page the create form answers with (never stored, never in a URL),
with a copy button (`static/account.js`). Listing shows name, creation, expiry, last use and whether
it still works; revoking is immediate on every worker (`auth.tokens`). Changing the password needs
the current one (a borrowed session alone cannot), is rate-limited like a sign-in, and ends the
user's other sessions; this browser gets a new one. Every form carries the CSRF token.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelyard import errors
from modelyard.auth import accounts, passwords, rate_limit, tokens
from modelyard.auth.identity import client_address
from modelyard.entities.auth import Token
from modelyard.exceptions import ModelyardException
from modelyard.ui import csrf
from modelyard.ui.access import actor, signed_in
from modelyard.ui.forms import FormFields, field
from modelyard.ui.render import UiRoute, page
from modelyard.ui.routes.login import start_session

router = APIRouter(route_class=UiRoute, include_in_schema=False)
CsrfChecked = Depends(csrf.require_token)
#: Lifetimes offered for a new token, in days; 0 is "never expires".
EXPIRY_DAYS = (7, 30, 90, 365, 0)
DEFAULT_EXPIRY_DAYS = 90
DAY_MS = 86_400_000
#: What `?done=` may say after a redirect (fixed texts: nothing typed is reflected).
NOTICES = {
    "password": "Your password is changed. Your other sessions are signed out.",
    "revoked": "The token is revoked: it no longer works anywhere.",
}


@router.get("/account")
def account_page(request: Request, done: str = "") -> Response:
    return _page(request, notice=NOTICES.get(done, ""))


@router.post("/account/password", dependencies=[CsrfChecked])
def change_password(request: Request, form: FormFields) -> Response:
    ctx, me = signed_in(request)
    current, new = form.get("current_password", ""), form.get("password", "")
    if new != form.get("confirm", ""):
        return _page(request, problem="The new password and its confirmation differ.", status_code=400)
    try:
        passwords.validate_password(new)  # before the (slow, rate-limited) check of the current one
    except ModelyardException as exc:
        return _page(request, problem=exc.message, status_code=exc.http_status)
    address = client_address(request.scope)
    try:
        rate_limit.check(ctx, me.username, address)
    except rate_limit.TooManyAttempts as exc:
        return _page(request, problem=exc.message, status_code=429)
    if accounts.verify_password(ctx, me.username, current) is None:
        rate_limit.failed(ctx, me.username, address)
        return _page(request, problem="The current password is wrong.", status_code=403)
    accounts.change_password(ctx, me.username, new, actor(request))
    response = RedirectResponse("/account?done=password", status_code=303)
    start_session(request, response, ctx, ctx.store.require_user(me.username))  # the change ended this one
    return response


@router.post("/account/tokens", dependencies=[CsrfChecked])
def create_token(request: Request, form: FormFields) -> Response:
    ctx, me = signed_in(request)
    days = form.get("expires_days", str(DEFAULT_EXPIRY_DAYS))
    if not days.isdigit() or int(days) not in EXPIRY_DAYS:
        raise ModelyardException.invalid_parameter(f"expires_days must be one of {EXPIRY_DAYS}.")
    expiry = int(time.time() * 1000) + int(days) * DAY_MS if int(days) else None
    made = tokens.create(ctx, ctx.store.require_user(me.username), field(form, "name"), actor(request), expiry)
    return _page(request, created=made)


@router.post("/account/tokens/revoke", dependencies=[CsrfChecked])
def revoke_token(request: Request, form: FormFields) -> Response:
    ctx, me = signed_in(request)
    token = ctx.store.get_token(field(form, "id"))
    if token is None or token.user_id != me.user_id:  # someone else's is as good as missing
        raise ModelyardException.not_found("No such token of yours.")
    tokens.revoke(ctx, token.token_id, actor(request))
    return RedirectResponse("/account?done=revoked", status_code=303)


def _page(
    request: Request, *, notice: str = "", problem: str = "", created: Token | None = None, status_code: int = 200
) -> Response:
    ctx, me = signed_in(request)
    user = ctx.store.get_user(me.username)
    if user is None:
        raise ModelyardException("Your user no longer exists.", errors.UNAUTHENTICATED)
    now = int(time.time() * 1000)
    listed = tokens.list_for(ctx, user)
    return page(
        request,
        "account.html",
        status_code,
        section="account",
        user=user,
        groups=me.groups,
        has_password=user.password_hash is not None,
        tokens=listed,
        state={t.token_id: _state(t, now) for t in listed},
        created=created,
        expiry_days=EXPIRY_DAYS,
        default_days=DEFAULT_EXPIRY_DAYS,
        notice=notice,
        problem=problem,
        server=str(request.base_url).rstrip("/"),
    )


def _state(token: Token, now: int) -> str:
    if token.revoked_time is not None:
        return "revoked"
    if token.expiry_time is not None and token.expiry_time <= now:
        return "expired"
    return "active"
