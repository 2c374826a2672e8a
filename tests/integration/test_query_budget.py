"""Bounded query cost: a statement over its time budget is cancelled (and leaves no backend running)
and answered 400, never a 503 the mlflow client would retry; a PostgreSQL restart costs no request."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import requests
from sqlalchemy import text

from modelyard import errors
from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import wait_until
from modelyard.exceptions import ModelyardException
from modelyard.store.sql.engine import create_engine_for

# A query that runs for seconds on SQLite: counts to 10^9 in a recursive CTE.
_SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c"
)


@contextmanager
def runs_locked(postgres_uri: str) -> Iterator[None]:
    """The runs table locked by another session for the block: a search waits on it."""
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(postgres_uri) as conn:
            conn.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def test_a_slow_postgres_statement_is_cancelled_and_leaves_no_backend(postgres_uri: str) -> None:
    engine = create_engine_for(postgres_uri, statement_timeout=1)
    marker = f"slow-{uuid.uuid4().hex}"
    with engine.connect() as conn, pytest.raises(ModelyardException) as exc_info:
        conn.execute(text(f"SELECT pg_sleep(30) /* {marker} */"))
    assert exc_info.value.error_code == errors.BAD_REQUEST and exc_info.value.http_status == 400
    assert "MODELYARD_DB_STATEMENT_TIMEOUT" in exc_info.value.message
    with psycopg.connect(postgres_uri, autocommit=True) as admin:
        running = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
            (f"%{marker}%",),
        ).fetchone()
    assert running == (0,)
    engine.dispose()


def test_a_slow_sqlite_request_is_interrupted(sqlite_uri: str) -> None:
    engine = create_engine_for(sqlite_uri, statement_timeout=1)
    with engine.connect() as conn, pytest.raises(ModelyardException) as exc_info:
        conn.execute(text(_SLOW_SQLITE))
    assert exc_info.value.error_code == errors.BAD_REQUEST
    with engine.connect() as conn:  # the next checkout has a fresh budget
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_a_search_over_budget_is_a_400_from_the_server(postgres_uri: str, tracking_server) -> None:
    """A search stuck behind a lock for longer than its budget: cancelled, answered 400 (the
    mlflow client does not retry it), and the server serves the next request."""
    url = tracking_server(postgres_uri, env={"MODELYARD_DB_STATEMENT_TIMEOUT": "1"}, workers=1)
    search = {"experiment_ids": ["0"], "filter": "params.lr = '0.1'"}
    assert requests.post(f"{url}/api/2.0/mlflow/runs/search", json=search, timeout=30).status_code == 200
    with runs_locked(postgres_uri):
        response = requests.post(f"{url}/api/2.0/mlflow/runs/search", json=search, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == errors.BAD_REQUEST
    assert "time budget" in response.json()["message"]
    assert requests.post(f"{url}/api/2.0/mlflow/runs/search", json=search, timeout=30).status_code == 200


def test_a_search_whose_client_went_away_is_cancelled(postgres_uri: str, tracking_server) -> None:
    """The client gives up after 1 s; the search stuck behind a lock (whose budget is 60 s) is
    cancelled in the database then, not when its budget runs out."""
    url = tracking_server(postgres_uri, env={"MODELYARD_DB_STATEMENT_TIMEOUT": "60"}, workers=1)
    marker = f"gone_{uuid.uuid4().hex[:8]}"
    search = {"experiment_ids": ["0"], "filter": f"params.{marker} = 'x'"}
    with runs_locked(postgres_uri):
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(f"{url}/api/2.0/mlflow/runs/search", json=search, timeout=1)

        def waiting_searches() -> int:
            with psycopg.connect(postgres_uri, autocommit=True) as admin:
                row = admin.execute(  # the search's values are bound: find it by what it waits on
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'active' AND wait_event_type = 'Lock'"
                ).fetchone()
            return int(row[0]) if row else 0

        wait_until(lambda: waiting_searches() == 0, timeout=20, what="the abandoned search to be cancelled")


def test_the_first_request_after_a_postgres_restart_succeeds(postgres_server: PostgresServer, tracking_server) -> None:
    """Both pools (sync: experiments; async: log-metric) drop the connections the restart closed
    instead of failing a request with them; nothing acknowledged before the restart is lost."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    uri = postgres_server.create_database(name)
    try:
        url = tracking_server(uri, workers=1)
        api = f"{url}/api/2.0/mlflow"
        exp = requests.post(f"{api}/experiments/create", json={"name": "restart"}, timeout=30).json()
        run = requests.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"]}, timeout=30).json()
        run_id = run["run"]["info"]["run_id"]
        metric = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
        assert requests.post(f"{api}/runs/log-metric", json=metric, timeout=30).status_code == 200
        postgres_server.stop()
        postgres_server.start()
        started = time.monotonic()
        got = requests.get(f"{api}/experiments/get", params={"experiment_id": exp["experiment_id"]}, timeout=30)
        assert got.status_code == 200, got.text
        metric2 = {**metric, "value": 2.0, "step": 1}
        assert requests.post(f"{api}/runs/log-metric", json=metric2, timeout=30).status_code == 200
        history = requests.get(f"{api}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}, timeout=30)
        assert sorted(m["value"] for m in history.json()["metrics"]) == [1.0, 2.0]
        assert time.monotonic() - started < 10
    finally:
        postgres_server.drop_database(name)
