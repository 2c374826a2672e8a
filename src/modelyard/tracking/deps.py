"""Typed FastAPI dependencies for the tracking routers.

All of them are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, and a
thread hop per dependency would cost more than what they do. Endpoints themselves are plain `def`, so
the (blocking) store call runs in the pool while the event loop keeps reading other requests; the
metric writes are the exception, `async def` endpoints that await `RunWritesDep` (which never blocks
the loop: see `modelyard.store.tracking.async_writes`).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Depends, Request

from modelyard.auth.identity import current_identity
from modelyard.settings import Settings
from modelyard.store.tracking.async_writes import AsyncRunWrites
from modelyard.store.tracking.base import TrackingStore
from modelyard.tracking.parsing import Args, read_args


def request_user(request: Request) -> str | None:
    """The user a request acts for: with auth on, the authenticated user (nothing the request says
    about itself counts); with auth off, the basic-auth user name the mlflow client sends from
    MLFLOW_TRACKING_USERNAME, else an `X-Modelyard-User` header (a label, not a proof)."""
    identity = current_identity(request)
    if identity is not None:
        return identity.username
    if getattr(request.app.state, "auth", None) is not None:
        return None
    authorization = request.headers.get("authorization", "")
    if authorization[:6].lower() == "basic ":
        try:
            user = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            user = ""
        if user:
            return user[:256]
    return request.headers.get("x-modelyard-user", "")[:256] or None


async def get_store(request: Request) -> TrackingStore:
    return request.app.state.tracking_store  # type: ignore[no-any-return]


async def get_run_writes(request: Request) -> AsyncRunWrites:
    return request.app.state.run_writes  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


StoreDep = Annotated[TrackingStore, Depends(get_store)]
RunWritesDep = Annotated[AsyncRunWrites, Depends(get_run_writes)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
#: The request's parameters (JSON body, or query string for GET), see `modelyard.tracking.parsing`.
ArgsDep = Annotated[Args, Depends(read_args)]
