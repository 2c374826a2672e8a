"""Cross-site request forgery protection for the UI's state-changing requests.

Double-submit token: the first page a browser loads sets a random `modelyard_csrf` cookie (HttpOnly,
SameSite=Strict) and the page carries the same value in a `<meta>` tag, from which htmx sends it as
the `X-CSRF-Token` header and plain forms as the `csrf_token` field. A POST is accepted only when the
two match. Another site can neither read the cookie nor the page, so it cannot forge the pair; the
SameSite=Strict cookie is not even sent on a cross-site request. (The services' origin check refuses
foreign `Origin` headers as well; this token is the defence that does not depend on browsers sending it.)
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.responses import Response

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.ui.access import over_https
from modelyard.ui.forms import read_form

COOKIE = "modelyard_csrf"
HEADER = "x-csrf-token"
FORM_FIELD = "csrf_token"


def token_for(request: Request) -> str:
    """The browser's token: from its cookie, or a new one that `set_cookie` will store."""
    existing = request.cookies.get(COOKIE, "")
    if len(existing) == 43 and existing.replace("-", "").replace("_", "").isalnum():
        return existing
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return token


def set_cookie(request: Request, response: Response) -> None:
    """Store the token when this response introduced it."""
    if request.cookies.get(COOKIE) != token_for(request):
        _store(request, response, token_for(request))


def renew(request: Request, response: Response) -> None:
    """A fresh token with the response that signs a user in or out: a token planted in the browser
    before (by a sibling subdomain's cookie, say) is not carried into the session."""
    _store(request, response, secrets.token_urlsafe(32))


def _store(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=over_https(request), path="/")


async def require_token(request: Request) -> None:
    """FastAPI dependency of every state-changing UI route: the header or form token must match the cookie."""
    cookie = request.cookies.get(COOKIE, "")
    sent = request.headers.get(HEADER, "") or (await read_form(request)).get(FORM_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise ModelyardException(
            "This form has expired or did not come from this site: reload the page and try again.",
            errors.PERMISSION_DENIED,
        )
