"""A database migrated by a newer release, met by this one (a rollback), and one no release wrote.

A newer release's upgrade leaves exactly two things this release can see: an `alembic_version` it does
not know, and the `schema_info` row naming the oldest revision that can use the schema. The tests set
those two, on both backends, and run this release's real code paths: `upgrade`, the CLI, and a
gunicorn-served tracking service that may not migrate.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, text
from tests.support.services import start_service

from modelyard.devstack.process import StartupError
from modelyard.devstack.services import TRACKING
from modelyard.store.sql import migrate
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import SchemaMismatch, SchemaState

CLI = [sys.executable, "-m", "modelyard.cli"]


@pytest.fixture
def engine(db_uri: str) -> Iterator[Engine]:
    eng = create_engine_for(db_uri)
    yield eng
    eng.dispose()


def _as_if_a_newer_release_migrated(engine: Engine, oldest_compatible: str | None) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        if oldest_compatible is None:
            conn.execute(text("DROP TABLE schema_info"))
        else:
            conn.execute(text("UPDATE schema_info SET value = :v"), {"v": oldest_compatible})


def _version(engine: Engine) -> str | None:
    return migrate.current_revision(engine)


def test_an_upgrade_records_which_releases_can_use_the_schema(engine: Engine) -> None:
    status = migrate.upgrade(engine)
    assert status.state is SchemaState.CURRENT and status.revision == migrate.head_revision()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, value FROM schema_info")).all()
    assert [tuple(r) for r in rows] == [(migrate.OLDEST_COMPATIBLE_KEY, "0001")]


def test_an_upgrade_that_stops_short_records_nothing_and_the_next_one_does(engine: Engine) -> None:
    migrate.upgrade(engine, "0005")
    status = migrate.schema_status(engine)
    assert (status.state, status.revision) == (SchemaState.BEHIND, "0005")
    with pytest.raises(SchemaMismatch, match="modelyard db upgrade"):
        migrate.require_usable(engine)
    assert migrate.upgrade(engine).state is SchemaState.CURRENT
    migrate.require_usable(engine)


def test_a_newer_schema_that_accepts_this_release_is_used_as_it_is(engine: Engine) -> None:
    _as_if_a_newer_release_migrated(engine, oldest_compatible=migrate.head_revision())
    status = migrate.upgrade(engine)
    assert status.state is SchemaState.NEWER_COMPATIBLE and status.usable
    assert _version(engine) == "0099"  # not touched
    assert migrate.require_usable(engine).state is SchemaState.NEWER_COMPATIBLE
    assert "newer than this release" in status.describe()


def test_a_newer_schema_that_needs_a_newer_release_is_refused_untouched(engine: Engine) -> None:
    _as_if_a_newer_release_migrated(engine, oldest_compatible="0098")
    with pytest.raises(SchemaMismatch, match="0098") as raised:
        migrate.upgrade(engine)
    assert raised.value.status.state is SchemaState.NEWER_INCOMPATIBLE
    assert _version(engine) == "0099"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM schema_info")).scalar_one() == "0098"


def test_a_database_no_release_wrote_is_refused_with_a_message(engine: Engine) -> None:
    # What pointing modelyard at MLflow's database looks like: a revision it does not know, no schema_info.
    _as_if_a_newer_release_migrated(engine, oldest_compatible=None)
    with pytest.raises(SchemaMismatch, match="MLflow's") as raised:
        migrate.upgrade(engine)
    assert raised.value.status.state is SchemaState.FOREIGN
    assert _version(engine) == "0099"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_the_cli_upgrade_and_status_say_what_they_found(db_uri: str, engine: Engine) -> None:
    behind = _cli("db", "status", db_uri)
    assert behind.returncode == 1 and "empty" in behind.stdout, behind.stderr
    assert _cli("db", "upgrade", db_uri).returncode == 0
    current = _cli("db", "status", db_uri)
    assert current.returncode == 0 and "the newest this release knows" in current.stdout

    _as_if_a_newer_release_migrated(engine, oldest_compatible="0006")
    rollback = _cli("db", "upgrade", db_uri)  # what the chart's migration Job runs with the older image
    assert rollback.returncode == 0, rollback.stderr
    assert "newer than this release" in rollback.stdout
    assert _cli("db", "status", db_uri).returncode == 0

    _as_if_a_newer_release_migrated(engine, oldest_compatible="0098")
    refused = _cli("db", "upgrade", db_uri)
    assert refused.returncode == 1
    assert "Error (INVALID_STATE)" in refused.stderr and "0098" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _cli("db", "status", db_uri).returncode == 1


@pytest.mark.postgres
def test_a_service_that_may_not_migrate_refuses_a_schema_behind_it(postgres_uri: str, tmp_path: Path) -> None:
    migrate.upgrade(postgres_uri, "0005")
    env = {"MODELYARD_BACKEND_STORE_URI": postgres_uri, "MODELYARD_AUTO_MIGRATE": "false",
           "MODELYARD_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts")}  # fmt: skip
    with pytest.raises(StartupError) as raised:
        with start_service(TRACKING, tmp_path, env=env, workers=1, timeout=30):
            pass
    assert "modelyard db upgrade" in (tmp_path / "tracking.log").read_text(), raised.value


@pytest.mark.postgres
def test_a_service_runs_on_a_newer_schema_that_accepts_it(postgres_uri: str, tmp_path: Path) -> None:
    engine = create_engine_for(postgres_uri)
    try:
        _as_if_a_newer_release_migrated(engine, oldest_compatible="0005")
    finally:
        engine.dispose()
    env = {"MODELYARD_BACKEND_STORE_URI": postgres_uri, "MODELYARD_AUTO_MIGRATE": "true",
           "MODELYARD_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts")}  # fmt: skip
    with start_service(TRACKING, tmp_path, env=env, workers=2) as service:
        created = requests.post(
            f"{service.url}/api/2.0/mlflow/experiments/create", json={"name": "after-rollback"}, timeout=10
        )
        assert created.status_code == 200, created.text
        run = requests.post(
            f"{service.url}/api/2.0/mlflow/runs/create",
            json={"experiment_id": created.json()["experiment_id"]},
            timeout=10,
        )
        assert run.status_code == 200, run.text
    assert "newer than this release" in (tmp_path / "tracking.log").read_text()
