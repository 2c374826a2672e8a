"""Values the database refuses are the request's fault: a 400 in MLflow's shape, nothing written.

PostgreSQL text cannot hold a NUL byte; psycopg refuses such a parameter before sending it. Before this
was mapped, every such write was a 500 INTERNAL_ERROR, which the mlflow client retries for minutes.
Runs against the real tracking service under gunicorn on PostgreSQL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from tests.conftest import SharedServer

API = "/api/2.0/mlflow"


def call(base: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}{API}/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def base(shared_postgres_server: SharedServer) -> str:
    """The session's shared tracking service on PostgreSQL."""
    return shared_postgres_server.url


@pytest.fixture
def experiment_id(base: str) -> str:
    """An experiment of this test's own (the server is shared)."""
    status, created = call(base, "experiments/create", {"name": f"nul-{uuid.uuid4().hex}"})
    assert status == 200, created
    return str(created["experiment_id"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("runs/log-parameter", {"key": "p", "value": "a\x00b"}),
        ("runs/set-tag", {"key": "t", "value": "a\x00b"}),
        ("runs/log-batch", {"params": [{"key": "q", "value": "x\x00"}]}),
        (
            "runs/log-batch",
            {
                "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}],
                "tags": [{"key": "u", "value": "x\x00"}],
            },
        ),
    ],
)
def test_nul_byte_in_a_run_write_is_a_400_and_writes_nothing(
    base: str, experiment_id: str, path: str, body: dict[str, Any]
) -> None:
    status, created = call(base, "runs/create", {"experiment_id": experiment_id})
    assert status == 200, created
    run_id = created["run"]["info"]["run_id"]

    status, answer = call(base, path, {"run_id": run_id, **body})
    assert status == 400, answer
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "NUL" in answer["message"], answer

    status, got = call(base, f"runs/get?run_id={run_id}")
    assert status == 200, got
    data = got["run"]["data"]
    assert "params" not in data and "metrics" not in data, data
    assert [t["key"] for t in data.get("tags", [])] == ["mlflow.runName"], data


def test_nul_byte_in_an_experiment_name_is_a_400(base: str) -> None:
    status, answer = call(base, "experiments/create", {"name": "bad\x00name"})
    assert status == 400, answer
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"


def test_nul_byte_in_a_search_filter_is_a_400(base: str, experiment_id: str) -> None:
    # The search page runs on the driver's cursor (run_json), not through SQLAlchemy's execute: its
    # errors must still reach the service as SQLAlchemy's, or this is a 500.
    status, answer = call(
        base,
        "runs/search",
        {"experiment_ids": [experiment_id], "filter": "params.p = 'a\x00b'", "order_by": ["metrics.m"]},
    )
    assert status == 400, answer
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "NUL" in answer["message"], answer
    status, answer = call(base, "runs/search", {"experiment_ids": [experiment_id], "filter": "params.p = 'ab'"})
    assert status == 200 and answer == {}, answer
