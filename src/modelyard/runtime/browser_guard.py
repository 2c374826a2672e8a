"""Browser-origin protection for every service: one pure ASGI middleware, `BrowserGuard`.

A browser will send requests to our services on behalf of any page it shows: a cross-site form or
`fetch(..., {mode: "no-cors"})` POST ("simple request": no preflight) can create experiments, and a page
whose own DNS name is rebound to 127.0.0.1 can read a local server's answers. The mlflow client and other
programs send no `Origin`, so none of this touches them. The rules, in the order they are checked:

1. **Host allow-list** (DNS rebinding), every request: a `Host` header whose name (any port) is not in
   `allowed_hosts` is refused with 403. Entries are names or addresses (`localhost`, `10.0.0.7`, `::1`)
   or `*.suffix`; `*` alone answers any Host. A request without a Host header (HTTP/1.0) passes.
2. **Origin check**, every state-changing request (POST, PUT, PATCH, DELETE) on every path: an `Origin`
   (or, when there is none, the origin of the `Referer`) must be the request's own origin (same host and
   port as its `Host` header) or one of `allowed_origins` (`scheme://host[:port]`; `*` turns the check
   off); `Origin: null` is refused. Requests carrying neither header pass: browsers always send `Origin`
   on cross-origin writes.
3. **JSON content type**, only under the API prefixes (`/api/`, `/ajax-api/`): a POST must be
   `application/json` (or `+json`) even with an empty body, and so must a PUT/PATCH/DELETE that has a
   body, except an artifact upload (`PUT .../mlflow-artifacts/artifacts/...` and modelyard's
   `PUT .../mlflow-artifacts/modelyard-bundle/...`, and MLflow's UI upload
   `POST /ajax-api/2.0/mlflow/upload-artifact`), whose body is the raw
   file in whatever type the client names (the mlflow client guesses one from the file name; modelyard's
   sends none). Refused with 400, MLflow's INVALID_PARAMETER_VALUE, as a wrong type is today.
4. **Response headers**, every response that passes through: `X-Content-Type-Options: nosniff`,
   `Referrer-Policy: same-origin`, `X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors
   'none'`, each added only when the response did not set that header itself.

Contract with the web UI (`modelyard.ui`, pages outside the API prefixes): its pages set their own full
`Content-Security-Policy`, which is left as it is (so it should say `frame-ancestors` itself); its HTML
forms post `application/x-www-form-urlencoded` to non-API paths, which rule 3 does not touch, and they
carry the UI's own CSRF token; rule 2 still applies to them (a same-origin form sends its own origin).

Refusals use MLflow's error shape (`{"error_code", "message"}`). A response produced by Starlette's
last-resort error handler (an unhandled exception: a bug, never an answer to input) is sent outside any
middleware and so lacks the headers of rule 4.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware` (a task and body wrapping per request): the
checks read the scope's header list once and the response hook only appends to the head's headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette

from modelyard import errors
from modelyard.settings import LOOPBACK_HOSTS, Settings

Scope = dict[str, Any]
Message = dict[str, Any]

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIXES = ("/api/", "/ajax-api/")
#: Artifact uploads: PUT with the raw file (or modelyard's tar bundle of files) as the body, in any content type.
ARTIFACT_UPLOAD_PREFIXES = tuple(
    f"{api}/2.0/mlflow-artifacts/{route}/"
    for api in ("/api", "/ajax-api")
    for route in ("artifacts", "modelyard-bundle")
)
#: MLflow's UI upload (`POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=`): the body is the file.
RAW_UPLOAD_PATHS = ("/ajax-api/2.0/mlflow/upload-artifact",)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def host_name(value: str) -> str:
    """The name part of a Host header or allow-list entry: `[::1]:5000` -> `::1`, `Example.com.:80` ->
    `example.com`."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, the default port dropped; None when it has no scheme and host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


class HostPolicy:
    """The allowed Host names: exact names plus `*.suffix` patterns; `*` allows any."""

    def __init__(self, entries: Iterable[str]) -> None:
        names = [e.strip() for e in entries if e.strip()]
        self.any = "*" in names
        self.exact = frozenset(host_name(n) for n in names if not n.startswith("*."))
        self.suffixes = tuple("." + host_name(n[2:]) for n in names if n.startswith("*."))

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        name = host_name(host)
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))


def _error(status: int, code: str, message: str) -> tuple[Message, Message]:
    body = orjson.dumps({"error_code": code, "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class BrowserGuard:
    """The rules of the module docstring around `app`."""

    def __init__(
        self, app: Any, allowed_hosts: Iterable[str] = LOOPBACK_HOSTS, allowed_origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.hosts = HostPolicy(allowed_hosts)
        origins = [o.strip() for o in allowed_origins if o.strip()]
        self.any_origin = "*" in origins
        self.origins = frozenset(filter(None, (origin_of(o) for o in origins if o != "*")))
        self._hosts_seen: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            start, body = _error(*refusal)
            await send(start)
            await send(body)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                for name, _ in headers:
                    if name.lower() in _SECURITY_HEADER_NAMES:  # the response set some itself: keep those
                        present = {name.lower() for name, _ in headers}
                        message["headers"] = [*headers, *(h for h in SECURITY_HEADERS if h[0] not in present)]
                        break
                else:
                    message["headers"] = [*headers, *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def check(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, error code, message) of a refusal, or None when the request may pass."""
        host = origin = referer = content_type = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                has_body = value not in (b"0", b"")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"transfer-encoding":
                has_body = True
        if host is not None and not self._host_allowed(host):
            return 403, errors.PERMISSION_DENIED, (
                f"Host {host.decode('latin-1')!r} is not allowed (a DNS-rebinding attempt, or a name missing "
                "from MODELYARD_ALLOWED_HOSTS)."
            )
        method = scope["method"]
        if method not in STATE_CHANGING:
            return None
        if (origin is not None or referer is not None) and not self.any_origin:
            claimed = origin if origin is not None else referer
            assert claimed is not None
            source = origin_of(claimed) if claimed != "null" else None
            own = host.decode("latin-1") if host is not None else None
            if source is None or not (source in self.origins or _same_origin(source, own)):
                return 403, errors.PERMISSION_DENIED, (
                    f"Cross-origin request refused: origin {claimed!r} is not this server's own origin "
                    "nor in MODELYARD_ALLOWED_ORIGINS."
                )
        path = scope["path"]
        if path.startswith(API_PREFIXES) and (method == "POST" or has_body):
            if method == "PUT" and path.startswith(ARTIFACT_UPLOAD_PREFIXES):
                return None
            if method == "POST" and path in RAW_UPLOAD_PATHS:
                return None
            if content_type != b"application/json" and not _is_json(content_type):
                shown = content_type.decode("latin-1") if content_type is not None else None
                return 400, errors.INVALID_PARAMETER_VALUE, (
                    f"Bad Request. Content-Type must be one of ['application/json'], got {shown!r}."
                )
        return None

    def _host_allowed(self, host: bytes) -> bool:
        """`HostPolicy.allows`, remembered per Host value (clients send the same few again and again)."""
        known = self._hosts_seen.get(host)
        if known is None:
            if len(self._hosts_seen) >= 1024:  # bounded whatever Hosts clients make up
                self._hosts_seen.clear()
            known = self._hosts_seen[host] = self.hosts.allows(host.decode("latin-1"))
        return known


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    media = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether `origin` (normalised by `origin_of`) names the host and port the request was sent to."""
    if host is None:
        return False
    scheme = origin.split("://", 1)[0]
    return origin_of(f"{scheme}://{host}") == origin


def install(app: Starlette, settings: Settings) -> None:
    """Add the guard to an app with the settings' allow-lists. Every app factory calls this before
    `instrument`, so the metrics middleware stays outermost and counts refused requests too.

    A specific bind address (`modelyard server --host 192.168.1.5`) is a name clients use: it is allowed
    too. A wildcard one (`0.0.0.0`) says nothing about the names, which `allowed_hosts` must list.
    CORS is off unless `cors_allowed_origins` lists origins: then those origins' pages may call the
    API with credentials (their preflights are answered here, outside the auth middleware), and their
    writes pass the Origin check."""
    hosts = tuple(settings.allowed_hosts)
    if settings.host and settings.host not in ("0.0.0.0", "::"):
        hosts += (settings.host,)
    origins = tuple(settings.allowed_origins) + tuple(settings.cors_allowed_origins)
    app.add_middleware(BrowserGuard, allowed_hosts=hosts, allowed_origins=origins)
    if settings.cors_allowed_origins:  # off by default: no CORS headers unless origins are listed
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allowed_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
            max_age=600,
        )
