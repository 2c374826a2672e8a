"""One place that turns a database URI into a configured SQLAlchemy engine.

Users write `postgresql://...` (as they do for MLflow); we always drive PostgreSQL with psycopg 3.
SQLite gets WAL (readers never block the writer), enforced foreign keys and a busy timeout, and every
SQLite transaction that may write starts with BEGIN IMMEDIATE: a deferred transaction that read first
and then tries to write fails at once with SQLITE_BUSY when another writer committed in between (the
busy timeout does not apply to that case), which would make concurrent log-batch calls fail.
"""

from __future__ import annotations

import select
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from modelyard.store.sql.budget import (
    install_cancellation,
    install_refusals,
    install_sqlite_budget,
    with_pg_session_options,
)

SQLITE_BUSY_TIMEOUT_MS = 60_000
#: Execution option for read-only work on SQLite: a plain (deferred) BEGIN, so readers never queue
#: behind writers. `engine.execution_options(**READ_ONLY)` gives an engine sharing the same pool.
READ_ONLY = {"modelyard_read_only": True}
#: PostgreSQL connections are replaced after this many seconds (server-side idle limits, failovers).
POOL_RECYCLE_SECONDS = 1800


def normalize_uri(uri: str) -> str:
    """`postgres://` and `postgresql://` -> `postgresql+psycopg://`; explicit drivers are kept."""
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri[len("postgres://") :]
    if uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + uri[len("postgresql://") :]
    return uri


def is_sqlite(uri_or_engine: str | Engine) -> bool:
    if isinstance(uri_or_engine, Engine):
        return uri_or_engine.dialect.name == "sqlite"
    return make_url(normalize_uri(uri_or_engine)).get_backend_name() == "sqlite"


def create_engine_for(
    uri: str,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30,
    statement_timeout: float = 0,
) -> Engine:
    """`statement_timeout` (seconds, 0: none) bounds each statement on PostgreSQL and each
    checkout's statements on SQLite; over it, or too large to run, a query raises a 400
    (`store/sql/budget.py`)."""
    url = make_url(normalize_uri(uri))
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url)
        install_sqlite_budget(engine, statement_timeout)
        install_refusals(engine, statement_timeout)
        return engine
    # No pool_pre_ping: it costs a round trip on every checkout (~1/3 of a log-metric). Instead a
    # checkout looks, without waiting, whether the idle connection's socket has something to read:
    # an idle PostgreSQL connection never does unless the server ended it (a restart sends a FATAL
    # message and closes the socket), so the first request after a restart gets a fresh connection.
    kwargs: dict[str, Any] = {"pool_pre_ping": False}
    if url.get_backend_name() == "postgresql":
        url = with_pg_session_options(url, statement_timeout)
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=POOL_RECYCLE_SECONDS,
        )
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "postgresql":
        event.listen(engine, "checkout", _refuse_closed_by_server)
        install_cancellation(engine)
    install_refusals(engine, statement_timeout)
    return engine


def closed_by_server(fileno: int) -> bool:
    """Whether an idle connection's socket is readable: the server closed it (or said why it will).
    A zero-timeout poll, no round trip; a false alarm only costs a reconnect."""
    if fileno < 0:
        return True
    readable, _, _ = select.select([fileno], [], [], 0)
    return bool(readable)


def _refuse_closed_by_server(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    # DisconnectionError makes the pool drop this connection and check out (or open) another.
    if closed_by_server(dbapi_conn.fileno()):
        raise DisconnectionError("the server closed this pooled connection")


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (it stays so once one connection did). Switching needs the file to
    itself and SQLite answers "database is locked" at once, without its busy wait, while another
    connection is in it: several workers opening a new file together retry for a while."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_engine(url: Any) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from pysqlite (its implicit BEGIN is the broken part);
        # the `begin` listener below issues the right BEGIN instead.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            if url.database not in (None, "", ":memory:"):
                _use_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # SQLAlchemy's pysqlite recipe issues this with `conn.exec_driver_sql`; its execution
        # machinery cost ~70 us of CPU per transaction (a write request has one or two), for a
        # statement with no parameters, no result and no listener: run it on the driver connection,
        # raising its errors as SQLAlchemy's, as `exec_driver_sql` would (a locked database past the
        # busy timeout stays a 503).
        read_only = conn.get_execution_options().get("modelyard_read_only", False)
        sql = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        try:
            conn.connection.driver_connection.execute(sql)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc

    return engine
