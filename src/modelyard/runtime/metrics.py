"""Prometheus metrics for every service: requests and latency per route template.

gunicorn runs several worker processes and a scrape reaches one of them, so counters live in
prometheus_client's multiprocess files (`PROMETHEUS_MULTIPROC_DIR`, set up by `gunicorn_conf` before the
workers fork) and `/metrics` sums them over all workers. Route templates, not raw paths, label the
series, so their number stays bounded whatever ids clients send.
"""

from __future__ import annotations

import functools
import os
import re
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter(
    "modelyard_http_requests_total", "HTTP requests answered.", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "modelyard_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first response byte of a streamed body).",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

Scope = dict[str, Any]


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body buffering, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: Any, service: str) -> None:
        self.app = app
        self.service = service
        # prometheus_client's `labels()` takes a lock and builds a key per call (~25 us for the pair);
        # the children of each (method, route, status) are looked up once and kept.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            requests, latency = self._children(scope["method"], route_label(scope), status)
            requests.inc()
            latency.observe(time.perf_counter() - started)

    def _children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= 4096:  # methods are the client's to choose: stay bounded
                self._series.clear()
            series = self._series[key] = (
                REQUESTS.labels(self.service, method, route, str(status)),
                LATENCY.labels(self.service, method, route),
            )
        return series


_PARAM = re.compile(r"\{[^}:]+(:path)?\}")


@functools.lru_cache(maxsize=1024)
def _template_regex(template: str) -> re.Pattern[str]:
    parts, last = [], 0
    for m in _PARAM.finditer(template):
        parts += [re.escape(template[last : m.start()]), ".+" if m.group(1) else "[^/]+"]
        last = m.end()
    parts.append(re.escape(template[last:]) + "$")
    return re.compile("".join(parts))


def route_label(scope: Scope) -> str:
    """The matched route's template with the prefix it was included under (`/api/2.0`, `/ajax-api/2.0`).

    FastAPI puts the router's own route in the scope, without the include prefix, so the prefix is
    recovered from the request path in front of the part the template matched."""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "unmatched"
    path = scope.get("path", "")
    match = _template_regex(template).search(path)
    return f"{path[: match.start()]}{template}" if match else template


async def metrics(request: Request) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def instrument(app: Starlette, service: str) -> None:
    """Serve `/metrics` and count every other request of `app`."""
    app.add_middleware(MetricsMiddleware, service=service)
    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
