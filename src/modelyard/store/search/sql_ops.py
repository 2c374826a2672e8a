"""Comparators as SQLAlchemy expressions with the same meaning on SQLite and PostgreSQL.

Every value is a bound parameter. LIKE is case-sensitive (as MLflow documents) on both backends:
PostgreSQL's LIKE already is; SQLite's is not, so there the pattern is translated to GLOB, which is
case-sensitive and, for a prefix pattern, can still use an index. ILIKE is PostgreSQL's ILIKE and
`lower(x) LIKE lower(p)` on SQLite (SQLite folds ASCII letters only; PostgreSQL folds all).
In both, backslash is the escape character (PostgreSQL's default): `'100\\%'` matches `100%`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql.elements import KeyedColumnElement

from modelyard.exceptions import ModelyardException

LIKE_ESCAPE = "\\"

ColumnExpr = ColumnElement[Any] | KeyedColumnElement[Any]


def compare(column: ColumnExpr, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    """`column <op> value` for the comparators of the filter language (IS [NOT] NULL excluded:
    whether a keyed value exists is a question about rows, answered by the caller)."""
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return like(column, value, dialect)
    if op == "ILIKE":
        check_like_pattern(value)
        return column.ilike(value, escape=LIKE_ESCAPE)
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise ModelyardException.invalid_parameter(f"Unsupported comparator '{op}'.")


def like(column: ColumnExpr, pattern: str, dialect: str) -> ColumnElement[bool]:
    check_like_pattern(pattern)
    if dialect == "sqlite":
        return column.op("GLOB", is_comparison=True)(like_to_glob(pattern))
    return column.like(pattern, escape=LIKE_ESCAPE)


def check_like_pattern(pattern: str) -> None:
    """PostgreSQL errors on a pattern ending in a lone escape character; refuse it up front on
    every backend so the same filter never means two things (or a 500)."""
    trailing = len(pattern) - len(pattern.rstrip(LIKE_ESCAPE))
    if trailing % 2 == 1:
        raise ModelyardException.invalid_parameter(
            f"Invalid LIKE pattern '{pattern}': it ends with a lone escape character '\\'."
        )


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (escape `\\`) as the equivalent GLOB pattern."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == LIKE_ESCAPE:
            out.append(_glob_literal(next(chars)))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


def any_of(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def all_of(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return clauses[0] if len(clauses) == 1 else and_(*clauses)
