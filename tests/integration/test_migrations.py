"""The Alembic migrations against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for


@pytest.fixture
def engine(db_uri: str) -> Engine:
    eng = create_engine_for(db_uri)
    yield eng  # type: ignore[misc]
    eng.dispose()


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": False,
                "include_object": migrate.include_object_for(conn.dialect.name),
            },
        )
        return list(compare_metadata(context, migrate.target_metadata()))


def test_migrations_and_orm_agree(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert _diff(engine) == []


def test_empty_database_differs_from_the_orm(engine: Engine) -> None:
    # The comparison above can fail: an unmigrated database shows every table as missing.
    diff = _diff(engine)
    added = {d[1].name for d in diff if isinstance(d, tuple) and d[0] == "add_table"}  # type: ignore[index,attr-defined]
    assert {"experiments", "runs", "metrics", "latest_metrics"} <= added


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT experiment_id, name, creation_time FROM experiments")).all()
    tables_before = set(inspect(engine).get_table_names())
    migrate.upgrade(engine)
    with engine.connect() as conn:
        after = conn.execute(text("SELECT experiment_id, name, creation_time FROM experiments")).all()
    assert before == after
    assert set(inspect(engine).get_table_names()) == tables_before
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.is_up_to_date(engine)


def test_default_experiment_is_created(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT experiment_id, name, lifecycle_stage FROM experiments")).all()
    assert [tuple(r) for r in rows] == [(0, "Default", "active")]


def test_upgrade_accepts_a_uri(db_uri: str) -> None:
    migrate.upgrade(db_uri)
    engine = create_engine_for(db_uri)
    try:
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def _upgrade_at_once(uri: str, callers: int) -> list[BaseException]:
    """`callers` threads, each with its own engine, call upgrade at the same moment; their errors."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(callers)

    def worker() -> None:
        engine = create_engine_for(uri)
        try:
            barrier.wait()
            migrate.upgrade(engine)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_serialise(postgres_uri: str) -> None:
    """Several workers starting at once all call upgrade; the advisory lock makes that safe."""
    assert _upgrade_at_once(postgres_uri, 4) == []
    engine = create_engine_for(postgres_uri)
    try:
        assert _diff(engine) == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM experiments")).scalar_one() == 1
    finally:
        engine.dispose()


def test_concurrent_upgrades_of_a_new_sqlite_file_serialise(sqlite_uri: str) -> None:
    """Gunicorn workers booting on a new SQLite file all upgrade it at once. Alembic commits after
    each revision on SQLite, so a caller that read the version between two commits used to re-run the
    next revision ("table ... already exists"); the upgrade is now one BEGIN IMMEDIATE transaction."""
    for _round in range(3):
        Path(sqlite_uri.removeprefix("sqlite:///")).unlink(missing_ok=True)
        assert _upgrade_at_once(sqlite_uri, 6) == []
        engine = create_engine_for(sqlite_uri)
        try:
            assert migrate.is_up_to_date(engine)
            assert _diff(engine) == []
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_what_alembic_does_not_compare_comes_with_migrations_and_the_orm(postgres_server) -> None:  # type: ignore[no-untyped-def]
    """Statistics objects, triggers and their functions are outside SQLAlchemy's model, and Alembic
    skips expression indexes and the ones it cannot compare: both ways of building the schema must
    create the same ones (store/sql/run_docs, store/sql/experiment_ids, schema's statistics)."""
    from modelyard.store.sql.schema import PARAMS_STATISTICS, TAGS_STATISTICS, Base

    queries = {
        "statistics": "SELECT stxname, pg_get_statisticsobjdef_expressions(oid)::text FROM pg_statistic_ext "
        "ORDER BY stxname",
        "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname",
        "functions": "SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'modelyard_%' ORDER BY proname",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "AND tablename <> 'alembic_version' ORDER BY indexname",
    }
    found = {}
    for name, build in (("t_extras_migrated", migrate.upgrade), ("t_extras_orm", Base.metadata.create_all)):
        engine = create_engine_for(postgres_server.create_database(name))
        try:
            build(engine)
            with engine.connect() as conn:
                # Whitespace aside (a migration freezes its own copy of a function's text).
                found[name] = {
                    key: [tuple(" ".join(str(v).split()) for v in row) for row in conn.execute(text(q))]
                    for key, q in queries.items()
                }
        finally:
            engine.dispose()
            postgres_server.drop_database(name)
    migrated, orm = found["t_extras_migrated"], found["t_extras_orm"]
    assert [name for name, _ in migrated["statistics"]] == sorted([PARAMS_STATISTICS, TAGS_STATISTICS])
    # The bulk import may skip every trigger (store/tracking/run_import.py) and writes what these do
    # itself: a trigger added here must be written there too.
    assert [name for name, _ in migrated["triggers"]] == sorted(
        [f"{table}_json_{event}" for table in ("params", "tags") for event in ("delete", "insert", "update")]
        + [f"{table}_experiment_id" for table in ("params", "tags", "latest_metrics")]
    )
    assert [name for name, _ in migrated["functions"]] == [
        "modelyard_refresh_params_json",
        "modelyard_refresh_tags_json",
        "modelyard_set_experiment_id",
        "modelyard_set_experiment_id_start_time",
    ]
    indexes = {name for name, _ in migrated["indexes"]}
    assert "idx_runs_experiment_stage_order" in indexes
    assert {"idx_runs_experiment_stage_name", "idx_runs_experiment_stage_end"} <= indexes
    assert {"idx_runs_experiment_stage_status", "idx_runs_experiment_stage_user"} <= indexes
    assert {"idx_params_experiment_key_value_start", "idx_tags_experiment_key_value_start"} <= indexes
    assert {"idx_params_experiment_key_start_value", "idx_tags_experiment_key_start_value"} <= indexes
    assert not indexes & {"idx_params_experiment_key_value", "idx_tags_experiment_key_value"}
    assert not indexes & {"idx_params_key_value_md5", "idx_params_key_run", "idx_latest_metrics_key_value"}
    for key in queries:
        assert set(migrated[key]) ^ set(orm[key]) == set(), key
