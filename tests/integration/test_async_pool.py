"""`AsyncPgPool` on a real PostgreSQL: reuse, bounds, the wait timeout, dropping dead connections."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from modelyard.store.sql.async_pool import AsyncPgPool
from modelyard.store.sql.engine import create_engine_for

pytestmark = pytest.mark.postgres


def _pool(uri: str, max_size: int = 2, timeout: float = 30) -> AsyncPgPool:
    return AsyncPgPool.from_engine(create_engine_for(uri, pool_timeout=timeout), max_size)


async def _backend_pid(conn: Any) -> int:
    cursor = await conn.execute("SELECT pg_backend_pid()")
    row = await cursor.fetchone()
    return int(row[0])


def test_a_connection_is_reused_and_autocommits(postgres_uri: str) -> None:
    async def scenario() -> None:
        pool = _pool(postgres_uri)
        async with pool.connection() as conn:
            first = await _backend_pid(conn)
            await conn.execute("CREATE TABLE t (x int)")
            await conn.execute("INSERT INTO t VALUES (1)")
        async with pool.connection() as conn:
            assert await _backend_pid(conn) == first
        await pool.close()
        assert conn.closed

    asyncio.run(scenario())
    # Committed without any COMMIT: another session sees the row.
    with psycopg.connect(postgres_uri) as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_the_engine_timeout_bounds_the_wait_for_a_busy_pool(postgres_uri: str) -> None:
    async def scenario() -> None:
        pool = _pool(postgres_uri, max_size=1, timeout=0.2)
        assert pool.timeout == 0.2
        async with pool.connection():
            with pytest.raises(PoolTimeoutError):
                async with pool.connection():
                    pass
        # The slot came back: the pool serves again.
        async with pool.connection() as conn:
            assert await _backend_pid(conn) > 0
        await pool.close()

    asyncio.run(scenario())


def test_a_waiter_gets_the_connection_released_before_its_timeout(postgres_uri: str) -> None:
    async def scenario() -> list[str]:
        pool = _pool(postgres_uri, max_size=1)
        order: list[str] = []
        holding = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with pool.connection():
                holding.set()
                await release.wait()
                order.append("holder done")

        async def waiter() -> None:
            await holding.wait()
            async with pool.connection() as conn:
                order.append("waiter got it")
                await _backend_pid(conn)

        tasks = [asyncio.create_task(holder()), asyncio.create_task(waiter())]
        await holding.wait()
        await asyncio.sleep(0)  # the waiter is queued on the pool now
        order.append("releasing")
        release.set()
        await asyncio.gather(*tasks)
        await pool.close()
        return order

    assert asyncio.run(scenario()) == ["releasing", "holder done", "waiter got it"]


def test_a_cancelled_wait_gives_back_nothing_it_did_not_take(postgres_uri: str) -> None:
    async def scenario() -> None:
        pool = _pool(postgres_uri, max_size=1)
        async with pool.connection():
            waiting = asyncio.create_task(pool.connection().__aenter__())
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        async with pool.connection() as conn:  # exactly one slot, free again
            assert await _backend_pid(conn) > 0
            pool.timeout = 0.1
            with pytest.raises(PoolTimeoutError):
                async with pool.connection():
                    pass
        await pool.close()

    asyncio.run(scenario())


def test_an_idle_connection_the_server_ended_is_replaced_before_use(postgres_uri: str) -> None:
    # What a PostgreSQL restart does to every idle connection: the first request after it must
    # not fail (the server's goodbye makes the socket readable; the pool looks before using it).
    async def scenario() -> None:
        pool = _pool(postgres_uri, max_size=1)
        async with pool.connection() as conn:
            dead = await _backend_pid(conn)
        with psycopg.connect(postgres_uri, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (dead,))
        async with pool.connection() as fresh:
            assert await _backend_pid(fresh) != dead
        assert conn.closed
        await pool.close()

    asyncio.run(scenario())


def test_a_connection_that_dies_mid_request_fails_it_and_is_dropped(postgres_uri: str) -> None:
    async def scenario() -> None:
        pool = _pool(postgres_uri, max_size=1)
        with pytest.raises(psycopg.OperationalError):
            async with pool.connection() as conn:
                dead = await _backend_pid(conn)
                with psycopg.connect(postgres_uri, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (dead,))
                await _backend_pid(conn)
        assert conn.closed
        async with pool.connection() as conn:
            assert await _backend_pid(conn) != dead
        await pool.close()

    asyncio.run(scenario())


def test_a_failed_statement_leaves_the_connection_reusable(postgres_uri: str) -> None:
    async def scenario() -> None:
        pool = _pool(postgres_uri, max_size=1)
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with pool.connection() as conn:
                first = await _backend_pid(conn)
                await conn.execute("SELECT * FROM no_such_table")
        async with pool.connection() as conn:
            assert await _backend_pid(conn) == first
        await pool.close()

    asyncio.run(scenario())


def test_a_connection_in_use_at_close_is_closed_when_it_comes_back(postgres_uri: str) -> None:
    async def scenario() -> None:
        pool = _pool(postgres_uri, max_size=2)
        async with pool.connection() as busy:
            async with pool.connection() as idle:
                assert idle is not busy
            await pool.close()
            assert idle.closed and not busy.closed
        assert busy.closed

    asyncio.run(scenario())


def test_open_one_leaves_a_connection_for_the_first_request(postgres_uri: str) -> None:
    async def connections_from_here(probe: Any) -> int:
        cursor = await probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cursor.fetchone()
        return int(row[0])

    async def scenario() -> None:
        probe = await psycopg.AsyncConnection.connect(postgres_uri, autocommit=True)
        before = await connections_from_here(probe)
        pool = _pool(postgres_uri)
        await pool.open_one()
        assert await connections_from_here(probe) == before + 1
        await pool.open_one()  # one is idle already: nothing more is opened
        assert await connections_from_here(probe) == before + 1
        async with pool.connection() as conn:
            opened = await _backend_pid(conn)
            assert await connections_from_here(probe) == before + 1  # the request used the open one
        await pool.close()
        await probe.close()
        assert opened > 0

    asyncio.run(scenario())
