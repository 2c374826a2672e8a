"""log-metric and metric-only log-batch on PostgreSQL go through the worker's async pool
(`store/tracking/async_writes.py`): the event loop awaits the database and never blocks on it.

Every test runs the real tracking service under gunicorn with ONE worker, so every request below lands
in the same process and event loop. A write is held on the database by another session's row lock on
the run's latest_metrics row (the statement's upsert waits for it); PostgreSQL's own view
(pg_stat_activity) says when it is waiting, so nothing here depends on timing.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

API = "/api/2.0/mlflow"


def call(
    base: str, path: str, body: dict[str, Any] | None = None, query: str = ""
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    url = f"{base}{API}/{path}" + (f"?{query}" if query else "")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def new_run(base: str) -> str:
    status, answer = call(base, "runs/create", {"experiment_id": "0"})
    assert status == 200, answer
    return str(answer["run"]["info"]["run_id"])


def metric(run_id: str, step: int, key: str = "loss", value: float = 0.5) -> dict[str, Any]:
    return {"run_id": run_id, "key": key, "value": value, "timestamp": 1_700_000_000_000 + step, "step": step}


def history(base: str, run_id: str, key: str = "loss") -> list[tuple[int, float]]:
    status, answer = call(base, "metrics/get-history", query=f"run_id={run_id}&metric_key={key}")
    assert status == 200, answer
    return sorted((m["step"], m["value"]) for m in answer.get("metrics", []))


def _lock_waiters(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def stuck_write(
    base: str, postgres_uri: str, run_id: str, step: int
) -> Iterator[Future[tuple[int, dict[str, Any]]]]:
    """A log-metric to `run_id` (key "loss", which must have a point already) that is waiting on a row
    lock held by another session; the lock is released when the block ends."""
    with psycopg.connect(postgres_uri) as locker, psycopg.connect(postgres_uri, autocommit=True) as watcher:
        locked = locker.execute(
            "SELECT 1 FROM latest_metrics WHERE run_uuid = %s AND key = 'loss' FOR UPDATE", (run_id,)
        ).fetchall()
        assert locked == [(1,)]
        with ThreadPoolExecutor(1) as threads:
            write = threads.submit(call, base, "runs/log-metric", metric(run_id, step))
            deadline = time.monotonic() + 60
            while _lock_waiters(watcher) < 1:
                assert not write.done(), write.result()
                assert time.monotonic() < deadline, "the write never reached the lock"
                time.sleep(0.02)
            try:
                yield write
            finally:
                locker.rollback()


@pytest.fixture
def one_worker(tracking_server: Any, postgres_uri: str) -> str:
    return str(tracking_server(postgres_uri, workers=1))


def test_a_write_stuck_on_the_database_leaves_the_worker_answering(
    one_worker: str, postgres_uri: str
) -> None:
    base = one_worker
    stuck_run, other_run = new_run(base), new_run(base)
    assert call(base, "runs/log-metric", metric(stuck_run, 0)) == (200, {})

    with stuck_write(base, postgres_uri, stuck_run, 1) as stuck:
        # The same worker answers a read, a log-metric and a metric-only log-batch to another run,
        # and a write to the stuck run's other key, while the first write still waits.
        status, answer = call(base, "runs/get", query=f"run_id={stuck_run}")
        assert status == 200, answer
        assert call(base, "runs/log-metric", metric(other_run, 0)) == (200, {})
        batch = {"run_id": other_run, "metrics": [metric(other_run, s, key="acc") for s in range(3)]}
        assert call(base, "runs/log-batch", batch) == (200, {})
        assert call(base, "runs/log-metric", metric(stuck_run, 0, key="lr")) == (200, {})
        assert not stuck.done()
    assert stuck.result(timeout=60) == (200, {})

    assert history(base, stuck_run) == [(0, 0.5), (1, 0.5)]
    assert history(base, other_run) == [(0, 0.5)]
    assert history(base, other_run, "acc") == [(0, 0.5), (1, 0.5), (2, 0.5)]


def test_an_exhausted_async_pool_is_a_503_and_writes_nothing(tracking_server: Any, postgres_uri: str) -> None:
    base = str(
        tracking_server(
            postgres_uri,
            workers=1,
            env={"MODELYARD_DB_ASYNC_POOL_SIZE": "1", "MODELYARD_DB_POOL_TIMEOUT": "1"},
        )
    )
    stuck_run, other_run = new_run(base), new_run(base)
    assert call(base, "runs/log-metric", metric(stuck_run, 0)) == (200, {})

    with stuck_write(base, postgres_uri, stuck_run, 1) as stuck:
        status, answer = call(base, "runs/log-metric", metric(other_run, 0))
        assert status == 503, answer
        assert answer["error_code"] == "TEMPORARILY_UNAVAILABLE"
        # Requests served by the sync pool are not affected.
        assert call(base, "runs/get", query=f"run_id={other_run}")[0] == 200
        assert not stuck.done()
    assert stuck.result(timeout=60) == (200, {})

    assert history(base, other_run) == []
    assert call(base, "runs/log-metric", metric(other_run, 0)) == (200, {})  # the retry succeeds
    assert history(base, other_run) == [(0, 0.5)]


def test_mlflow_answers_on_the_async_path(one_worker: str) -> None:
    base = one_worker
    run_id = new_run(base)
    unknown = "f" * 32

    for path, body in [
        ("runs/log-metric", metric(unknown, 0)),
        ("runs/log-batch", {"run_id": unknown, "metrics": [metric(unknown, 0)]}),
    ]:
        status, answer = call(base, path, body)
        assert (status, answer["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), answer
        assert answer["message"] == f"Run with id={unknown} not found"

    # A NUL byte is refused by psycopg before anything is sent: 400, as on the sync path.
    status, answer = call(base, "runs/log-metric", metric("bad\x00id", 0))
    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), answer
    assert "NUL" in answer["message"]

    # All-or-nothing: one invalid point refuses the whole batch.
    bad_batch = {"run_id": run_id, "metrics": [metric(run_id, 0), {**metric(run_id, 1), "timestamp": -1}]}
    status, answer = call(base, "runs/log-batch", bad_batch)
    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), answer
    assert history(base, run_id) == []

    # Retries are safe: the same point twice is one point.
    for _ in range(2):
        assert call(base, "runs/log-metric", metric(run_id, 0)) == (200, {})
    assert history(base, run_id) == [(0, 0.5)]

    assert call(base, "runs/delete", {"run_id": run_id}) == (200, {})
    for path, body in [
        ("runs/log-metric", metric(run_id, 1)),
        ("runs/log-batch", {"run_id": run_id, "metrics": [metric(run_id, 1)]}),
    ]:
        status, answer = call(base, path, body)
        assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), answer
        assert "must be in the 'active' state. Current state is deleted." in answer["message"]
    assert call(base, "runs/restore", {"run_id": run_id}) == (200, {})
    assert call(base, "runs/log-metric", metric(run_id, 1)) == (200, {})
    assert history(base, run_id) == [(0, 0.5), (1, 0.5)]

    # /metrics still counts these requests under their route templates.
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    counted = {
        (route, status): float(value)
        for route, status, value in re.findall(
            r'^modelyard_http_requests_total\{[^}]*route="([^"]+)"[^}]*status="(\d+)"\} ([0-9.e+]+)$',
            text,
            re.MULTILINE,
        )
    }
    assert counted[(f"{API}/runs/log-metric", "200")] == 3
    assert counted[(f"{API}/runs/log-metric", "404")] == 1
    assert counted[(f"{API}/runs/log-batch", "400")] == 2


def test_a_connection_the_server_ended_costs_no_request(one_worker: str, postgres_uri: str) -> None:
    """The pool looks at an idle connection's socket before reusing it (a restart or a terminated
    backend leaves it readable), so the next write opens a fresh connection instead of failing."""
    base = one_worker
    run_id = new_run(base)
    assert call(base, "runs/log-metric", metric(run_id, 0)) == (200, {})  # the pool holds a connection now
    with psycopg.connect(postgres_uri, autocommit=True) as admin:
        # The async pool's connection: the one whose last statement was the metric write; the
        # timeout makes pg_terminate_backend wait until the backend is gone.
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE '%INSERT INTO metrics%'"
        ).fetchall()
        assert killed == [(True,)]
    assert call(base, "runs/log-metric", metric(run_id, 1)) == (200, {})
    assert history(base, run_id) == [(0, 0.5), (1, 0.5)]


def test_an_unreachable_database_is_a_503_on_both_paths(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from modelyard.devstack.process import free_port
    from modelyard.settings import Settings
    from modelyard.tracking.app import create_app

    settings = Settings(
        backend_store_uri=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
        auto_migrate=False,
        serve_artifacts=False,
        artifacts_destination=str(tmp_path),
    )
    run_id = "a" * 32
    with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as client:
        for path, body in [
            ("runs/log-metric", metric(run_id, 0)),  # async pool
            ("runs/log-batch", {"run_id": run_id, "metrics": [metric(run_id, 0)]}),  # async pool
            ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v"}),  # sync pool, in a thread
        ]:
            response = client.post(f"{API}/{path}", json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
