"""Dialect-specific statements the stores need and SQLAlchemy core does not abstract."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert_insert(session: Session, table: Any) -> Any:
    """An INSERT that supports `on_conflict_do_nothing` / `on_conflict_do_update` on this backend."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"Unsupported database dialect {name!r}: use SQLite or PostgreSQL.")
