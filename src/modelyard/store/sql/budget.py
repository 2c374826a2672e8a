"""Bounded query cost: a time budget per statement (PostgreSQL) or per request (SQLite), and the
database's "this query is too big" answers turned into a client error.

PostgreSQL: every connection (the sync pool's and the async pool's) starts with
`statement_timeout` set through the connection's startup options (`with_pg_session_options`), so bounding a statement costs no
round trip; the server cancels a statement over its budget and the backend is free at once.
SQLite: a progress handler, called every few thousand VM instructions, interrupts the connection's
statement once the request that checked the connection out has used its budget (a statement waiting
on a lock is not counted: that wait has its own busy timeout).

Why a 400 (`BAD_REQUEST`) and not 503/504: the `mlflow` client retries 408, 429, 500, 502, 503 and
504 for minutes (MLflow itself maps DEADLINE_EXCEEDED to 504), so a query that is too expensive
would be re-run again and again, multiplying the load that made it time out. The same query over the
same data will time out again: the request has to change (a narrower filter, fewer terms), which is
what a 4xx says. The same goes for a statement SQLite or PostgreSQL refuses as too large.
The translation happens in an engine `handle_error` hook, so every caller of the stores (REST
routers, the UI, in-process clients) gets the same `ModelyardException`.
"""

from __future__ import annotations

import contextlib
import contextvars
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL

from modelyard import errors
from modelyard.exceptions import ModelyardException

#: SQLite VM instructions between two looks at the clock (~0.1 ms of work).
_SQLITE_CHECK_EVERY = 10_000
#: What the databases say when a statement is too big to compile or bind (client mistakes).
_TOO_LARGE = (
    "expression tree is too large",  # SQLite: SQLITE_MAX_EXPR_DEPTH (1,000)
    "too many sql variables",  # SQLite: SQLITE_MAX_VARIABLE_NUMBER
    "too many terms in compound select",
    "number of parameters must be between",  # libpq/psycopg: 65,535 bind parameters
    "stack depth limit exceeded",  # PostgreSQL: max_stack_depth
    "too many range table entries",
)


def with_pg_session_options(url: URL, statement_timeout: float) -> URL:
    """`url` with modelyard's session settings in its libpq startup options (kept by the async pool,
    which builds its connections from the same URL):
    - `statement_timeout` (seconds; <= 0 leaves the server's default);
    - `jit=off`: the tracking API's statements are short, and a search with many terms is estimated
      costly enough for PostgreSQL to JIT-compile it, which took longer (~1 s) than running it."""
    option = "-c jit=off"
    if statement_timeout > 0:
        option += f" -c statement_timeout={int(statement_timeout * 1000)}"
    existing = url.query.get("options")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    return url.update_query_dict({"options": f"{existing} {option}" if existing else option})


def install_sqlite_budget(engine: Engine, seconds: float) -> None:
    """Interrupt a SQLite connection's statement once the request holding it has run `seconds`."""
    if seconds <= 0:
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        deadline = record.info.setdefault("modelyard_deadline", [float("inf")])

        def over_budget() -> int:
            return 1 if time.monotonic() > deadline[0] else 0

        dbapi_conn.set_progress_handler(over_budget, _SQLITE_CHECK_EVERY)

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        deadline = record.info.get("modelyard_deadline")
        if deadline is not None:
            deadline[0] = time.monotonic() + seconds


@contextmanager
def unbounded(conn: Connection) -> Iterator[None]:
    """No time budget for the block's statements on `conn` (schema upgrades, which may rewrite big
    tables); the connection's own budget is back afterwards."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.exec_driver_sql("SET statement_timeout = 0")
    deadline = conn.connection.info.get("modelyard_deadline")
    if deadline is not None:
        deadline[0] = float("inf")
    try:
        yield
    finally:
        if postgres and not conn.invalidated:
            if conn.in_transaction():
                conn.rollback()
            conn.exec_driver_sql("RESET statement_timeout")
            conn.commit()


class Cancellation:
    """The database connections one request is using, so that they can be cancelled when the client
    goes away (`cancellable`). The engine's checkout hook adds each connection checked out while
    the scope is current (a contextvar, which FastAPI's thread pool carries into the request's thread)."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self.cancelled = False

    def cancel(self) -> None:
        """Ask PostgreSQL to cancel what these connections run (a cancel request on its own
        socket: thread-safe, and harmless when a connection is idle)."""
        self.cancelled = True
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                conn.cancel()


_CANCELLATION: contextvars.ContextVar[Cancellation | None] = contextvars.ContextVar(
    "modelyard_cancellation", default=None
)


@contextmanager
def cancellable() -> Iterator[Cancellation]:
    """A scope whose PostgreSQL connections `Cancellation.cancel()` can cancel."""
    scope = Cancellation()
    token = _CANCELLATION.set(scope)
    try:
        yield scope
    finally:
        _CANCELLATION.reset(token)


def install_cancellation(engine: Engine) -> None:
    """PostgreSQL: record each checked-out connection in the current `Cancellation`, if any."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        scope = _CANCELLATION.get()
        if scope is not None:
            scope.connections.append(dbapi_conn)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        scope = _CANCELLATION.get()
        if scope is not None and dbapi_conn in scope.connections:
            scope.connections.remove(dbapi_conn)


def install_refusals(engine: Engine, timeout_seconds: float) -> None:
    """Raise `query_refusal`'s client error in place of the driver's error, for every statement."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> BaseException | None:
        return query_refusal(context.original_exception, timeout_seconds)


def query_refusal(exc: BaseException, timeout_seconds: float | None = None) -> ModelyardException | None:
    """The 400 for a statement cancelled by its time budget or refused as too large; None for any
    other database error (those keep their own meaning: a server that is down stays a 503)."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).lower()
    if _is_timeout(orig, message):
        budget = f" of {timeout_seconds:g} s" if timeout_seconds else ""
        return ModelyardException(
            f"The query was cancelled: it ran over the database time budget{budget} "
            "(MODELYARD_DB_STATEMENT_TIMEOUT). Narrow the search (fewer terms, a more selective "
            "filter, fewer order_by keys) rather than retrying it.",
            errors.BAD_REQUEST,
        )
    if any(fragment in message for fragment in _TOO_LARGE):
        return ModelyardException(
            f"The query is too large for the database ({str(orig).strip().splitlines()[0]}); "
            "split it into smaller searches.",
            errors.BAD_REQUEST,
        )
    return None


def _is_timeout(orig: BaseException, message: str) -> bool:
    if isinstance(orig, sqlite3.OperationalError):
        return message == "interrupted"
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate == "57014"  # query_canceled: statement_timeout (or a cancel request)
