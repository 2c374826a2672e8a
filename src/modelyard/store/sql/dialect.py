"""Dialect-specific statements the stores need and SQLAlchemy core does not abstract."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

#: Adds the ON CONFLICT clause to a dialect insert (it gets the statement, to reach `.excluded`).
OnConflict = Callable[[Any], Any]


def upsert_insert(session: Session, entity: Any) -> Any:
    """An INSERT that supports `on_conflict_do_nothing` / `on_conflict_do_update` on this backend."""
    table = getattr(entity, "__table__", entity)
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"Unsupported database dialect {name!r}: use SQLite or PostgreSQL.")


def execute_upsert(
    session: Session, entity: Any, rows: Sequence[dict[str, Any]], on_conflict: OnConflict
) -> None:
    """Insert many rows with an ON CONFLICT clause, in one statement per call.

    PostgreSQL gets `INSERT .. SELECT * FROM unnest(:col1, :col2, ..)`: one bind parameter per
    column, one round trip, and a statement whose compiled form is cached. (A multi-row VALUES
    clause is compiled afresh for every batch, one bind per cell; psycopg's executemany sends one
    statement per row.) SQLite is in-process, where executemany of one cached statement is cheapest.
    Rows are inserted in the order given; callers sort them so racing writers lock rows in the
    same order.
    """
    if not rows:
        return
    table = getattr(entity, "__table__", entity)
    stmt = upsert_insert(session, table)
    if session.get_bind().dialect.name != "postgresql":
        session.execute(on_conflict(stmt), list(rows))
        return
    columns = list(rows[0])
    arrays = [
        bindparam(f"col_{name}", [row[name] for row in rows], type_=postgresql.ARRAY(table.c[name].type))
        for name in columns
    ]
    source = func.unnest(*arrays).table_valued(*columns, with_ordinality="ord").render_derived(name="src")
    ordered = select(*(source.c[name] for name in columns)).order_by(source.c.ord)
    session.execute(on_conflict(stmt.from_select(columns, ordered)))
