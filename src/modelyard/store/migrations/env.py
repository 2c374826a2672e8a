"""Alembic environment, driven from code: `modelyard.store.sql.migrate` puts an open connection in
`config.attributes["connection"]` (it holds the PostgreSQL advisory lock on that connection).
Without one, the URL in `sqlalchemy.url` is used, so `alembic -x`-style tooling still works."""

from __future__ import annotations

from alembic import context

from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import include_object_for, target_metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
        include_object=include_object_for(connection.dialect.name),  # type: ignore[attr-defined]
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine_for(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()
