"""A small bounded pool of psycopg AsyncConnections for one event loop (one tracking worker).

Why not SQLAlchemy's async engine or psycopg-pool: the pool exists for the hottest writes (one short
autocommitted statement each), where SQLAlchemy's execution layer cost as much CPU as psycopg itself and
psycopg-pool brings background tasks and a dependency for what is a list and a semaphore here.

What it keeps from the sync engine's pool (`store/sql/engine.py`), so both paths behave alike:
- the same connection arguments (taken from the SQLAlchemy engine's dialect, see `from_engine`);
- a bound on connections, and a wait for a free one that ends, after `timeout` seconds, in SQLAlchemy's
  own pool `TimeoutError`, which the tracking service answers with a retryable 503 like the sync pool's;
- no pre-ping, but an idle connection whose socket the server closed (a restart) is dropped when it is
  taken, without a round trip (`closed_by_server`); one that dies mid-request fails it (a 503);
- connections older than `recycle` seconds are closed when they come back instead of being reused.

Waiting is always `await`ed, never blocking: a slow or stuck database delays only the requests that
need a connection, never the rest of the worker's event loop. Connections are made lazily, on the loop
that uses them; build the pool after the fork (the tracking app is built per worker) and `close()` it
in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool

from modelyard.store.sql.engine import POOL_RECYCLE_SECONDS, closed_by_server

Connect = Callable[[], Awaitable[AsyncConnection[Any]]]
_IDLE = int(TransactionStatus.IDLE)


class AsyncPgPool:
    def __init__(
        self, connect: Connect, max_size: int, timeout: float, recycle: float = POOL_RECYCLE_SECONDS
    ) -> None:
        if max_size < 1:
            raise ValueError("an async pool needs at least one connection")
        self._connect = connect
        self.max_size = max_size
        self.timeout = timeout
        self.recycle = recycle
        self._slots = asyncio.Semaphore(max_size)
        #: Idle connections with the monotonic time each was opened; the last returned is reused first.
        self._idle: list[tuple[AsyncConnection[Any], float]] = []
        self._closed = False

    @classmethod
    def from_engine(cls, engine: Engine, max_size: int) -> AsyncPgPool:
        """Connections to the engine's PostgreSQL database, with the arguments, wait timeout and
        recycle age the engine's own pool uses, in autocommit mode (each statement is a transaction)."""
        cargs, cparams = engine.dialect.create_connect_args(engine.url)

        def connect() -> Awaitable[AsyncConnection[Any]]:
            return AsyncConnection.connect(*cargs, **cparams, autocommit=True)

        timeout = engine.pool.timeout() if isinstance(engine.pool, QueuePool) else 30.0
        return cls(connect, max_size, timeout, POOL_RECYCLE_SECONDS)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for the block; it goes back to the pool if it is still clean afterwards."""
        await self._acquire_slot()
        try:
            conn, opened = await self._take_idle() or (await self._connect(), time.monotonic())
        except BaseException:
            self._slots.release()
            raise
        try:
            yield conn
        finally:
            try:
                await self._put_back(conn, opened)
            finally:
                self._slots.release()

    async def _take_idle(self) -> tuple[AsyncConnection[Any], float] | None:
        """The most recently returned idle connection the server has not closed (a restart closes
        them all: each is dropped here, without a round trip, and the request opens a fresh one)."""
        while self._idle:
            conn, opened = self._idle.pop()
            try:
                alive = not closed_by_server(conn.pgconn.socket)
            except psycopg.OperationalError:  # libpq already knows the connection is gone
                alive = False
            if alive:
                return conn, opened
            await conn.close()
        return None

    async def open_one(self) -> None:
        """Open a connection ahead of the first request when none is idle: connecting (TCP, startup,
        authentication) costs a few ms, which the worker's first metric write would otherwise pay."""
        if not self._idle and not self._closed:
            async with self.connection():
                pass

    async def close(self) -> None:
        """Close the idle connections; connections in use are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _opened in idle:
            await conn.close()

    async def _acquire_slot(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # returns at once: no task, no timer
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11 on
            raise PoolTimeoutError(
                f"All {self.max_size} connections of the async pool stayed busy for {self.timeout:g} s."
            ) from None

    async def _put_back(self, conn: AsyncConnection[Any], opened: float) -> None:
        """Keep the connection only if it is idle and healthy: a statement that failed in autocommit
        mode leaves it so, one that was cancelled or lost the server may leave it mid-protocol."""
        reusable = (
            not self._closed
            # libpq's own status (no ConnectionInfo per call): UNKNOWN once the connection is bad.
            and conn.pgconn.transaction_status == _IDLE
            and time.monotonic() - opened < self.recycle
        )
        if reusable:
            self._idle.append((conn, opened))
        else:
            await conn.close()  # finishes the libpq handle; does not wait on the server
