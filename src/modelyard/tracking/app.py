"""The tracking service: `create_app(settings)` wires the SQL store, the routers and the error handlers.

Every MLflow API router is served twice, under `/api/2.0` (clients) and `/ajax-api/2.0` (the UI), as
MLflow does. The app is built once per gunicorn worker, after the fork, so each worker owns its pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from modelyard.artifact_proxy.locations import LocationReader
from modelyard.artifact_proxy.routes import split_service_info
from modelyard.artifact_repos.locations import Locator
from modelyard.protocol.responses import JsonResponse
from modelyard.runtime import browser_guard, dispatch
from modelyard.runtime.metrics import instrument
from modelyard.runtime.openapi import serve_openapi
from modelyard.settings import Settings
from modelyard.store.logged_models.sql_store import SqlLoggedModelStore
from modelyard.store.registry.sql_store import SqlRegistryStore
from modelyard.store.search.limits import SearchLimits
from modelyard.store.search.limits import configure as configure_search_limits
from modelyard.store.sql.async_pool import AsyncPgPool
from modelyard.store.sql.engine import create_engine_for, is_sqlite
from modelyard.store.sql.migrate import require_usable, upgrade
from modelyard.store.tracking.async_writes import AsyncRunWrites
from modelyard.store.tracking.sql_store import SqlTrackingStore
from modelyard.store.webhooks import outbox
from modelyard.tracking.errors import install_error_handlers
from modelyard.tracking.routers import (
    artifacts,
    bulk_runs,
    experiments,
    logged_models,
    meta,
    metrics,
    registry,
    registry_history,
    runs,
    ui_support,
    webhooks,
)
from modelyard.version import __version__
from modelyard.webhooks.worker import DeliveryWorker, WorkerOptions

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
#: Proxied artifact locations; clients resolve them against the tracking URI.
PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/"


def api_routers() -> list[APIRouter]:
    """The MLflow API routers, each served under every prefix in `API_PREFIXES`.

    Other API areas (model registry, logged models) join by adding their router to this list. No two
    routers share a path, so the order only decides how many routes a request is matched against
    before its own (FastAPI tries them one by one): the runs router, with log-metric and log-batch,
    the requests training clients send most, comes first.
    """
    return [
        runs.router,
        metrics.router,
        experiments.router,
        registry.router,
        registry_history.router,
        logged_models.router,
        artifacts.router,
        ui_support.router,
        webhooks.router,
        bulk_runs.router,
    ]


def create_app(settings: Settings) -> FastAPI:
    configure_search_limits(SearchLimits.from_settings(settings))
    engine = build_engine(settings)
    store = SqlTrackingStore(
        engine,
        default_artifact_root=default_artifact_root(settings),
        allowed_artifact_roots=settings.allowed_artifact_roots,
    )

    run_writes = AsyncRunWrites(store, async_pool(engine, settings))
    outbox.CACHE_SECONDS = settings.webhook_cache_seconds
    webhook_worker = delivery_worker(engine, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm_up = asyncio.create_task(run_writes.warm_up())  # in the background: start-up never waits on it
        ui_warm_ups = [asyncio.create_task(c) for c in _ui_warm_ups(app, settings)]
        if webhook_worker is not None:
            webhook_worker.start()
        yield
        if webhook_worker is not None:
            webhook_worker.stop()
        for task in (warm_up, *ui_warm_ups):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await run_writes.close()
        engine.dispose()

    app = FastAPI(
        title="modelyard tracking",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=JsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.tracking_store = store
    app.state.run_writes = run_writes
    app.state.registry_store = SqlRegistryStore(engine, artifact_roots=registry_artifact_roots(settings))
    app.state.logged_model_store = SqlLoggedModelStore(engine, default_artifact_root(settings))
    install_error_handlers(app)
    app.include_router(meta.router)
    for prefix in API_PREFIXES:  # clients' /api/2.0 before the UI's /ajax-api/2.0
        for router in api_routers():
            app.include_router(router, prefix=prefix)
    dispatched = [(prefix, router) for prefix in API_PREFIXES for router in api_routers()]
    if settings.serve_artifacts and (mount := artifact_proxy_mount()) is not None:
        dispatched.append(("", mount(app, settings)))
    locator = Locator(
        settings.artifacts_destination,
        settings.multipart_chunk_size,
        getattr(app.state, "artifact_repository", None),
    )
    app.state.artifact_reader = LocationReader(locator)
    if not hasattr(app.state, "artifact_capabilities"):  # the artifacts API is another service's
        app.state.artifact_capabilities = split_service_info(settings, locator.destination_repository())
    app.include_router(artifacts.root_router)
    app.include_router(artifacts.ajax_router)
    app.include_router(ui_support.ajax_router)
    if (graphql_router := _graphql_router()) is not None:
        app.include_router(graphql_router)
    if settings.ui:
        from modelyard.ui import mount as mount_ui

        mount_ui(app, settings)
    if settings.auth:
        from modelyard.auth import install, routes

        routes.include(app)
        install.install(app, settings, "tracking", engine)
    serve_openapi(app)
    browser_guard.install(app, settings)
    instrument(app, "tracking")
    # Last: the innermost middleware, inside auth's, the browser guard and the metrics middleware.
    dispatch.install(app, dispatched)
    return app


def build_engine(settings: Settings) -> Engine:
    """The engine, with the schema brought up to date when this process is allowed to migrate.

    SQLite is always upgraded (an embedded file has no one else to do it); PostgreSQL when
    `auto_migrate` is on, under migrate's advisory lock so concurrently booting workers are safe.
    Otherwise the worker checks that it can use the schema as it is, and refuses to start (saying
    which command to run) rather than answer every request with a database error; a database it
    cannot reach does not stop it (those requests are retryable 503s, as during any outage).
    """
    engine = create_engine_for(
        settings.backend_store_uri,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        statement_timeout=settings.db_statement_timeout,
    )
    if settings.auto_migrate or is_sqlite(engine):
        upgrade(engine)
    else:
        try:
            require_usable(engine)
        except OperationalError as exc:  # unreachable now: boot anyway, requests answer 503 until it is back
            log.warning("Could not check the database schema at start-up: %s", exc.orig or exc)
    return engine


def async_pool(engine: Engine, settings: Settings) -> AsyncPgPool | None:
    """The worker's async connections for the hot metric writes: PostgreSQL only (SQLite is
    in-process; its writes stay in the thread pool), none when `db_async_pool_size` is 0.
    Connections are opened on first use, on this worker's event loop."""
    if engine.dialect.name != "postgresql" or settings.db_async_pool_size < 1:
        return None
    return AsyncPgPool.from_engine(engine, settings.db_async_pool_size)


def _ui_warm_ups(app: FastAPI, settings: Settings) -> list[Any]:
    if not settings.ui:
        return []
    from modelyard.ui import warm_ups

    return warm_ups(app)


def delivery_worker(engine: Engine, settings: Settings) -> DeliveryWorker | None:
    """The worker process's webhook sender (started with the app), unless turned off."""
    if not settings.webhook_delivery:
        return None
    options = WorkerOptions(
        poll_interval=settings.webhook_poll_interval,
        timeout=settings.webhook_timeout,
        max_attempts=settings.webhook_max_attempts,
        backoff_seconds=settings.webhook_backoff,
        concurrency=settings.webhook_concurrency,
        allow_private=settings.webhook_allow_private,
        log_days=settings.webhook_log_days,
        log_rows=settings.webhook_log_rows,
    )
    return DeliveryWorker(engine, options)


def default_artifact_root(settings: Settings) -> str:
    """Where experiments created without an artifact_location put their artifacts."""
    if settings.default_artifact_root:
        return settings.default_artifact_root
    if settings.serve_artifacts:
        return PROXIED_ARTIFACT_ROOT
    destination = settings.artifacts_destination
    return destination if "://" in destination else os.path.abspath(destination)


def registry_artifact_roots(settings: Settings) -> tuple[str, ...]:
    """Where a model version's source may point when it names no run: every root this service
    hands out, plus the proxy's destination when that is itself a URI (`s3://bucket/prefix`)."""
    roots = [default_artifact_root(settings), *settings.allowed_artifact_roots]
    if "://" in settings.artifacts_destination:
        roots.append(settings.artifacts_destination)
    return tuple(roots)


def _graphql_router() -> APIRouter | None:
    """`/graphql` needs graphql-core (the `server` extra); without it the endpoint is not served."""
    try:
        from modelyard.tracking.graphql.router import router
    except ImportError:
        log.warning("graphql-core is not installed: /graphql is not served")
        return None
    return router


def artifact_proxy_mount() -> Callable[[FastAPI, Settings], APIRouter] | None:
    """`modelyard.artifact_proxy.mount(app, settings)`: single-process mode serves artifacts too.

    The artifacts package adds its routes (and sets `app.state.artifact_capabilities` for
    `/server-info`); without that function the tracking app serves the tracking API alone.
    """
    module = importlib.import_module("modelyard.artifact_proxy")
    return getattr(module, "mount", None)
