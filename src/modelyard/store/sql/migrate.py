"""Bring a database to the newest schema with Alembic, configured in code (no alembic.ini).

Safe to call from several processes at once: on PostgreSQL the upgrade runs under a session-level
advisory lock, so the second caller waits and then finds nothing to do. On SQLite the whole upgrade is
one transaction, begun here with BEGIN IMMEDIATE (see `engine`), so the second caller waits for the
first to commit: Alembic would otherwise commit after each revision (SQLite's DDL counts as
non-transactional to it), and a caller that read the version between two of them re-ran the next
revision ("table registered_models already exists" when two gunicorn workers booted on a new file).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, text

from modelyard.store.sql.engine import create_engine_for

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: Any 64-bit number unique to "modelyard schema upgrade" among the advisory locks of a database.
ADVISORY_LOCK_KEY = 0x6D6F64656C796172  # "modelyar"
_SCHEMA_PACKAGES = ("modelyard.store",)


def target_metadata() -> MetaData:
    """The ORM metadata the migrations must produce.

    Every module named `schema` or `*_schema` under `modelyard.store` is imported first, so tables
    other stores declare on the shared `Base` (registry, logged models) are part of it.
    """
    for package_name in _SCHEMA_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            leaf = info.name.rsplit(".", 1)[-1]
            if leaf == "schema" or leaf.endswith("_schema"):
                importlib.import_module(info.name)
    from modelyard.store.sql.schema import Base

    return Base.metadata


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(uri_or_engine: str | Engine, revision: str = "heads") -> None:
    """Upgrade to `revision` (default: newest). A database already there is left untouched."""
    owned = isinstance(uri_or_engine, str)
    engine = create_engine_for(uri_or_engine) if isinstance(uri_or_engine, str) else uri_or_engine
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.connect() as conn:
            if postgres:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                conn.commit()
            else:
                conn.begin()  # held across every revision; Alembic then opens none of its own
            try:
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                conn.commit()
            finally:
                if postgres:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                    conn.commit()
    finally:
        if owned:
            engine.dispose()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
