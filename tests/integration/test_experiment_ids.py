"""Each params/tags/latest_metrics row carries its run's experiment_id on PostgreSQL, and each
params/tags row its run's start_time (`store/sql/experiment_ids`): set by a trigger on every write path,
and filled by migrations 0011 and 0015 for the rows that existed, in batches that leave the runs'
params/tags JSON alone, resumably."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from modelyard.entities import Metric, Param, RunTag
from modelyard.store.sql import experiment_ids, migrate, run_docs
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.tracking import run_import
from modelyard.store.tracking.sql_store import SqlTrackingStore

pytestmark = pytest.mark.postgres


def _mismatches(engine: Engine) -> dict[str, tuple[int, int]]:
    """Per table: (rows, rows whose experiment_id, or start_time (params, tags), is not their run's)."""
    out = {}
    with engine.connect() as conn:
        starts = {c["name"] for c in inspect(conn).get_columns("params")} & {"start_time"}
        for table in experiment_ids.TABLES:
            differs = "t.experiment_id IS DISTINCT FROM r.experiment_id"
            if starts and table in experiment_ids.START_TABLES:
                differs += " OR t.start_time IS DISTINCT FROM r.start_time"
            out[table] = tuple(
                conn.execute(
                    text(f"SELECT count(*), count(*) FILTER (WHERE {differs}) FROM {table} t JOIN runs r USING (run_uuid)")
                ).one()
            )
    return out  # type: ignore[return-value]


@pytest.fixture
def store(postgres_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    migrate.upgrade(postgres_uri)
    engine = create_engine_for(postgres_uri)
    yield SqlTrackingStore(engine, str(tmp_path / "artifacts"))
    engine.dispose()


def test_every_write_path_records_the_runs_experiment(store: SqlTrackingStore) -> None:
    runs = []
    for name in ("a", "b"):
        experiment = store.create_experiment(name)
        run = store.create_run(experiment, "u", 1, [RunTag("t", "1")], f"run-{name}").info.run_id
        store.log_batch(run, [Metric("m", 1.0, 1, 0)], [Param("p", "x")], [RunTag("u", "2")])
        store.log_metric(run, Metric("n", 2.0, 2, 0))  # the one-statement path
        store.log_metric(run, Metric("n", 3.0, 3, 1))  # an upsert of the same row
        store.set_tag(run, RunTag("t", "changed"))
        runs.append(run)
    # The bulk import gives the column (and the runs' params/tags JSON) itself; the triggers skip only
    # its transaction: the plain INSERT below, on the same pooled connection, still gets its trigger.
    # With a role that may set session_replication_role (the tests' superuser) it skips every trigger,
    # the foreign keys' too; without, the triggers run and skip their own work.
    imported = run_import.ImportedRun(
        "imported", params=[Param("b", "2"), Param("a", 'q"1')], tags=[RunTag("Z", "z"), RunTag("a", "")],
        metrics=[Metric("m", 1.0, 5, 0), Metric("m", 2.0, 6, 1)],
    )  # fmt: skip
    experiment_id = store.get_run(runs[0]).info.experiment_id
    url = store.engine.url.render_as_string(hide_password=True)
    run_import.import_runs(store.engine, experiment_id, [imported, imported])
    assert run_import._REPLICA_ALLOWED[url] is True
    run_import._REPLICA_ALLOWED[url] = False
    try:
        run_import.import_runs(store.engine, experiment_id, [imported])
    finally:
        del run_import._REPLICA_ALLOWED[url]
    with store.engine.begin() as conn:  # plain SQL, as another release or an operator would write
        conn.execute(
            text("INSERT INTO params (run_uuid, key, value) VALUES (:r, 'sql', 'v')"), {"r": runs[1]}
        )
    assert _mismatches(store.engine) == {"params": (9, 0), "tags": (15, 0), "latest_metrics": (7, 0)}
    with store.engine.connect() as conn:  # each run's JSON is what the triggers compute from its rows
        stale = f"params_json IS DISTINCT FROM {run_docs.PARAMS_JSON} OR tags_json IS DISTINCT FROM {run_docs.TAGS_JSON}"
        assert conn.execute(text(f"SELECT count(*), count(*) FILTER (WHERE {stale}) FROM runs")).one() == (5, 0)
    assert (
        store.search_runs([store.get_run(runs[1]).info.experiment_id], "params.sql = 'v'")[0].info.run_id
        == runs[1]
    )


def test_the_migration_fills_existing_rows_in_batches_and_resumes(postgres_uri: str) -> None:
    engine = create_engine_for(postgres_uri)
    try:
        migrate.upgrade(engine, "0010")
        runs = 6_000  # more than one batch (BATCH_RUNS)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO experiments (experiment_id, name, lifecycle_stage) VALUES (7, 'e', 'active')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO runs (run_uuid, experiment_id, status, lifecycle_stage, start_time) "
                    "SELECT md5(i::text), CASE WHEN i % 2 = 0 THEN 7 ELSE 0 END, 'FINISHED', 'active', i "
                    "FROM generate_series(1, :n) AS i"
                ),
                {"n": runs},
            )
            for table, columns, values in (
                ("params", "key, value", "'p', 'v' || (i % 3)"),
                ("tags", "key, value", "'t', 'w'"),
                ("latest_metrics", "key, value, timestamp, step, is_nan", "'m', i, 0, 0, false"),
            ):
                conn.execute(
                    text(
                        f"INSERT INTO {table} (run_uuid, {columns}) SELECT md5(i::text), {values} "
                        "FROM generate_series(1, :n) AS i"
                    ),  # fmt: skip
                    {"n": runs},
                )
        before = _documents(engine)
        migrate.upgrade(engine, "0011")
        assert _mismatches(engine) == {table: (runs, 0) for table in experiment_ids.TABLES}
        assert _documents(engine) == before  # neither rewritten (the rows' versions are the same) nor changed

        # An upgrade stopped half-way: rows not filled yet, an index a CONCURRENTLY build left invalid.
        with engine.begin() as conn:
            conn.execute(text("UPDATE tags SET experiment_id = NULL WHERE run_uuid < '8'"))
            conn.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_tags_experiment_key_value'::regclass"
                )
            )
            conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
        migrate.upgrade(engine, "0011")
        assert _mismatches(engine)["tags"] == (runs, 0)
        with engine.connect() as conn:
            assert conn.execute(
                text(
                    "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_tags_experiment_key_value'::regclass"
                )
            ).scalar_one()
        migrate.upgrade(engine)  # and on to the newest revision
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_migration_0015_fills_start_times_in_batches_and_resumes(postgres_uri: str) -> None:
    """Upgrading a database that holds runs (some without a start time) gives every params and tags
    row its run's start_time, leaves the runs' JSON alone, and resumes when stopped half-way."""
    engine = create_engine_for(postgres_uri)
    try:
        migrate.upgrade(engine, "0014")
        runs = 6_000  # more than one batch (BATCH_RUNS)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO runs (run_uuid, experiment_id, status, lifecycle_stage, start_time) "
                    "SELECT md5(i::text), 0, 'FINISHED', 'active', CASE WHEN i % 10 = 0 THEN NULL ELSE i END "
                    "FROM generate_series(1, :n) AS i"
                ),
                {"n": runs},
            )
            for table in ("params", "tags"):
                conn.execute(
                    text(
                        f"INSERT INTO {table} (run_uuid, key, value) SELECT md5(i::text), k, 'v' || (i % 3) "
                        "FROM generate_series(1, :n) AS i CROSS JOIN (VALUES ('a'), ('b')) AS keys(k)"
                    ),
                    {"n": runs},
                )
        before = _documents(engine)
        migrate.upgrade(engine, "0015")
        assert _mismatches(engine)["params"] == (2 * runs, 0) and _mismatches(engine)["tags"] == (2 * runs, 0)
        assert _documents(engine) == before
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM params WHERE start_time IS NULL")).scalar() == runs // 5

        # Stopped half-way: rows not filled yet, an index a CONCURRENTLY build left invalid.
        index = "idx_params_experiment_key_value_start"
        with engine.begin() as conn:
            conn.execute(text("UPDATE params SET start_time = NULL WHERE run_uuid < '8'"))
            conn.execute(text(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{index}'::regclass"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0014'"))
        migrate.upgrade(engine, "0015")
        assert _mismatches(engine)["params"] == (2 * runs, 0)
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{index}'::regclass")).scalar_one()
            old = conn.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_params_experiment_key_value'"))
            assert old.scalar() == 0
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def _documents(engine: Engine) -> dict[str, tuple[str, str | None, str | None]]:
    """Each run's row version and its params/tags JSON."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT run_uuid, xmin::text, params_json, tags_json FROM runs"))
        return {row[0]: (row[1], row[2], row[3]) for row in rows}
