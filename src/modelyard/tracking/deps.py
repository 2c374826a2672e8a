"""Typed FastAPI dependencies for the tracking routers.

All of them are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, and a
thread hop per dependency would cost more than what they do. Endpoints themselves are plain `def`, so
the (blocking) store call runs in the pool while the event loop keeps reading other requests; the
metric writes are the exception, `async def` endpoints that await `RunWritesDep` (which never blocks
the loop: see `modelyard.store.tracking.async_writes`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelyard.auth.identity import request_user as request_user
from modelyard.protocol.parsing import ArgsDep as ArgsDep
from modelyard.settings import Settings
from modelyard.store.tracking.async_writes import AsyncRunWrites
from modelyard.store.tracking.base import TrackingStore


async def get_store(request: Request) -> TrackingStore:
    return request.app.state.tracking_store  # type: ignore[no-any-return]


async def get_run_writes(request: Request) -> AsyncRunWrites:
    return request.app.state.run_writes  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


StoreDep = Annotated[TrackingStore, Depends(get_store)]
RunWritesDep = Annotated[AsyncRunWrites, Depends(get_run_writes)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
