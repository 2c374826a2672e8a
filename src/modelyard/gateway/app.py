"""Path routing + streaming proxy (httpx upstream pool, Starlette streaming responses)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/")
# Hop-by-hop headers (RFC 9110 7.6.1) are the connection's own, never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host"}
)  # fmt: skip


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


def create_app(upstreams: Upstreams) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        timeout = httpx.Timeout(connect=5.0, read=600.0, write=600.0, pool=30.0)
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as client:
            app.state.client = client
            yield

    async def gateway_health(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def proxy(request: Request) -> Response:
        client: httpx.AsyncClient = request.app.state.client
        url = upstreams.for_path(request.url.path) + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        has_body = request.method not in ("GET", "HEAD") or "content-length" in request.headers
        upstream_request = client.build_request(
            request.method, url, headers=headers, content=request.stream() if has_body else None
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {
                    "error_code": "TEMPORARILY_UNAVAILABLE",
                    "message": f"Upstream {url.split('/api')[0]} unreachable: {exc}",
                },
                status_code=503,
            )
        response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=response_headers,
            background=BackgroundTask(upstream.aclose),
        )

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route("/gateway/health", gateway_health, methods=["GET"]),
        Route("/{path:path}", proxy, methods=methods),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
