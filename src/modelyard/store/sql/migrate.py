"""Bring a database to the newest schema with Alembic, configured in code (no alembic.ini).

Safe to call from several processes at once: on PostgreSQL the upgrade runs under a session-level
advisory lock, so the second caller waits (asking again every LOCK_POLL_SECONDS) and then finds nothing
to do. On SQLite the whole upgrade is
one transaction, begun here with BEGIN IMMEDIATE (see `engine`), so the second caller waits for the
first to commit: Alembic would otherwise commit after each revision (SQLite's DDL counts as
non-transactional to it), and a caller that read the version between two of them re-ran the next
revision ("table registered_models already exists" when two gunicorn workers booted on a new file).

Rollbacks: a release that finds the database at a revision it does not know (a newer release migrated
it) does not fail on Alembic's "Can't locate revision". Every migration declares whether the release
before it keeps working on its schema (`backward_compatible`, an additive change), and every upgrade
records in `schema_info` the oldest revision whose code can use the schema it leaves. An older release
whose newest revision is that one or later runs on the newer schema without touching it; any other gets
an error that says what to deploy. So redeploying the previous image (a GitOps revert runs the chart's
pre-upgrade migration Job with it) works, and pointing modelyard at another application's database
(MLflow's) is refused with a message instead of a stack trace.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.budget import unbounded
from modelyard.store.sql.engine import create_engine_for

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: Any 64-bit number unique to "modelyard schema upgrade" among the advisory locks of a database.
ADVISORY_LOCK_KEY = 0x6D6F64656C796172  # "modelyar"
LOCK_POLL_SECONDS = 0.2
_SCHEMA_PACKAGES = ("modelyard.store",)
#: The `schema_info` row naming the oldest revision whose code can use the database's schema.
OLDEST_COMPATIBLE_KEY = "oldest_compatible_revision"


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


#: Indexes Alembic reflects but cannot compare with the ORM's (a column's COLLATE in an index): it
#: reports them as removed and added again. Their migration creates them as the ORM does.
NOT_COMPARED_INDEXES = frozenset(
    {
        "idx_runs_experiment_stage_order",
        "idx_runs_experiment_stage_name",
        "idx_runs_experiment_stage_end",
        "idx_runs_experiment_stage_status",
        "idx_runs_experiment_stage_user",
        "idx_params_experiment_key_value_start",
        "idx_tags_experiment_key_value_start",
        "idx_params_experiment_key_start_value",
        "idx_tags_experiment_key_start_value",
    }
)


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` hook for comparing the ORM with a `dialect` database: an index the ORM
    creates on another dialect only (`Index.ddl_if(dialect=...)`) is left out, as `create_all` leaves it
    out (Alembic itself does not read ddl_if), and so are NOT_COMPARED_INDEXES."""

    def include(obj: object, name: str | None, type_: str, reflected: bool, _compare_to: object) -> bool:
        if type_ == "index" and name in NOT_COMPARED_INDEXES:
            return False
        only = getattr(obj, "_ddl_if", None)
        if type_ != "index" or reflected or only is None or only.dialect is None:
            return True
        dialects = (only.dialect,) if isinstance(only.dialect, str) else tuple(only.dialect)
        return dialect in dialects

    return include


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
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def oldest_compatible_revision(revision: str, script: ScriptDirectory | None = None) -> str:
    """The oldest revision whose code can use the schema at `revision`: walk back while each step
    says the release before it keeps working (`backward_compatible` in the migration module)."""
    script = script or ScriptDirectory.from_config(alembic_config())
    step = script.get_revision(revision)
    while step.down_revision is not None and getattr(step.module, "backward_compatible", False):
        step = script.get_revision(step.down_revision)  # type: ignore[arg-type]
    return step.revision


class SchemaState(Enum):
    CURRENT = "current"
    BEHIND = "behind"
    NEWER_COMPATIBLE = "newer, compatible"
    NEWER_INCOMPATIBLE = "newer, incompatible"
    FOREIGN = "foreign"


class SchemaMismatch(ModelyardException):
    """The database's schema is not one this release can use as it is."""

    def __init__(self, status: SchemaStatus) -> None:
        super().__init__(status.describe(), errors.INVALID_STATE)
        self.status = status


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this release's migrations."""

    revision: str | None  # the database's (None: no schema yet)
    head: str  # this release's newest
    state: SchemaState
    oldest_compatible: str | None = None  # what a newer database says of itself

    @property
    def usable(self) -> bool:
        """This release can serve the database without migrating it."""
        return self.state in (SchemaState.CURRENT, SchemaState.NEWER_COMPATIBLE)

    def describe(self) -> str:
        rev, head = self.revision, self.head
        if self.state is SchemaState.CURRENT:
            return f"The database schema is at revision {rev}, the newest this release knows."
        if self.state is SchemaState.BEHIND:
            at = f"at revision {rev}" if rev else "empty"
            return (
                f"The database schema is {at}; this release needs revision {head}. Upgrade it with "
                "`modelyard db upgrade <database-uri>` (the Helm chart's migration Job does this), or "
                "start the tracking service with MODELYARD_AUTO_MIGRATE=true."
            )
        if self.state is SchemaState.NEWER_COMPATIBLE:
            return (
                f"The database schema is at revision {rev}, newer than this release ({head}); it says "
                f"releases from revision {self.oldest_compatible} on can use it, so this release runs on "
                "it without migrating."
            )
        if self.state is SchemaState.NEWER_INCOMPATIBLE:
            return (
                f"The database schema is at revision {rev}, newer than this release ({head}), and it needs "
                f"a release that knows revision {self.oldest_compatible} or later. Deploy that release: "
                "an older one cannot undo a newer schema."
            )
        return (
            f"The database is at revision {rev}, which no modelyard release wrote (it has no "
            "schema_info). Is it another application's database, such as MLflow's? Give modelyard a "
            "database of its own."
        )


def _status(conn: Connection, script: ScriptDirectory) -> SchemaStatus:
    head = script.get_current_head()
    assert head is not None, "the package ships no migrations"
    revision = _revision(conn)
    if revision == head:
        return SchemaStatus(revision, head, SchemaState.CURRENT)
    known = {step.revision for step in script.walk_revisions()}
    if revision is None or revision in known:
        return SchemaStatus(revision, head, SchemaState.BEHIND)
    oldest = _recorded_oldest_compatible(conn)
    if oldest is None:
        return SchemaStatus(revision, head, SchemaState.FOREIGN)
    # `known` holds this release's head and every revision before it: the newer database accepts this
    # release when the oldest revision it names is among them.
    state = SchemaState.NEWER_COMPATIBLE if oldest in known else SchemaState.NEWER_INCOMPATIBLE
    return SchemaStatus(revision, head, state, oldest)


def _recorded_oldest_compatible(conn: Connection) -> str | None:
    if not inspect(conn).has_table("schema_info"):
        return None
    return _schema_info_value(conn)


def _schema_info_value(conn: Connection) -> str | None:
    row = conn.execute(
        text("SELECT value FROM schema_info WHERE key = :key"), {"key": OLDEST_COMPATIBLE_KEY}
    ).first()
    return None if row is None else str(row[0])


def _record_oldest_compatible(conn: Connection, script: ScriptDirectory) -> None:
    """Say, in the upgrading transaction, which releases can use the schema just reached."""
    revision = _revision(conn)
    if revision is None or not inspect(conn).has_table("schema_info"):
        return  # an upgrade stopped before the revision that adds the table
    params = {"key": OLDEST_COMPATIBLE_KEY, "value": oldest_compatible_revision(revision, script)}
    recorded = _schema_info_value(conn)
    if recorded is None:
        conn.execute(text("INSERT INTO schema_info (key, value) VALUES (:key, :value)"), params)
    elif recorded != params["value"]:  # a worker's start-up upgrade that changed nothing writes nothing
        conn.execute(text("UPDATE schema_info SET value = :value WHERE key = :key"), params)


@contextmanager
def _engine(uri_or_engine: str | Engine) -> Iterator[Engine]:
    """The given engine, or one made for the URI and disposed of afterwards."""
    if not isinstance(uri_or_engine, str):
        yield uri_or_engine
        return
    engine = create_engine_for(uri_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def schema_status(uri_or_engine: str | Engine) -> SchemaStatus:
    """Where the database's schema stands against this release (read only)."""
    with _engine(uri_or_engine) as engine, engine.connect() as conn:
        return _status(conn, ScriptDirectory.from_config(alembic_config()))


def require_usable(engine: Engine) -> SchemaStatus:
    """For a service that may not migrate: fail now, with what to do, rather than on every request."""
    status = schema_status(engine)
    if not status.usable:
        raise SchemaMismatch(status)
    if status.state is SchemaState.NEWER_COMPATIBLE:
        log.warning("%s", status.describe())
    return status


def _take_upgrade_lock(conn: Connection) -> None:
    """The session-level advisory lock of "modelyard schema upgrade" on PostgreSQL, asked for again every
    LOCK_POLL_SECONDS rather than waited for: a session blocked in pg_advisory_lock is inside a
    statement, which a CREATE INDEX CONCURRENTLY of the upgrade holding the lock waits for (a deadlock
    when several workers start at once); between two tries this one holds no transaction."""
    while True:
        taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}).scalar()
        conn.commit()
        if taken:
            return
        time.sleep(LOCK_POLL_SECONDS)


def upgrade(uri_or_engine: str | Engine, revision: str = "heads") -> SchemaStatus:
    """Upgrade to `revision` (default: newest); returns where the schema stands afterwards.

    A database already there is left untouched, and so is one a newer release migrated that says this
    release can use it; one this release cannot use raises `SchemaMismatch`.
    """
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    with _engine(uri_or_engine) as engine, engine.connect() as conn, unbounded(conn):
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            _take_upgrade_lock(conn)
        else:
            conn.begin()  # held across every revision; Alembic then opens none of its own
        try:
            before = _status(conn, script)
            if before.state not in (SchemaState.BEHIND, SchemaState.CURRENT):
                if not before.usable:
                    raise SchemaMismatch(before)
                log.warning("%s", before.describe())
                return before
            if postgres:
                # Alembic's own transaction from here (not one it would treat as the caller's), so a
                # migration's autocommit block (CREATE INDEX CONCURRENTLY, a batched backfill) can
                # commit what came before it and begin again after.
                conn.commit()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            _record_oldest_compatible(conn, script)
            after = _status(conn, script)
            conn.commit()
            return after
        finally:
            if postgres:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                conn.commit()
            elif conn.in_transaction():
                conn.rollback()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
