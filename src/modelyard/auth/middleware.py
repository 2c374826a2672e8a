"""The auth middleware: pure ASGI, in front of every route of a service when `MODELYARD_AUTH` is on.

Per request: find the route's rule (`RouteTable`, built from the app's own routes), identify the
caller (`identify`), and check the rule; then hand the request on with the caller's `Identity` in
`scope["modelyard.identity"]`. It is not installed at all when auth is off, so then it costs nothing.

Answers, in MLflow's error shape: no or bad credentials 401 `UNAUTHENTICATED` with
`WWW-Authenticate: Basic realm="mlflow"` (an HTML page's GET is redirected to `/login?next=...`
instead); signed in but not allowed 403 `PERMISSION_DENIED`; locked out after failed sign-ins 429
`REQUEST_LIMIT_EXCEEDED` with Retry-After. A refused UI page or form (its rule has `page` or `form`)
gets the same status as the UI's HTML error page instead, when the app serves the UI
(`app.state.page_error`, set by `modelyard.ui.mount`): no JSON, and no Basic challenge that would
make the browser pop up its own password dialog. A route that reads a resource id from the body has its body
read here (bounded like the route bounds it) and replayed to the route unchanged.

The common case stays in memory: a cached credential, a cached run-to-experiment fact and the caller's
cached grants make a check a few dictionary look-ups; only misses await the thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard import errors
from modelyard.auth import rules
from modelyard.auth.context import AuthContext
from modelyard.auth.identify import Unauthenticated, identify
from modelyard.auth.identity import SCOPE_KEY, Identity
from modelyard.auth.rate_limit import TooManyAttempts
from modelyard.auth.resolve import Lookups, Need, RequestArgs, needs_of, ui_params
from modelyard.auth.routing import RouteTable
from modelyard.exceptions import ModelyardException
from modelyard.protocol.parsing import PARSED_BODY, json_args, read_query

log = logging.getLogger(__name__)

LOGIN_PATH = "/login"
UNKNOWN_ROUTE = rules.Rule(rules.AUTHENTICATED, note="no such route: the app answers 404/405")
#: Form bodies the UI posts are small (`ui.forms.MAX_FORM_BYTES`).
MAX_FORM_BYTES = 256 * 1024
_NEEDS_TEXT = {rules.READ: "READ", rules.UPDATE: "EDIT", rules.DELETE: "MANAGE", rules.MANAGE: "MANAGE"}
#: Renders a refusal of a UI page or form: (scope, exception) -> an ASGI response.
PageError = Callable[[Scope, ModelyardException], Any]


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        ctx: AuthContext,
        routes: RouteTable,
        lookups: Lookups,
        max_body_bytes: int,
        served: Callable[[], tuple[str, str] | None] = lambda: None,
        page_error: PageError | None = None,
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.routes = routes
        self.lookups = lookups
        self.max_body_bytes = max_body_bytes
        self.served = served
        self.page_error = page_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        found = self.routes.match(method, scope["path"])
        rule, path_params = found if found is not None else (UNKNOWN_ROUTE, {})
        headers = dict(scope["headers"])
        try:
            identity = await identify(self.ctx, scope, headers)
        except TooManyAttempts as exc:
            await self._refuse(scope, receive, send, rule, exc, [(b"retry-after", str(exc.retry_after).encode())])
            return
        except Unauthenticated as exc:
            if rule.kind == rules.PUBLIC:
                identity = None
            else:
                await self._unauthenticated(scope, receive, send, rule, exc)
                return
        if rule.kind == rules.PUBLIC:
            if identity is not None:
                scope[SCOPE_KEY] = identity
            await self.app(scope, receive, send)
            return
        if identity is None:
            await self._unauthenticated(scope, receive, send, rule, Unauthenticated())
            return
        scope[SCOPE_KEY] = identity
        try:
            receive = await self._check(rule, identity, scope, headers, receive, path_params)
        except ModelyardException as exc:
            await self._refuse(scope, receive, send, rule, exc)
            return
        await self.app(scope, receive, send)

    async def _check(
        self,
        rule: rules.Rule,
        identity: Identity,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
        path_params: dict[str, str],
    ) -> Receive:
        """Raises PERMISSION_DENIED (or the 400/404 the route would give for a bad id); returns the
        `receive` to pass on (replaying the body when it was read here)."""
        if rule.kind == rules.AUTHENTICATED or identity.is_admin:
            return receive
        if rule.kind == rules.ADMIN:
            raise _denied("only an admin may do this")
        request, receive = await self._request_args(rule, scope, headers, receive, path_params)
        if rule.kind == rules.SELF:
            if request.one(rules.Target(rules.SELF, rules.ARG, ("username",))) != identity.username:
                raise _denied("only the user themselves or an admin may do this")
            return receive
        needs = await needs_of(rule, request, self.lookups, self.served)
        for need in needs:
            self._require(identity, need)
        return receive

    def _require(self, identity: Identity, need: Need) -> None:
        if need.resource_id is None:
            raise _denied("only an admin may do this")
        permission = self.ctx.permission_for(identity, need.resource_type, need.resource_id)
        if not permission.allows(need.action):
            kind = "experiment" if need.resource_type == "experiment" else "registered model"
            raise _denied(
                f"this needs {_NEEDS_TEXT[need.action]} on {kind} '{need.resource_id}' and "
                f"user '{identity.username}' has {permission.name}"
            )

    async def _request_args(
        self,
        rule: rules.Rule,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
        path_params: dict[str, str],
    ) -> tuple[RequestArgs, Receive]:
        if not rule.needs_args:
            return RequestArgs({}, {}, path_params), receive
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if rule.page or rule.query:  # the route reads Starlette's query parameters (last value wins)
            query = Request(scope).query_params.multi_items()
            return RequestArgs({}, ui_params(query, False), path_params, ui=True), receive
        if rule.form:
            body, receive = await _read_body(receive, MAX_FORM_BYTES)
            return RequestArgs({}, ui_params(_form_pairs(body, content_type), True), path_params, ui=True), receive
        if scope["method"] in ("GET", "HEAD") and scope["query_string"]:  # as `protocol.parsing.read_args`
            return RequestArgs(read_query(Request(scope)), {}, path_params), receive
        body, receive = await _read_body(receive, self.max_body_bytes)
        args = json_args(body, content_type or None)
        scope[PARSED_BODY] = args  # the route's `read_args` takes it as it is (the body is replayed too)
        return RequestArgs(args, {}, path_params), receive

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rule: rules.Rule,
        exc: ModelyardException,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """MLflow's JSON error (with `extra` headers); the UI's error page for a UI page or form when
        the app serves the UI."""
        if self.page_error is not None and (rule.page or rule.form):
            await self.page_error(scope, exc)(scope, receive, send)
            return
        await _error(send, exc, extra)

    async def _unauthenticated(
        self, scope: Scope, receive: Receive, send: Send, rule: rules.Rule, exc: ModelyardException
    ) -> None:
        # htmx fetching a fragment would swap the whole sign-in page into it: it gets the error page.
        htmx = any(name == b"hx-request" for name, _ in scope["headers"])
        if rule.page and scope["method"] in ("GET", "HEAD") and not (htmx and self.page_error is not None):
            target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
            location = f"{LOGIN_PATH}?next={quote(target, safe='')}"
            await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self._refuse(scope, receive, send, rule, exc, [(b"www-authenticate", b'Basic realm="mlflow"')])


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ModelyardException("The client went away.", errors.BAD_REQUEST)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ModelyardException.invalid_parameter(
                f"The request body is at least {size} bytes, over the limit of {limit} bytes (MODELYARD_MAX_REQUEST_BODY_BYTES)."
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _form_pairs(body: bytes, content_type: str) -> list[tuple[str, str]]:
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return []
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelyardException(f"The form is not valid UTF-8 form data: {exc}", errors.BAD_REQUEST) from exc


def _denied(why: str) -> ModelyardException:
    return ModelyardException(f"Permission denied: {why}.", errors.PERMISSION_DENIED)


async def _error(send: Send, exc: ModelyardException, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps({"error_code": exc.error_code, "message": exc.message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

