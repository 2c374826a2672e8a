"""The payloads of issue #15's "Why" list, sent to a real tracking service (gunicorn) on SQLite and on
PostgreSQL: every one gets a 4xx in MLflow's error shape (never a 500, never a retryable 503), the
answer says which limit was hit where there is one, and the service keeps serving."""

from __future__ import annotations

from json import dumps
from typing import Any

import pytest
import requests
from tests.support.hostile import API, LIMITED_BODIES, assert_refused, payloads
from tests.support.hostile import search as search_body


def send(
    url: str, method: str, path: str, *, body: bytes | None = None, params: Any = None
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return requests.request(
        method, f"{url}{API}/{path}", data=body, params=params, headers=headers, timeout=60
    )


def post(url: str, path: str, raw: str | bytes) -> requests.Response:
    return send(url, "POST", path, body=raw.encode() if isinstance(raw, str) else raw)


def search(url: str, **body: Any) -> requests.Response:
    return post(url, "runs/search", search_body(**body))


@pytest.fixture
def url(tracking_server: Any, db_uri: str) -> str:
    return str(tracking_server(db_uri, env=LIMITED_BODIES, workers=1))


def test_hostile_payloads_are_4xx_in_mlflow_shape(url: str) -> None:
    created = post(url, "runs/create", '{"experiment_id": "0"}')
    assert created.status_code == 200, created.text
    for payload in payloads(created.json()["run"]["info"]["run_id"]):
        assert_refused(payload.send(url), payload)
    assert requests.get(f"{url}/health", timeout=30).status_code == 200


def test_searches_at_the_limits_are_answered(url: str) -> None:
    """What the limits allow runs on both backends (SQLite's expression-tree and variable limits,
    PostgreSQL's bind-parameter limit and its planner)."""
    created = post(url, "runs/create", '{"experiment_id": "0"}').json()["run"]["info"]["run_id"]
    post(url, "runs/log-parameter", dumps({"run_id": created, "key": "p", "value": "7"}))
    post(url, "runs/log-metric", dumps({"run_id": created, "key": "m", "value": 1.5, "timestamp": 1}))
    in_list = ", ".join(f"'{i}'" for i in range(5_000))
    ors = " OR ".join(f"params.p = '{i}'" for i in range(200))
    ands = " AND ".join(f"metrics.m > {-i}" if i % 2 else f"params.p != 'x{i}'" for i in range(200))
    many_keys = " AND ".join(f"params.q{i} != 'x'" for i in range(10)) + " OR params.p = '7'"
    for text in (f"params.p IN ({in_list})", ors, ands, many_keys):
        response = search(url, filter=text)
        assert response.status_code == 200, response.text[:500]
        assert [r["info"]["run_id"] for r in response.json().get("runs", [])] == [created], text[:80]
    ordered = search(url, order_by=[f"metrics.m{i}" for i in range(10)])
    assert ordered.status_code == 200, ordered.text[:500]
