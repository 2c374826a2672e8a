"""HTTP surface of the endpoint service: SageMaker's JSON 1.1 control plane on `POST /` (the action in the
`X-Amz-Target` header, as boto3 sends it) and the runtime's `POST /endpoints/{name}/invocations`, plus
modelyard's own read of the invocation counts (`GET /modelyard/endpoints/{name}/invocations`, see `counters`).

Point boto3 at it with `endpoint_url=` or `AWS_ENDPOINT_URL_SAGEMAKER` / `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from modelyard.endpoints.errors import SageMakerError, validation
from modelyard.endpoints.manager import EndpointManager
from modelyard.protocol import text_parsing
from modelyard.runtime import browser_guard
from modelyard.runtime.metrics import instrument
from modelyard.runtime.no_cookies import no_cookies
from modelyard.settings import Settings
from modelyard.version import __version__

AMZ_JSON = "application/x-amz-json-1.1"


def _actions(m: EndpointManager) -> dict[str, Callable[[dict[str, Any]], Any]]:
    return {
        "CreateModel": m.create_model,
        "DescribeModel": lambda b: m.describe_model(str(b.get("ModelName", ""))),
        "DeleteModel": lambda b: m.delete_model(str(b.get("ModelName", ""))),
        "ListModels": lambda b: m.list_models(),
        "CreateEndpointConfig": m.create_endpoint_config,
        "DescribeEndpointConfig": lambda b: m.describe_endpoint_config(str(b.get("EndpointConfigName", ""))),
        "DeleteEndpointConfig": lambda b: m.delete_endpoint_config(str(b.get("EndpointConfigName", ""))),
        "ListEndpointConfigs": lambda b: m.list_endpoint_configs(),
        "CreateEndpoint": m.create_endpoint,
        "UpdateEndpoint": m.update_endpoint,
        "UpdateEndpointWeightsAndCapacities": m.update_endpoint_weights_and_capacities,
        "DescribeEndpoint": lambda b: m.describe_endpoint(str(b.get("EndpointName", ""))),
        "ListEndpoints": m.list_endpoints,
        "DeleteEndpoint": lambda b: m.delete_endpoint(str(b.get("EndpointName", ""))),
    }


def create_app(settings: Settings, state_dir: Path | None = None) -> FastAPI:
    state = state_dir or Path(settings.endpoints_state_dir)
    manager = EndpointManager(state.resolve())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        # Shared by every caller: it must not keep cookies a variant's answer set (`runtime/no_cookies`).
        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=2.0), limits=limits, cookies=no_cookies())
        manager.restore()
        yield
        await manager.shutdown()
        await app.state.http.aclose()

    app = FastAPI(
        title="modelyard endpoints", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.manager = manager
    actions = _actions(manager)

    @app.get("/health")
    async def health() -> Response:
        return PlainTextResponse("OK")

    @app.post("/")
    async def control_plane(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        action = target.rpartition(".")[2]
        try:
            handler = actions.get(action)
            if handler is None:
                raise SageMakerError(
                    "UnknownOperationException", f"Operation {action or '(none)'} is not supported."
                )
            result = handler(await _json_body(request))
            if hasattr(result, "__await__"):
                result = await result
            return Response(json.dumps(result), media_type=AMZ_JSON)
        except SageMakerError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status, media_type=AMZ_JSON)

    @app.post("/endpoints/{name}/invocations")
    async def invoke(name: str, request: Request) -> Response:
        body = await request.body()
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        if "accept" in request.headers:
            headers["accept"] = request.headers["accept"]
        target = request.headers.get("x-amzn-sagemaker-target-variant")
        try:
            # One retry: a request that raced an update may hit a variant that just stopped.
            for attempt in (1, 2):
                variant = manager.pick_variant(name, target)
                try:
                    upstream = await app.state.http.post(
                        f"{variant.url}/invocations", content=body, headers=headers
                    )
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        manager.counters.record(name, variant.variant_name, error=True)
                        raise SageMakerError(
                            "ServiceUnavailable", f"Endpoint {name} is not reachable.", 503
                        ) from None
        except SageMakerError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status, headers={"x-amzn-ErrorType": exc.code})
        manager.counters.record(name, variant.variant_name, error=upstream.status_code >= 400)
        if upstream.status_code >= 400:
            # SageMaker wraps a container's error answer as a 424 ModelError.
            error = SageMakerError(
                "ModelError",
                f'Received client error ({upstream.status_code}) from primary with message "{upstream.text[:2000]}".',
                424,
                OriginalStatusCode=upstream.status_code,
                OriginalMessage=upstream.text[:2000],
            )
            return JSONResponse(error.to_dict(), status_code=424, headers={"x-amzn-ErrorType": "ModelError"})
        return Response(
            upstream.content,
            media_type=upstream.headers.get("content-type", "application/json"),
            headers={"x-Amzn-Invoked-Production-Variant": variant.variant_name},
        )

    @app.get("/modelyard/endpoints/{name}/invocations")
    async def invocation_counts(name: str) -> Response:
        """modelyard's own read of the counts in `counters` (SageMaker's wire shapes stay as they are)."""
        try:
            return JSONResponse(manager.invocation_counts(name))
        except SageMakerError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status, headers={"x-amzn-ErrorType": exc.code})

    browser_guard.install(app, settings)
    instrument(app, "endpoints")
    if settings.auth:
        from modelyard.auth.install import install

        install(app, settings, "endpoints")
    return app


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = text_parsing.loads_json(raw)
    except ValueError as exc:
        raise SageMakerError("SerializationException", f"Request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise validation("Request body must be a JSON object.")
    return body
