"""The standalone artifacts service: MLflow's artifacts API streaming to/from the configured destination.

In the team stack an ingress routes `/api/2.0/mlflow-artifacts/` here while everything else goes to
the tracking service; locally the tracking app can mount the same router (single-process mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard import errors
from modelyard.artifact_proxy.ownership import RunOwnership, store_lookup
from modelyard.artifact_proxy.routes import create_router, error_response, server_info
from modelyard.artifact_repos import get_repository
from modelyard.exceptions import ModelyardException
from modelyard.runtime import browser_guard
from modelyard.runtime.metrics import instrument
from modelyard.runtime.openapi import serve_openapi
from modelyard.runtime.warmup import warm_up_with_siblings
from modelyard.settings import Settings
from modelyard.version import __version__


def mount(app: FastAPI, settings: Settings) -> APIRouter:
    """Serve the artifacts API from `app` too: the tracking app calls this in single-process mode.
    Returns the router it included (for the tracking app's exact-path dispatch table).

    `app.state.artifact_capabilities` is what `/api/3.0/mlflow/server-info` reports about multipart.
    """
    repo = get_repository(settings.artifacts_destination, chunk_size=settings.multipart_chunk_size)
    app.state.artifact_repository = repo
    app.state.artifact_capabilities = server_info(settings, repo)
    router = create_router(settings, repo, _ownership(app))
    app.include_router(router)
    return router


def _ownership(app: FastAPI) -> RunOwnership | None:
    """The tracking app's own store in single-process mode; else the database named by
    MODELYARD_BACKEND_STORE_URI (the team stack sets it); else no run check (a bare artifact server)."""
    store = getattr(app.state, "tracking_store", None)
    if store is None and os.environ.get("MODELYARD_BACKEND_STORE_URI"):
        from modelyard.store.sql.engine import create_engine_for
        from modelyard.store.tracking.sql_store import SqlTrackingStore

        engine = create_engine_for(os.environ["MODELYARD_BACKEND_STORE_URI"], pool_size=2, max_overflow=4)
        store = SqlTrackingStore(engine, default_artifact_root="mlflow-artifacts:/")
    return RunOwnership(store_lookup(store)) if store is not None else None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The S3 client is built on first use (boto3 would put ~38 MB into every idle worker); once one worker
    built it, the others build theirs in the background, so a worker's first transfer does not wait ~0.3 s
    for it (`modelyard.runtime.warmup`)."""
    repo = app.state.artifact_repository
    task = asyncio.create_task(warm_up_with_siblings(lambda: repo.needs_warm_up, repo.warm_up))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="modelyard artifacts",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    mount(app, settings)

    @app.get("/health")
    async def health() -> Response:
        return PlainTextResponse("OK")

    @app.get("/version")
    async def version() -> Response:
        return PlainTextResponse(__version__)

    @app.get("/api/3.0/mlflow/server-info")
    async def info() -> Response:
        return JSONResponse({"store_type": None, **app.state.artifact_capabilities})

    @app.exception_handler(ModelyardException)
    async def modelyard_error(request: Request, exc: ModelyardException) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: errors.ENDPOINT_NOT_FOUND, 405: errors.ENDPOINT_NOT_FOUND}.get(
            exc.status_code, errors.BAD_REQUEST
        )
        return JSONResponse({"error_code": code, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(
            ModelyardException(f"Invalid request: {exc.errors()}", errors.INVALID_PARAMETER_VALUE)
        )

    serve_openapi(app)
    browser_guard.install(app, settings)
    instrument(app, "artifacts")
    if settings.auth:
        from modelyard.auth.install import install

        install(app, settings, "artifacts")
    return app
