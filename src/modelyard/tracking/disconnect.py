"""Reads that stop when their client goes away.

A search runs in the thread pool on a pooled connection; when the client disconnects (a timeout, a
closed browser tab), the statement would otherwise run on until it ends or hits its statement timeout.
`until_disconnect` runs the work while it waits for the client's `http.disconnect`; if that comes
first, it cancels the PostgreSQL statements the work is running (`store/sql/budget.py: Cancellation`),
so the backend is free at once. SQLite statements are bounded by their time budget alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from modelyard.store.sql.budget import cancellable

T = TypeVar("T")


async def until_disconnect(request: Request, work: Callable[[], T]) -> T:
    with cancellable() as scope:
        # Both tasks copy the context now: the thread running `work` sees `scope`.
        task = asyncio.ensure_future(run_in_threadpool(work))
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            scope.cancel()
        return await task
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body was read already, so the next message is that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
