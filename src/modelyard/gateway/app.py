"""Path routing + streaming proxy (httpx upstream pool, Starlette streaming responses).

What the gateway forwards is what the client sent, never a reinterpretation of it:
- The path goes upstream as its raw bytes. A path with a dot segment (`..` or `.`, literal or
  percent-encoded, `..%2f` included) or a NUL (`%00`) is refused with 400: HTTP clients normalise dot
  segments away, so forwarding them would move the request somewhere else (`.../<run>/artifacts/..%2f..%2fx`
  would land outside the run), and no API path needs them.
- The `Host` header is forwarded, so upstreams check it and the request's origin as a browser sent them.
- Response headers pass through once, raw (repeated headers such as Set-Cookie stay separate), without
  the upstream's `date` and `server`, which our own server adds.
- Request headers go upstream as sent and nothing else: the shared upstream client keeps no cookies and
  adds none of its default headers.

An upstream may close a keep-alive connection right after answering (uvicorn does after an unhandled
exception, once it has logged it), so the pool can hand out a connection that is already dead. A request
that fails that way before any answer arrived is sent again, once, on another connection, when its body
can be replayed (no body, or one of at most `REPLAYABLE_BODY` bytes, read before sending); a larger
upload streams and is answered 503 instead. Failures are answered in MLflow's JSON error shape.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, unquote_to_bytes

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from modelyard import errors
from modelyard.runtime import browser_guard
from modelyard.runtime.no_cookies import no_cookies
from modelyard.settings import Settings

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/")
# Hop-by-hop headers (RFC 9110 7.6.1) are the connection's own, never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
#: Response headers our own server (uvicorn) writes itself: passing the upstream's would send them twice.
OWN_RESPONSE_HEADERS = frozenset({"date", "server"})
#: Request bodies up to this size are read before sending, so a request that met a dead pooled connection
#: can be sent again; larger ones stream.
REPLAYABLE_BODY = 1024 * 1024
#: Upstream failures that happen before any answer arrived: the request was not processed there.
_NO_ANSWER = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)
#: Bytes of a path kept as they are when forwarded; anything else is percent-encoded (httpx takes ASCII only).
_PATH_SAFE = b"/%!$&'()*+,;=:@-._~"
_SEGMENT_SPLIT = re.compile(rb"[/\\]")


@dataclass(frozen=True)
class Upstreams:
    tracking: str
    artifacts: str

    @classmethod
    def from_env(cls) -> Upstreams:
        return cls(
            tracking=os.environ.get("MODELYARD_GATEWAY_TRACKING_URL", "http://127.0.0.1:5010").rstrip("/"),
            artifacts=os.environ.get("MODELYARD_GATEWAY_ARTIFACTS_URL", "http://127.0.0.1:5001").rstrip("/"),
        )

    def for_path(self, path: str) -> str:
        return self.artifacts if path.startswith(ARTIFACT_PREFIXES) else self.tracking


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def upstream_path(raw_path: bytes) -> bytes | None:
    """The raw path to forward, percent-encoded to ASCII; None when it holds a dot segment or a NUL."""
    decoded = unquote_to_bytes(raw_path)
    if b"\x00" in decoded or any(seg in (b".", b"..") for seg in _SEGMENT_SPLIT.split(decoded)):
        return None
    return quote_from_bytes(raw_path, safe=_PATH_SAFE).encode("ascii")


def create_app(upstreams: Upstreams, settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = httpx.Timeout(connect=5.0, read=600.0, write=600.0, pool=30.0)
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False, cookies=no_cookies()) as client:
            app.state.client = client
            yield

    async def gateway_health(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def proxy(request: Request) -> Response:
        client: httpx.AsyncClient = request.app.state.client
        scope_path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
        path = upstream_path(scope_path)
        if path is None:
            return error(
                400, errors.INVALID_PARAMETER_VALUE, "Paths with '.' or '..' segments or NUL bytes are refused."
            )
        base = upstreams.for_path(request.scope["path"])
        query = request.scope.get("query_string", b"")
        try:
            url = httpx.URL(base).copy_with(raw_path=path + (b"?" + query if query else b""))
        except (httpx.InvalidURL, UnicodeDecodeError) as exc:
            return error(400, errors.INVALID_PARAMETER_VALUE, f"Invalid request URL: {exc}")
        headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP]
        body: bytes | AsyncIterator[bytes] | None = None
        replayable = True
        # HTTP/1.1: a request has a body when it announces a length or a transfer coding, whatever its method.
        if "content-length" in request.headers or "transfer-encoding" in request.headers:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) <= REPLAYABLE_BODY:
                try:
                    body = await request.body()
                except ClientDisconnect:
                    return error(400, errors.BAD_REQUEST, "The client disconnected before sending its body.")
            else:
                body, replayable = request.stream(), False
        for attempt in (1, 2):
            # Built as the client sent it, not by `client.build_request`, which adds the pool's cookies
            # and httpx's default headers (Accept-Encoding, User-Agent, ...) to a request that lacks them.
            upstream_request = httpx.Request(
                request.method, url, headers=headers, content=body, extensions={"timeout": client.timeout.as_dict()}
            )
            try:
                upstream = await client.send(upstream_request, stream=True)
                break
            except _NO_ANSWER as exc:
                if attempt == 1 and replayable:
                    continue  # a dead pooled connection: the next attempt gets another
                return error(503, errors.TEMPORARILY_UNAVAILABLE, f"Upstream {base} did not answer: {exc!r}")
            except httpx.TimeoutException as exc:
                return error(504, errors.TEMPORARILY_UNAVAILABLE, f"Upstream {base} timed out: {exc!r}")
            except httpx.HTTPError as exc:
                return error(502, errors.TEMPORARILY_UNAVAILABLE, f"Upstream {base} failed: {exc!r}")
        if upstream.status_code >= 500 and "json" not in upstream.headers.get("content-type", ""):
            return await _as_mlflow_error(upstream)
        response = StreamingResponse(
            upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers = [
            (k, v)
            for k, v in upstream.headers.raw
            if (name := k.decode("latin-1").lower()) not in HOP_BY_HOP and name not in OWN_RESPONSE_HEADERS
        ]
        return response

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route("/gateway/health", gateway_health, methods=["GET"]),
        Route("/{path:path}", proxy, methods=methods),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    browser_guard.install(app, settings)
    return app


async def _as_mlflow_error(upstream: httpx.Response) -> Response:
    """An upstream's 5xx that is not JSON (a server's plain-text last resort) in MLflow's error shape."""
    try:
        text = (await upstream.aread())[:2000].decode("utf-8", "replace").strip()
    except httpx.HTTPError:
        text = ""
    finally:
        await upstream.aclose()
    code = errors.TEMPORARILY_UNAVAILABLE if upstream.status_code in (502, 503, 504) else errors.INTERNAL_ERROR
    return error(upstream.status_code, code, f"Upstream error {upstream.status_code}: {text or 'no message'}")
