"""The real `mlflow` client against a tracking server under gunicorn, on PostgreSQL and on SQLite.

Every compat test module runs once per backend (`[sqlite]`, `[postgres]`) against the session's shared
tracking server of that backend (tests/conftest.py). Tests isolate themselves by experiment and model
name, not by server, so the suite stays fast.

`MODELYARD_COMPAT_SERVER=mlflow` runs the same tests against MLflow's own server instead: the tests
encode MLflow's behaviour, and this is how we check that they do.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import SharedServer
from tests.support.mlflow_client import mlflow_pointed_at
from tests.support.mlflow_processes import mlflow_tracking_server
from tests.support.outcome import test_failed

from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import (
    log_tail,
)

REFERENCE = os.environ.get("MODELYARD_COMPAT_SERVER", "modelyard") == "mlflow"


@dataclass(frozen=True)
class CompatServer:
    url: str
    log_path: Path


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def compat_server(request: pytest.FixtureRequest) -> Iterator[CompatServer]:
    """The session's shared tracking server of the parametrized backend (tests/conftest.py's
    `shared_sqlite_server` / `shared_postgres_server`, which other suites' tests use too); with
    MODELYARD_COMPAT_SERVER=mlflow, MLflow's own server on a fresh database. Session-scoped, so a
    compat module needs no process of its own (see `pytest_collection_modifyitems`)."""
    if not REFERENCE:
        shared: SharedServer = request.getfixturevalue(f"shared_{request.param}_server")
        yield CompatServer(shared.url, shared.log_path)
        return
    workdir = Path(tempfile.mkdtemp(prefix="modelyard-compat-"))
    database: str | None = None
    if request.param == "postgres":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        database = f"compat_{uuid.uuid4().hex[:12]}"
        backend = postgres.create_database(database)
    else:
        backend = f"sqlite:///{workdir / 'modelyard.db'}"
    try:
        with mlflow_tracking_server(workdir, backend) as url:
            yield CompatServer(url, workdir / "mlflow-server.log")
    finally:
        if database is not None:
            postgres.drop_database(database)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def tracking_uri(compat_server: CompatServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """Points the mlflow client (env and its cached global) at the server; ends stray runs after.

    A failing test gets the tail of the server log in its report.
    """
    try:
        with mlflow_pointed_at(compat_server.url) as uri:
            yield uri
    finally:
        if test_failed(request):
            sys.stdout.write(log_tail(compat_server.log_path, 150) + "\n")


@pytest.fixture
def client(tracking_uri: str):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture
def experiment_name(request: pytest.FixtureRequest) -> str:
    """Unique per test, so tests sharing a server never see each other's runs."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def allow_mlflow_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow 3.17 refuses to deserialize any model (its own skops models included) unless this is
    true; tests that load models with mlflow set it, as a user would."""
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


@pytest.fixture
def frame():  # type: ignore[no-untyped-def]
    """A small two-column frame (floats and small ints) for models to fit and predict."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    return pd.DataFrame({"a": rng.normal(size=40), "b": rng.integers(0, 10, size=40)})
