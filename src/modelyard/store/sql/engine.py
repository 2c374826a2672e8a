"""One place that turns a database URI into a configured SQLAlchemy engine.

Users write `postgresql://...` (as they do for MLflow); we always drive PostgreSQL with psycopg 3.
SQLite gets WAL (readers never block the writer), enforced foreign keys and a busy timeout, and every
SQLite transaction that may write starts with BEGIN IMMEDIATE: a deferred transaction that read first
and then tries to write fails at once with SQLITE_BUSY when another writer committed in between (the
busy timeout does not apply to that case), which would make concurrent log-batch calls fail.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

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
    uri: str, pool_size: int = 5, max_overflow: int = 10, pool_timeout: float = 30
) -> Engine:
    url = make_url(normalize_uri(uri))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # No pool_pre_ping: it costs a round trip on every checkout (~1/3 of a log-metric). A connection
    # that died with the server fails one request, which maps to a retryable 503
    # (TEMPORARILY_UNAVAILABLE); SQLAlchemy then invalidates the pool and the client's retry succeeds.
    kwargs: dict[str, Any] = {"pool_pre_ping": False}
    if url.get_backend_name() == "postgresql":
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=POOL_RECYCLE_SECONDS,
        )
    return create_engine(url, **kwargs)


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
        read_only = conn.get_execution_options().get("modelyard_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
