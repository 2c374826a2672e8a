"""Plain tuples from a Core SELECT, for the read paths that return many rows per request.

A 25,000-point metric-history page spent more time in SQLAlchemy's `Row` objects and in psycopg's
text-format parsing than in PostgreSQL: fetching the same rows through the DB-API cursor, and in
binary format on PostgreSQL, takes about half the time. The statement is still built and compiled by
SQLAlchemy and runs on the session's (or connection's) connection, inside its transaction if any.
Driver errors are raised as SQLAlchemy's, as `Connection.execute` would, so the service maps them
the same way (a value the database refuses is a 400, an unreachable database a 503).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def fetch_tuples(session: Session, stmt: Select[Any]) -> Sequence[Sequence[Any]]:
    """Every row of `stmt`, as plain tuples on PostgreSQL (SQLite, in-process and not the hot path,
    keeps SQLAlchemy's rows)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return connection.execute(stmt).all()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    return fetch_compiled(connection, compiled.string, compiled.params)


def fetch_compiled(
    connection: Connection, sql: str, params: Mapping[str, Any], prepare: bool | None = None
) -> Sequence[Sequence[Any]]:
    """Every row of SQL compiled for `connection`'s dialect (PostgreSQL), as binary-format tuples.
    `prepare=False` never prepares the statement, so PostgreSQL plans it for these values every
    time (psycopg otherwise prepares a statement run 5 times, and PostgreSQL may then reuse a
    generic plan); None leaves it to psycopg."""
    driver = connection.connection.driver_connection
    try:
        with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
            cursor.execute(sql, params, prepare=prepare)
            return cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as exc:
        disconnected = connection.dialect.is_disconnect(exc, driver, None)
        if disconnected:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, connection.dialect.loaded_dbapi.Error, connection_invalidated=disconnected
        ) from exc
