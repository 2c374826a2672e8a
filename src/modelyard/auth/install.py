"""`install(app, settings, service)`: turn auth on for one service's app, or do nothing at all.

Called last by every app factory (tracking, artifacts, serving, endpoints), once its routes exist.
With `MODELYARD_AUTH` off it returns at once: no middleware, no per-request cost. With it on it opens
the auth store (the tracking app's own engine, else `MODELYARD_BACKEND_STORE_URI`), creates the
configured admin or refuses to start when there is no admin, builds the rule table from the app's
real routes and adds the middleware innermost (inside the browser guard and the metrics middleware,
so refused requests are counted and Host-checked like any other). The app's `state.auth` is the
`AuthContext` routes use (`modelyard.auth.identity` reads it).

The gateway of the local stack installs nothing: it is a proxy whose upstreams enforce every rule
(`rules.GATEWAY` records that, for the route-enumeration test).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine
from starlette.middleware import Middleware

from modelyard.auth import accounts, passwords, rules
from modelyard.auth.context import AuthConfig, AuthContext
from modelyard.auth.middleware import AuthMiddleware
from modelyard.auth.resolve import Lookups
from modelyard.auth.routing import RouteTable
from modelyard.settings import Settings
from modelyard.store.auth.permissions import REGISTERED_MODEL

log = logging.getLogger(__name__)

OFF_MESSAGE = (
    "Authentication is OFF: anyone who can reach this server may read and change everything. "
    "Set MODELYARD_AUTH=true (with an admin) before sharing it."
)


def install(app: Any, settings: Settings, service: str, engine: Engine | None = None) -> AuthContext | None:
    if not settings.auth:
        return None
    if engine is None:
        from modelyard.store.sql.engine import create_engine_for

        engine = create_engine_for(settings.backend_store_uri, pool_size=2, max_overflow=4)
    passwords.configure(settings.auth_password_hash_time_cost, settings.auth_password_hash_memory_kib)
    ctx = AuthContext.open(engine, AuthConfig.from_settings(settings))
    accounts.ensure_admin(ctx, settings)
    table = RouteTable.build(app, rules.table(service))
    roots = tuple(r for r in (settings.default_artifact_root, settings.artifacts_destination, *settings.allowed_artifact_roots) if r and "://" in r)
    middleware = Middleware(
        AuthMiddleware,
        ctx=ctx,
        routes=table,
        lookups=Lookups(engine, roots),
        max_body_bytes=settings.max_request_body_bytes,
        served=lambda: served_model(settings.model_uri),
        page_error=getattr(app.state, "page_error", None),  # the UI's error pages, when it is mounted
    )
    app.user_middleware.append(middleware)  # innermost: the browser guard and metrics stay outside
    app.state.auth = ctx
    app.state.auth_routes = table
    log.info("Authentication is on (%s service): default permission %s.", service, ctx.config.default_permission.name)
    return ctx


def served_model(model_uri: str | None) -> tuple[str, str] | None:
    """What the serving service's `/invocations` needs READ on: the registered model of a
    `models:/name/...` or `models:/name@alias` URI, the run of a `runs:/id/...` one; None (any
    signed-in user) for a folder."""
    if not model_uri:
        return None
    if model_uri.startswith("models:/"):
        name = model_uri[len("models:/") :].split("@", 1)[0].split("/", 1)[0]
        return (REGISTERED_MODEL, name) if name and not name.startswith("m-") else None
    if model_uri.startswith("runs:/"):
        run_id = model_uri[len("runs:/") :].split("/", 1)[0]
        return ("run", run_id) if run_id else None
    return None
