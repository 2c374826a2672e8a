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
    """Every row of `stmt`, as plain tuples: on PostgreSQL in binary format, on SQLite straight from
    sqlite3's cursor (SQLAlchemy's rows were two thirds of the compare page's 20,000-row load). Values
    come as the driver gives them: a SQLite boolean is 0 or 1."""
    connection = session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    if connection.dialect.name == "sqlite":
        named = compiled.params  # built on every access
        params = [named[name] for name in compiled.positiontup or ()]
        return _fetch_driver(connection, compiled.string, params, lambda c: c.execute(compiled.string, params))
    return fetch_compiled(connection, compiled.string, compiled.params)


def fetch_compiled(
    connection: Connection, sql: str, params: Mapping[str, Any], prepare: bool | None = None
) -> Sequence[Sequence[Any]]:
    """Every row of SQL compiled for `connection`'s dialect (PostgreSQL), as binary-format tuples.
    `prepare=False` never prepares the statement, so PostgreSQL plans it for these values every
    time (psycopg otherwise prepares a statement run 5 times, and PostgreSQL may then reuse a
    generic plan); None leaves it to psycopg."""
    return _fetch_driver(connection, sql, params, lambda c: c.execute(sql, params, prepare=prepare), binary=True)


def _fetch_driver(
    connection: Connection, sql: str, params: Any, execute: Any, binary: bool = False
) -> Sequence[Sequence[Any]]:
    """`execute(cursor)` on a cursor of the driver's connection, then every row; driver errors as
    SQLAlchemy's."""
    driver = connection.connection.driver_connection
    try:
        cursor = driver.cursor(binary=True) if binary else driver.cursor()  # type: ignore[union-attr]
        try:
            execute(cursor)
            return cursor.fetchall()  # type: ignore[no-any-return]
        finally:
            cursor.close()
    except connection.dialect.loaded_dbapi.Error as exc:
        disconnected = connection.dialect.is_disconnect(exc, driver, None)
        if disconnected:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, connection.dialect.loaded_dbapi.Error, connection_invalidated=disconnected
        ) from exc
