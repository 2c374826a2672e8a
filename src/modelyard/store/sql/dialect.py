"""Dialect-specific statements the stores need and SQLAlchemy core does not abstract."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

#: Adds the ON CONFLICT clause to a dialect insert (it gets the statement, to reach `.excluded`).
OnConflict = Callable[[Any], Any]


def upsert_insert(session: Session, entity: Any) -> Any:
    """An INSERT that supports `on_conflict_do_nothing` / `on_conflict_do_update` on this backend."""
    return _dialect_insert(session.get_bind().dialect.name, getattr(entity, "__table__", entity))


def _dialect_insert(name: str, table: Any) -> Any:
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"Unsupported database dialect {name!r}: use SQLite or PostgreSQL.")


def do_nothing(stmt: Any) -> Any:
    """The `on_conflict` of an upsert that keeps the stored row on any conflict."""
    return stmt.on_conflict_do_nothing()


def execute_upsert(
    session: Session, entity: Any, rows: Sequence[dict[str, Any]], on_conflict: OnConflict
) -> None:
    """Insert many rows with an ON CONFLICT clause, in one statement per call.

    PostgreSQL gets `INSERT .. SELECT * FROM unnest(CAST(:col1 AS type[]), ..)`: one bind parameter
    per column, each sent as the text form of an array (`pg_array_literal`), one round trip, and a
    statement whose compiled form is cached. (A multi-row VALUES clause is compiled afresh for every
    batch, one bind per cell; psycopg's executemany sends one statement per row; psycopg's own list
    dumper is pure Python and cost ~20% of a 1,000-metric batch.) SQLite is in-process, where
    executemany of one cached statement is cheapest. Rows are inserted in the order given; callers
    sort them so racing writers lock rows in the same order.

    `on_conflict` is a module-level function: the statement is built once per (backend, table,
    `on_conflict`, columns) and reused (building it - `Insert.excluded` above all - cost more CPU
    than running it on SQLite).
    """
    if not rows:
        return
    table = getattr(entity, "__table__", entity)
    name = session.get_bind().dialect.name
    if name != "postgresql":
        session.execute(_upsert_statement(name, table, on_conflict, ()), list(rows))
        return
    columns = tuple(rows[0])
    params = {
        f"col_{column}": pg_array_literal([row[column] for row in rows], table.c[column].type.python_type)
        for column in columns
    }
    session.execute(_upsert_statement(name, table, on_conflict, columns), params)


#: `_upsert_statement`'s statements; bounded, should a caller pass a new function on every call.
_UPSERTS: dict[tuple[str, Any, OnConflict, tuple[str, ...]], Any] = {}


def _upsert_statement(dialect: str, table: Any, on_conflict: OnConflict, columns: tuple[str, ...]) -> Any:
    """`execute_upsert`'s statement: for SQLite, values bound per row (executemany); for PostgreSQL,
    `columns` each bound as one `col_<name>` array text parameter."""
    key = (dialect, table, on_conflict, columns)
    stmt = _UPSERTS.get(key)
    if stmt is not None:
        return stmt
    insert = _dialect_insert(dialect, table)
    if dialect == "postgresql":
        arrays = [
            cast(bindparam(f"col_{name}", type_=Text), postgresql.ARRAY(table.c[name].type))
            for name in columns
        ]
        source = func.unnest(*arrays).table_valued(*columns, with_ordinality="ord").render_derived(name="src")
        ordered = select(*(source.c[name] for name in columns)).order_by(source.c.ord)
        insert = insert.from_select(list(columns), ordered)
    stmt = on_conflict(insert)
    if len(_UPSERTS) >= 256:
        _UPSERTS.clear()
    _UPSERTS[key] = stmt
    return stmt


def pg_array_literal(values: Sequence[Any], element_type: type) -> str:
    """PostgreSQL's text form of a one-dimensional array of `element_type` (str, int, float, bool),
    to be bound as one text parameter and read back with `CAST(:param AS type[])`.

    Joining the elements' own text forms runs at C speed, where psycopg's array dumper calls Python
    per element. Strings are always double-quoted (so spaces, commas, braces and the word NULL stay
    data), with backslash and double quote escaped; None is SQL NULL. Floats use `repr`, which
    round-trips exactly and spells non-finite values `nan`/`inf`/`-inf`, as PostgreSQL reads them.
    """
    if not values:
        return "{}"
    if None in values:
        elements = ("NULL" if v is None else pg_array_literal([v], element_type)[1:-1] for v in values)
        return "{" + ",".join(elements) + "}"
    if element_type is str:
        body = '","'.join(values)
        if "\\" in body or body.count('"') != 2 * (len(values) - 1):  # the separators' own quotes aside
            body = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
        return '{"' + body + '"}'
    if element_type is bool:
        return "{" + ",".join(["t" if v else "f" for v in values]) + "}"
    if element_type is int:
        return "{" + ",".join(map(str, map(int, values))) + "}"
    if element_type is float:
        return "{" + ",".join(map(repr, map(float, values))) + "}"
    raise TypeError(f"No PostgreSQL array text form for {element_type.__name__} elements")


def in_list_param(column: Any, param: str, element_type: Any, postgres: bool) -> ColumnElement[bool]:
    """`column IN <the list bound as :param>` (bind it with `list_param`). On PostgreSQL the list is one
    text parameter read as an array and unnested: the statement's text is the same whatever the list's
    length (psycopg converts and prepares it once), and the planner hashes or index-probes the values,
    where `= ANY(array)` would compare every row with every value. Elsewhere an expanding parameter."""
    if postgres:
        # `AS alias(v)`: without the column list, `alias.v` would not name the column (and a `alias.name`
        # is PostgreSQL's function-call spelling of a cast to its 63-byte `name` type).
        array = cast(bindparam(param, type_=Text), postgresql.ARRAY(element_type))
        values = func.unnest(array).table_valued("v").render_derived()
        return column.in_(select(values.c.v))  # type: ignore[no-any-return]
    return column.in_(bindparam(param, expanding=True))  # type: ignore[no-any-return]


def list_param(values: Sequence[Any], element_type: type, postgres: bool) -> Any:
    """The value to bind for an `in_list_param` of `values`."""
    return pg_array_literal(values, element_type) if postgres else list(values)
