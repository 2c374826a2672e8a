"""The tracking REST API in process (the real app and SQL store on SQLite), endpoint by endpoint.

Shapes, codes and statuses are MLflow's: the real mlflow client parses these answers unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.protocol.limits import GET_METRIC_HISTORY_MAX_RESULTS, MAX_METRICS_PER_BATCH
from modelyard.settings import Settings
from modelyard.tracking.app import create_app
from modelyard.version import __version__

API = "/api/2.0/mlflow"


@pytest.fixture
def client(sqlite_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        backend_store_uri=sqlite_uri,
        artifacts_destination=str(tmp_path / "artifacts"),
        serve_artifacts=False,
    )
    # Server errors come back as responses, so a test sees (and fails on) any 500.
    with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as test_client:
        yield test_client


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


def error(response: Any, status: int, code: str, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert body["error_code"] == code, body
    for fragment in fragments:
        assert fragment in body["message"], body
    return body  # type: ignore[no-any-return]


def new_experiment(client: TestClient, name: str = "exp", **extra: Any) -> str:
    return ok(client.post(f"{API}/experiments/create", json={"name": name, **extra}))["experiment_id"]  # type: ignore[no-any-return]


def new_run(client: TestClient, experiment_id: str | None = None, **extra: Any) -> dict[str, Any]:
    experiment_id = experiment_id or new_experiment(client)
    body = {"experiment_id": experiment_id, "start_time": 1700000000000, **extra}
    return ok(client.post(f"{API}/runs/create", json=body))["run"]  # type: ignore[no-any-return]


def get_run(client: TestClient, run_id: str) -> dict[str, Any]:
    return ok(client.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]  # type: ignore[no-any-return]


def run_data(run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    data = run["data"]
    metrics = {m["key"]: m["value"] for m in data.get("metrics", [])}
    params = {p["key"]: p["value"] for p in data.get("params", [])}
    tags = {t["key"]: t["value"] for t in data.get("tags", [])}
    return metrics, params, tags


# --- service endpoints -----------------------------------------------------------------------------
def test_health_and_version_are_plain_text(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.text == "OK"
    version = client.get("/version")
    assert version.status_code == 200 and version.text == __version__


@pytest.mark.parametrize("path", ["/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"])
def test_server_info_answers_the_mlflow_capability_probe(client: TestClient, path: str) -> None:
    info = ok(client.get(path))
    assert info["store_type"] == "SqlStore"
    # Nothing mounted in this app can do multipart, so the client must not try it.
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False
    assert info["workspaces_enabled"] is False


def test_unknown_path_is_a_json_endpoint_not_found(client: TestClient) -> None:
    error(client.get(f"{API}/no-such-thing"), 404, "ENDPOINT_NOT_FOUND", "/api/2.0/mlflow/no-such-thing")
    error(client.post("/nothing/here", json={}), 404, "ENDPOINT_NOT_FOUND")


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.get(f"{API}/runs/create")
    error(response, 405, "BAD_REQUEST", "GET")
    assert "POST" in response.headers["allow"]


def test_unexpected_exception_is_a_json_internal_error(client: TestClient) -> None:
    def explode() -> None:
        raise RuntimeError("boom")

    client.app.add_api_route("/test-only/explode", explode)  # type: ignore[attr-defined]
    error(client.get("/test-only/explode"), 500, "INTERNAL_ERROR")


def test_every_api_path_is_also_served_under_ajax_api(client: TestClient) -> None:
    experiment_id = ok(client.post("/ajax-api/2.0/mlflow/experiments/create", json={"name": "ui"}))[
        "experiment_id"
    ]
    got = ok(client.get("/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": experiment_id}))
    assert got["experiment"]["name"] == "ui"


# --- request parsing at the edge -------------------------------------------------------------------
def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        f"{API}/experiments/create", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    error(response, 400, "MALFORMED_REQUEST")


def test_missing_required_parameter_uses_mlflows_wording(client: TestClient) -> None:
    error(
        client.post(f"{API}/experiments/create", json={}),
        400,
        "INVALID_PARAMETER_VALUE",
        "Missing value for required parameter 'name'",
    )


def test_wrong_types_are_400_naming_the_field(client: TestClient) -> None:
    run = new_run(client)
    run_id = run["info"]["run_id"]
    error(
        client.post(f"{API}/experiments/create", json={"name": ["a"]}),
        400,
        "INVALID_PARAMETER_VALUE",
        "'name'",
    )
    body = {"run_id": run_id, "key": "m", "value": "not-a-number", "timestamp": 1}
    error(client.post(f"{API}/runs/log-metric", json=body), 400, "INVALID_PARAMETER_VALUE", "'value'")
    body = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": "yesterday"}
    error(client.post(f"{API}/runs/log-metric", json=body), 400, "INVALID_PARAMETER_VALUE", "'timestamp'")
    error(
        client.post(f"{API}/runs/search", json={"experiment_ids": "0"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "'experiment_ids'",
    )
    error(
        client.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "m", "value": 1}]}),
        400,
        "INVALID_PARAMETER_VALUE",
        "'metrics[0].timestamp'",
    )


# --- experiments -----------------------------------------------------------------------------------
def test_default_experiment_exists(client: TestClient) -> None:
    experiment = ok(client.get(f"{API}/experiments/get", params={"experiment_id": "0"}))["experiment"]
    assert experiment["name"] == "Default"
    assert experiment["lifecycle_stage"] == "active"


def test_create_and_get_experiment(client: TestClient) -> None:
    experiment_id = new_experiment(client, "first", tags=[{"key": "team", "value": "ml"}])
    assert isinstance(experiment_id, str)
    experiment = ok(client.get(f"{API}/experiments/get", params={"experiment_id": experiment_id}))[
        "experiment"
    ]
    assert experiment["experiment_id"] == experiment_id
    assert experiment["name"] == "first"
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["artifact_location"]
    assert {"key": "team", "value": "ml"} in experiment["tags"]
    by_name = ok(client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "first"}))
    assert by_name["experiment"]["experiment_id"] == experiment_id


def test_duplicate_experiment_name_is_resource_already_exists(client: TestClient) -> None:
    new_experiment(client, "dup")
    error(client.post(f"{API}/experiments/create", json={"name": "dup"}), 400, "RESOURCE_ALREADY_EXISTS")


def test_unknown_experiment_is_404(client: TestClient) -> None:
    error(
        client.get(f"{API}/experiments/get", params={"experiment_id": "987654"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    error(
        client.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "nope",
    )
    error(
        client.post(f"{API}/experiments/delete", json={"experiment_id": "987654"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_rename_delete_restore_experiment(client: TestClient) -> None:
    experiment_id = new_experiment(client, "old")
    assert (
        ok(client.post(f"{API}/experiments/update", json={"experiment_id": experiment_id, "new_name": "new"}))
        == {}
    )
    get = {"experiment_id": experiment_id}
    assert ok(client.get(f"{API}/experiments/get", params=get))["experiment"]["name"] == "new"
    assert ok(client.post(f"{API}/experiments/delete", json=get)) == {}
    assert ok(client.get(f"{API}/experiments/get", params=get))["experiment"]["lifecycle_stage"] == "deleted"
    assert ok(client.post(f"{API}/experiments/restore", json=get)) == {}
    assert ok(client.get(f"{API}/experiments/get", params=get))["experiment"]["lifecycle_stage"] == "active"


def test_set_and_delete_experiment_tag(client: TestClient) -> None:
    experiment_id = new_experiment(client)
    body = {"experiment_id": experiment_id, "key": "k", "value": "v"}
    assert ok(client.post(f"{API}/experiments/set-experiment-tag", json=body)) == {}
    experiment = ok(client.get(f"{API}/experiments/get", params={"experiment_id": experiment_id}))[
        "experiment"
    ]
    assert {"key": "k", "value": "v"} in experiment["tags"]
    body = {"experiment_id": experiment_id, "key": "k"}
    assert ok(client.post(f"{API}/experiments/delete-experiment-tag", json=body)) == {}
    experiment = ok(client.get(f"{API}/experiments/get", params={"experiment_id": experiment_id}))[
        "experiment"
    ]
    assert "k" not in {t["key"] for t in experiment.get("tags", [])}


def test_search_experiments_get_and_post_with_paging(client: TestClient) -> None:
    for i in range(5):
        new_experiment(client, f"search-{i}")
    posted = ok(
        client.post(
            f"{API}/experiments/search",
            json={"max_results": 2, "filter": "name LIKE 'search-%'", "order_by": ["name ASC"]},
        )
    )
    assert [e["name"] for e in posted["experiments"]] == ["search-0", "search-1"]
    token = posted["next_page_token"]
    names = [e["name"] for e in posted["experiments"]]
    while token:
        page = ok(
            client.get(
                f"{API}/experiments/search",
                params={
                    "max_results": "2",
                    "filter": "name LIKE 'search-%'",
                    "order_by": "name ASC",
                    "page_token": token,
                },
            )
        )
        names += [e["name"] for e in page["experiments"]]
        token = page.get("next_page_token")
    assert names == [f"search-{i}" for i in range(5)]


def test_search_experiments_view_type(client: TestClient) -> None:
    experiment_id = new_experiment(client, "gone")
    ok(client.post(f"{API}/experiments/delete", json={"experiment_id": experiment_id}))
    active = ok(client.post(f"{API}/experiments/search", json={}))["experiments"]
    assert "gone" not in {e["name"] for e in active}
    deleted = ok(client.post(f"{API}/experiments/search", json={"view_type": "DELETED_ONLY"}))["experiments"]
    assert {e["name"] for e in deleted} == {"gone"}


def test_search_experiments_bad_filter_is_400(client: TestClient) -> None:
    error(
        client.post(f"{API}/experiments/search", json={"filter": "name === 'x' and"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# --- runs ------------------------------------------------------------------------------------------
def test_create_run_answers_mlflows_run_shape(client: TestClient) -> None:
    experiment_id = new_experiment(client)
    run = new_run(
        client,
        experiment_id,
        run_name="my-run",
        user_id="alice",
        tags=[{"key": "source", "value": "test"}],
    )
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["experiment_id"] == experiment_id
    assert info["run_name"] == "my-run"
    assert info["user_id"] == "alice"
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1700000000000
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"]
    _, _, tags = run_data(run)
    assert tags["source"] == "test"
    assert get_run(client, info["run_id"])["info"] == info


def test_unknown_run_is_404(client: TestClient) -> None:
    missing = "f" * 32
    error(client.get(f"{API}/runs/get", params={"run_id": missing}), 404, "RESOURCE_DOES_NOT_EXIST")
    body = {"run_id": missing, "key": "m", "value": 1, "timestamp": 1}
    error(client.post(f"{API}/runs/log-metric", json=body), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        client.get(f"{API}/metrics/get-history", params={"run_id": missing, "metric_key": "m"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_run_in_unknown_experiment_is_404(client: TestClient) -> None:
    error(client.post(f"{API}/runs/create", json={"experiment_id": "424242"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_run_uuid_is_accepted_in_place_of_run_id(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    assert ok(client.get(f"{API}/runs/get", params={"run_uuid": run_id}))["run"]["info"]["run_id"] == run_id
    ok(client.post(f"{API}/runs/log-parameter", json={"run_uuid": run_id, "key": "p", "value": "1"}))
    assert run_data(get_run(client, run_id))[1] == {"p": "1"}


def test_update_run_returns_run_info(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    body = {"run_id": run_id, "status": "FINISHED", "end_time": "1700000005000", "run_name": "renamed"}
    info = ok(client.post(f"{API}/runs/update", json=body))["run_info"]
    assert info["status"] == "FINISHED"
    assert info["end_time"] == 1700000005000
    assert info["run_name"] == "renamed"
    error(
        client.post(f"{API}/runs/update", json={"run_id": run_id, "status": "DONE"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_delete_and_restore_run(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    assert ok(client.post(f"{API}/runs/delete", json={"run_id": run_id})) == {}
    assert get_run(client, run_id)["info"]["lifecycle_stage"] == "deleted"
    assert ok(client.post(f"{API}/runs/restore", json={"run_id": run_id})) == {}
    assert get_run(client, run_id)["info"]["lifecycle_stage"] == "active"


def test_set_and_delete_run_tag(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    assert ok(client.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "t", "value": "1"})) == {}
    assert run_data(get_run(client, run_id))[2]["t"] == "1"
    assert ok(client.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "t"})) == {}
    assert "t" not in run_data(get_run(client, run_id))[2]


def test_log_param_and_changed_param_is_400(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    assert (
        ok(client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}))
        == {}
    )
    # Same value again is fine (idempotent retry); a different value is not.
    ok(client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}))
    error(
        client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert run_data(get_run(client, run_id))[1] == {"lr": "0.1"}


def test_log_metric_accepts_proto_json_strings(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    body = {"run_id": run_id, "key": "loss", "value": "0.5", "timestamp": "1700000000001", "step": "3"}
    assert ok(client.post(f"{API}/runs/log-metric", json=body)) == {}
    history = ok(client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}))
    assert history["metrics"] == [{"key": "loss", "value": 0.5, "timestamp": 1700000000001, "step": 3}]


def test_nan_and_infinite_metrics_round_trip(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    for step, value in enumerate(["NaN", "Infinity", "-Infinity"]):
        body = {"run_id": run_id, "key": "odd", "value": value, "timestamp": 1, "step": step}
        ok(client.post(f"{API}/runs/log-metric", json=body))
    # A bare NaN token, as Python's json module writes it.
    raw = f'{{"run_id": "{run_id}", "key": "bare", "value": NaN, "timestamp": 1}}'.encode()
    ok(client.post(f"{API}/runs/log-metric", content=raw, headers={"content-type": "application/json"}))
    history = ok(client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "odd"}))
    assert [m["value"] for m in history["metrics"]] == ["NaN", "Infinity", "-Infinity"]
    metrics = run_data(get_run(client, run_id))[0]
    assert metrics["bare"] == "NaN"


def test_over_long_keys_are_400(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    key = "k" * 1000
    body = {"run_id": run_id, "key": key, "value": 1, "timestamp": 1}
    error(client.post(f"{API}/runs/log-metric", json=body), 400, "INVALID_PARAMETER_VALUE")
    error(
        client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": key, "value": "v"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        client.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": key, "value": "v"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    metrics, params, tags = run_data(get_run(client, run_id))
    assert metrics == {} and params == {} and key not in tags


def test_log_batch_writes_metrics_params_and_tags(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "acc", "value": 0.1, "timestamp": 1, "step": 0},
            {"key": "acc", "value": 0.9, "timestamp": 2, "step": 1},
        ],
        "params": [{"key": "depth", "value": "3"}],
        "tags": [{"key": "stage", "value": "dev"}],
    }
    assert ok(client.post(f"{API}/runs/log-batch", json=body)) == {}
    metrics, params, tags = run_data(get_run(client, run_id))
    assert metrics == {"acc": 0.9}
    assert params == {"depth": "3"}
    assert tags["stage"] == "dev"


def test_oversized_batch_is_400_and_writes_nothing(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    metrics = [{"key": f"m{i}", "value": i, "timestamp": 1} for i in range(MAX_METRICS_PER_BATCH + 1)]
    body = {"run_id": run_id, "metrics": metrics, "params": [{"key": "p", "value": "1"}]}
    error(client.post(f"{API}/runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert run_data(get_run(client, run_id))[:2] == ({}, {})


def test_invalid_item_in_batch_writes_nothing(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    ok(client.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"}))
    body = {
        "run_id": run_id,
        "metrics": [{"key": "good", "value": 1, "timestamp": 1}],
        "params": [{"key": "p", "value": "changed"}],
    }
    error(client.post(f"{API}/runs/log-batch", json=body), 400, "INVALID_PARAMETER_VALUE")
    metrics, params, _ = run_data(get_run(client, run_id))
    assert metrics == {} and params == {"p": "1"}


def test_log_inputs_records_datasets(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    dataset = {
        "name": "train",
        "digest": "abc123",
        "source_type": "local",
        "source": '{"uri": "/data/train.csv"}',
    }
    body = {
        "run_id": run_id,
        "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}],
    }
    assert ok(client.post(f"{API}/runs/log-inputs", json=body)) == {}
    inputs = get_run(client, run_id)["inputs"]
    assert inputs["dataset_inputs"][0]["dataset"]["name"] == "train"
    assert inputs["dataset_inputs"][0]["dataset"]["digest"] == "abc123"


def test_search_runs_filters_orders_and_pages(client: TestClient) -> None:
    experiment_id = new_experiment(client, "runs")
    for i in range(5):
        run_id = new_run(client, experiment_id, run_name=f"r{i}")["info"]["run_id"]
        ok(
            client.post(
                f"{API}/runs/log-metric",
                json={"run_id": run_id, "key": "acc", "value": i / 10, "timestamp": 1},
            )
        )
        ok(
            client.post(
                f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "even", "value": str(i % 2 == 0)}
            )
        )
    base = {
        "experiment_ids": [experiment_id],
        "filter": "metrics.acc >= 0.1 and params.even = 'True'",
        "order_by": ["metrics.acc DESC"],
    }
    found = ok(client.post(f"{API}/runs/search", json=base))
    assert [r["info"]["run_name"] for r in found["runs"]] == ["r4", "r2"]
    assert "next_page_token" not in found
    names: list[str] = []
    token = None
    while True:
        page = ok(
            client.post(
                f"{API}/runs/search", json={**base, "filter": "", "max_results": 2, "page_token": token}
            )
        )
        names += [r["info"]["run_name"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert names == ["r4", "r3", "r2", "r1", "r0"]


def test_search_runs_with_no_match_is_an_empty_message(client: TestClient) -> None:
    experiment_id = new_experiment(client)
    assert ok(client.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id]})) == {}


def test_search_runs_bad_filter_and_page_size_are_400(client: TestClient) -> None:
    base = {"experiment_ids": ["0"]}
    error(
        client.post(f"{API}/runs/search", json={**base, "filter": "metrics.acc >>> 1"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        client.post(f"{API}/runs/search", json={**base, "max_results": 50001}), 400, "INVALID_PARAMETER_VALUE"
    )
    error(
        client.post(f"{API}/runs/search", json={**base, "run_view_type": "SOMETIMES"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


# --- metric history --------------------------------------------------------------------------------
def test_metric_history_pages_follow_the_token(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    metrics = [{"key": "loss", "value": 1 / (i + 1), "timestamp": 1000 + i, "step": i} for i in range(7)]
    ok(client.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}))
    steps: list[int] = []
    token = None
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 3}
        if token:
            params["page_token"] = token
        page = ok(client.get(f"{API}/metrics/get-history", params=params))
        assert len(page["metrics"]) <= 3
        steps += [m["step"] for m in page["metrics"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert steps == list(range(7))


def test_metric_history_page_is_capped_server_side(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    total = GET_METRIC_HISTORY_MAX_RESULTS + 10
    for start in range(0, total, MAX_METRICS_PER_BATCH):
        batch = [
            {"key": "x", "value": float(i), "timestamp": i, "step": i}
            for i in range(start, min(total, start + MAX_METRICS_PER_BATCH))
        ]
        ok(client.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": batch}))
    first = ok(
        client.get(
            f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "x", "max_results": 100000}
        )
    )
    assert len(first["metrics"]) == GET_METRIC_HISTORY_MAX_RESULTS
    rest = ok(
        client.get(
            f"{API}/metrics/get-history",
            params={"run_id": run_id, "metric_key": "x", "page_token": first["next_page_token"]},
        )
    )
    assert [m["step"] for m in rest["metrics"]] == list(range(GET_METRIC_HISTORY_MAX_RESULTS, total))
    assert "next_page_token" not in rest


def test_metric_history_of_unlogged_key_is_empty(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    assert ok(client.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "none"})) == {}
    error(
        client.get(
            f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "x", "max_results": 0}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_metric_values_are_numbers_on_the_wire(client: TestClient) -> None:
    run_id = new_run(client)["info"]["run_id"]
    ok(client.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "v", "value": 3, "timestamp": 5}))
    [metric] = get_run(client, run_id)["data"]["metrics"]
    assert metric == {"key": "v", "value": 3.0, "timestamp": 5, "step": 0}


# --- single-process mode: the artifact proxy mounted into the tracking app ---------------------------
def single_process_app(sqlite_uri: str, destination: str, **extra: Any) -> TestClient:
    settings = Settings(
        backend_store_uri=sqlite_uri, artifacts_destination=destination, serve_artifacts=True, **extra
    )
    return TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False)


def test_single_process_mode_serves_artifacts_and_hands_out_proxied_locations(
    sqlite_uri: str, tmp_path: Path
) -> None:
    with single_process_app(sqlite_uri, str(tmp_path / "artifacts")) as client:
        experiment_id = new_experiment(client, "proxied")
        experiment = ok(client.get(f"{API}/experiments/get", params={"experiment_id": experiment_id}))
        assert experiment["experiment"]["artifact_location"].startswith("mlflow-artifacts:/")
        path = "/api/2.0/mlflow-artifacts/artifacts/some/dir/hello.txt"
        assert client.put(path, content=b"hello").status_code == 200
        downloaded = client.get(path)
        assert downloaded.status_code == 200 and downloaded.content == b"hello"
        # A local folder cannot do multipart, and server-info says so.
        assert ok(client.get("/api/3.0/mlflow/server-info"))["multipart_uploads_enabled"] is False


@pytest.mark.s3
def test_server_info_reports_multipart_when_the_mounted_proxy_supports_it(
    sqlite_uri: str, s3_endpoint: str, s3_bucket: str
) -> None:
    with single_process_app(sqlite_uri, f"s3://{s3_bucket}/root", s3_endpoint_url=s3_endpoint) as client:
        assert ok(client.get("/api/3.0/mlflow/server-info"))["multipart_uploads_enabled"] is True


@pytest.mark.postgres
def test_lost_database_is_a_retryable_503(postgres_server: Any, tmp_path: Path) -> None:
    name = f"t_gone_{uuid.uuid4().hex[:12]}"
    uri = postgres_server.create_database(name)
    settings = Settings(backend_store_uri=uri, artifacts_destination=str(tmp_path), serve_artifacts=False)
    try:
        with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as client:
            ok(client.get(f"{API}/experiments/get", params={"experiment_id": "0"}))
            postgres_server.drop_database(name)  # FORCE: the pool's sessions are terminated too
            response = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
            error(response, 503, "TEMPORARILY_UNAVAILABLE")
            # The database comes back: the client's retry gets a fresh connection, not a dead one.
            postgres_server.create_database(name)
            from modelyard.store.sql.migrate import upgrade

            upgrade(uri)
            for _ in range(2):  # every pooled connection died; none may be handed out again
                ok(client.get(f"{API}/experiments/get", params={"experiment_id": "0"}))
    finally:
        postgres_server.drop_database(name)
