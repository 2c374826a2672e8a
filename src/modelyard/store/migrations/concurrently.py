"""CREATE INDEX CONCURRENTLY for migrations (PostgreSQL), inside Alembic's autocommit block: writes go on
while the index is built, and a build that was stopped (it leaves the index invalid) is dropped and run
again, so an upgrade stopped half-way is resumed by running it again. Used by migrations 0011 and 0014:
changing it changes what they do."""

from __future__ import annotations

import sqlalchemy as sa


def create_index_concurrently(bind: sa.Connection, name: str, table: str, columns: str) -> None:
    """`CREATE INDEX CONCURRENTLY name ON table (columns)` unless a valid index of that name exists."""
    valid = bind.exec_driver_sql(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %(name)s",
        {"name": name},
    ).scalar()
    if valid:
        return
    if valid is not None:  # left invalid by a build that was stopped
        bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY {name}")
    bind.exec_driver_sql(f"CREATE INDEX CONCURRENTLY {name} ON {table} ({columns})")
