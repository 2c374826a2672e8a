"""Alembic migrations of the modelyard database; run them with `modelyard.store.sql.migrate.upgrade`."""
