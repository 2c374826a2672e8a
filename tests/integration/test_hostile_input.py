"""The payloads of issue #15's "Why" list, sent to a real tracking service (gunicorn) on SQLite and on
PostgreSQL: every one gets a 4xx in MLflow's error shape (never a 500, never a retryable 503), the
answer says which limit was hit where there is one, and the service keeps serving."""

from __future__ import annotations

from json import dumps
from typing import Any

import pytest
import requests

API = "/api/2.0/mlflow"
#: Lower than the default so the oversized body stays small in the test.
BODY_LIMIT = 200_000


def send(url: str, method: str, path: str, *, body: bytes | None = None, params: Any = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return requests.request(method, f"{url}{API}/{path}", data=body, params=params, headers=headers, timeout=60)


def post(url: str, path: str, raw: str | bytes) -> requests.Response:
    return send(url, "POST", path, body=raw.encode() if isinstance(raw, str) else raw)


def assert_refused(response: requests.Response, *fragments: str, code: str | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    answer = response.json()
    assert set(answer) >= {"error_code", "message"}, answer
    if code is not None:
        assert answer["error_code"] == code, answer
    for fragment in fragments:
        assert fragment in answer["message"], answer["message"][:500]


def search(url: str, **body: Any) -> requests.Response:
    return post(url, "runs/search", dumps({"experiment_ids": ["0"], **body}))


@pytest.fixture
def url(tracking_server: Any, db_uri: str) -> str:
    return str(tracking_server(db_uri, env={"MODELYARD_MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT)}, workers=1))


def test_hostile_payloads_are_4xx_in_mlflow_shape(url: str) -> None:
    created = post(url, "runs/create", '{"experiment_id": "0"}')
    assert created.status_code == 200, created.text
    run_id = created.json()["run"]["info"]["run_id"]

    # JSON nested deeper than the parser goes (the old fallback parser overflowed at ~1,500).
    for depth in (1_500, 100_000):
        assert_refused(post(url, "experiments/create", '{"name": ' + "[" * depth + "]" * depth + "}"))
        assert_refused(post(url, "runs/log-batch", '{"run_id": "x", "m": NaN, "v": ' + "[" * depth + "]" * depth + "}"))
    # Lone surrogates, in every kind of string field.
    assert_refused(post(url, "experiments/create", '{"name": "\\ud800"}'))
    assert_refused(post(url, "runs/create", '{"experiment_id": "0", "run_name": "a\\udc00"}'))
    assert_refused(post(url, "runs/set-tag", dumps({"run_id": run_id, "key": "t", "value": "\ud800x"})))
    # A body over the size limit, announced and streamed.
    big = '{"name": "' + "x" * BODY_LIMIT + '"}'
    assert_refused(post(url, "experiments/create", big), str(BODY_LIMIT), "MODELYARD_MAX_REQUEST_BODY_BYTES")
    chunked = send(url, "POST", "experiments/create", body=iter([big[:1000].encode(), big[1000:].encode()]))  # type: ignore[arg-type]
    assert_refused(chunked, "MODELYARD_MAX_REQUEST_BODY_BYTES")
    # Integers beyond 64 bits, as numbers and as proto-JSON strings.
    assert_refused(post(url, "runs/create", dumps({"experiment_id": "0", "start_time": 2**64})), "start_time")
    assert_refused(post(url, "runs/create", dumps({"experiment_id": "0", "start_time": str(2**70)})), "start_time")
    assert_refused(post(url, "runs/update", dumps({"run_id": run_id, "end_time": 2**64})), "end_time")
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 2**64}
    assert_refused(post(url, "runs/log-metric", dumps(metric)), "timestamp")
    assert_refused(send(url, "GET", "metrics/get-history", params={"run_id": run_id, "metric_key": "m", "max_results": str(2**70)}))
    assert_refused(search(url, max_results=2**70))
    # Filters: parentheses, ORs, IN lists, length; order_by keys. Each names its limit.
    limit = "INVALID_PARAMETER_VALUE"
    assert_refused(search(url, filter="(" * 5_000 + "metrics.a > 1" + ")" * 5_000), "MODELYARD_SEARCH_MAX_DEPTH", code=limit)
    assert_refused(search(url, filter=" OR ".join(["metrics.a > 1"] * 2_000)), "MODELYARD_SEARCH_MAX_TERMS", code=limit)
    values = ", ".join(f"'{i}'" for i in range(15_000))
    assert_refused(search(url, filter=f"params.p IN ({values})"), "MODELYARD_SEARCH_MAX_FILTER_LENGTH", code=limit)
    values = ", ".join(str(i) for i in range(6_000))
    assert_refused(search(url, filter=f"metrics.m IN ({values})"), "MODELYARD_SEARCH_MAX_IN_VALUES", code=limit)
    assert_refused(search(url, order_by=[f"metrics.m{i}" for i in range(1_000)]), "MODELYARD_SEARCH_MAX_ORDER_BY", code=limit)
    experiments_order = post(url, "experiments/search", dumps({"order_by": ["name"] * 1_000}))
    assert_refused(experiments_order, "MODELYARD_SEARCH_MAX_ORDER_BY")
    assert_refused(send(url, "GET", "registered-models/search", params={"filter": "(" * 500 + "name = 'a'" + ")" * 500}), "MODELYARD_SEARCH_MAX_DEPTH")

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
