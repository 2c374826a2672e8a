"""`GET /openapi.json`: the service's OpenAPI document (`modelyard.protocol.openapi`), built on first request.

FastAPI lists the operations the app serves (its own generator knows the routes, not their arguments,
which the routers read raw); the parameters come from `modelyard.protocol.openapi.OPERATIONS`.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import Response

from modelyard.protocol import openapi


def served_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every operation `app` serves, as FastAPI's own generator finds them."""
    generated = get_openapi(title=app.title, version=app.version, routes=app.routes)
    return [(method.upper(), path) for path, ops in generated["paths"].items() for method in ops]


def serve_openapi(app: FastAPI) -> None:
    cached: list[bytes] = []

    async def openapi_json(request: Request) -> Response:
        if not cached:
            cached.append(orjson.dumps(openapi.document(served_operations(app), app.title, app.version)))
        return Response(cached[0], media_type="application/json")

    app.add_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
