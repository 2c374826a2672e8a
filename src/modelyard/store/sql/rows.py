"""Plain tuples from a Core SELECT, for the read paths that return many rows per request.

A 25,000-point metric-history page spent more time in SQLAlchemy's `Row` objects and in psycopg's
text-format parsing than in PostgreSQL: fetching the same rows through the DB-API cursor, and in
binary format on PostgreSQL, takes about half the time. The statement is still built and compiled by
SQLAlchemy and runs on the session's connection, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session


def fetch_tuples(session: Session, stmt: Select[Any]) -> Sequence[Sequence[Any]]:
    """Every row of `stmt`, as plain tuples on PostgreSQL (SQLite, in-process and not the hot path,
    keeps SQLAlchemy's rows)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return connection.execute(stmt).all()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    driver = connection.connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute(compiled.string, compiled.params)
        return cursor.fetchall()
