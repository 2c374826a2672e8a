"""MLflow 3 logged models: the REST API in process (SQLite and PostgreSQL), and the real `mlflow`
client's logged-model calls against a gunicorn tracking service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import SharedServer

from modelyard.settings import Settings
from modelyard.tracking.app import create_app

API = "/api/2.0/mlflow"


@pytest.fixture
def client(db_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(backend_store_uri=db_uri, artifacts_destination=str(tmp_path / "artifacts"))
    with TestClient(create_app(settings), base_url="http://localhost", raise_server_exceptions=False) as test_client:
        yield test_client


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code, response.text


def new_model(client: TestClient, **extra: Any) -> dict[str, Any]:
    body = {"experiment_id": "0", "name": "model", **extra}
    return ok(client.post(f"{API}/logged-models", json=body))["model"]  # type: ignore[no-any-return]


def test_create_get_finalize_shapes(client: TestClient) -> None:
    run = ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]
    model = new_model(
        client,
        source_run_id=run["run_id"],
        model_type="sklearn",
        tags=[{"key": "t", "value": "1"}],
        params=[{"key": "alpha", "value": "0.5"}],
    )
    info = model["info"]
    model_id = info["model_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    assert info["source_run_id"] == run["run_id"] and info["model_type"] == "sklearn"
    assert info["tags"] == [{"key": "t", "value": "1"}]
    assert model["data"]["params"] == [{"key": "alpha", "value": "0.5"}]

    body = {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    finalized = ok(client.patch(f"{API}/logged-models/{model_id}", json=body))["model"]
    assert finalized["info"]["status"] == "LOGGED_MODEL_READY"
    assert (
        ok(client.get(f"{API}/logged-models/{model_id}"))["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    )
    error(
        client.patch(f"{API}/logged-models/{model_id}", json={"status": "DONE"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_tags_params_and_delete(client: TestClient) -> None:
    model_id = new_model(client)["info"]["model_id"]
    tags = {"tags": [{"key": "a", "value": "1"}, {"key": "b/c", "value": "2"}]}
    ok(client.patch(f"{API}/logged-models/{model_id}/tags", json=tags))
    ok(client.patch(f"{API}/logged-models/{model_id}/tags", json={"tags": [{"key": "a", "value": "3"}]}))
    ok(client.delete(f"{API}/logged-models/{model_id}/tags/b/c"))
    params = {"params": [{"key": "p", "value": "x"}]}
    ok(client.post(f"{API}/logged-models/{model_id}/params", json=params))
    ok(client.post(f"{API}/logged-models/{model_id}/params", json=params))  # a retried call is harmless
    changed = {"params": [{"key": "p", "value": "y"}]}
    error(client.post(f"{API}/logged-models/{model_id}/params", json=changed), 400, "INVALID_PARAMETER_VALUE")
    got = ok(client.get(f"{API}/logged-models/{model_id}"))["model"]
    assert got["info"]["tags"] == [{"key": "a", "value": "3"}]
    assert got["data"]["params"] == [{"key": "p", "value": "x"}]

    ok(client.delete(f"{API}/logged-models/{model_id}"))
    error(client.get(f"{API}/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(client.get(f"{API}/logged-models/m-doesnotexist"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(client.post(f"{API}/logged-models", json={"experiment_id": "999"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_search_filters_order_and_pages(client: TestClient) -> None:
    exp = ok(client.post(f"{API}/experiments/create", json={"name": "lm-search"}))["experiment_id"]
    run = ok(client.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"]
    ids = [
        new_model(
            client,
            experiment_id=exp,
            name=name,
            source_run_id=run["run_id"],
            tags=[{"key": "k", "value": name}],
        )["info"]["model_id"]
        for name in ("alpha", "beta", "gamma")
    ]
    ok(client.patch(f"{API}/logged-models/{ids[1]}", json={"status": "LOGGED_MODEL_READY"}))
    new_model(client, name="elsewhere")

    def search(**body: Any) -> dict[str, Any]:
        return ok(client.post(f"{API}/logged-models/search", json={"experiment_ids": [exp], **body}))

    names = lambda answer: [m["info"]["name"] for m in answer.get("models", [])]  # noqa: E731
    assert names(search()) == ["gamma", "beta", "alpha"]  # newest first
    assert names(search(filter="name = 'beta'")) == ["beta"]
    assert names(search(filter=f"source_run_id = '{run['run_id']}' AND name = 'alpha'")) == ["alpha"]
    assert names(search(filter="status = 'READY'")) == ["beta"]
    assert names(search(filter="tags.k LIKE 'g%'")) == ["gamma"]
    assert names(search(order_by=[{"field_name": "name", "ascending": True}])) == ["alpha", "beta", "gamma"]
    first = search(max_results=2, order_by=[{"field_name": "name"}])
    assert names(first) == ["alpha", "beta"] and first["next_page_token"]
    rest = search(max_results=2, order_by=[{"field_name": "name"}], page_token=first["next_page_token"])
    assert names(rest) == ["gamma"] and "next_page_token" not in rest
    error(
        client.post(f"{API}/logged-models/search", json={"filter": "color = 'red'"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_runs_outputs_links_models(client: TestClient) -> None:
    run = ok(client.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]
    model_id = new_model(client, source_run_id=run["run_id"])["info"]["model_id"]
    body = {"run_id": run["run_id"], "models": [{"model_id": model_id, "step": 3}]}
    assert ok(client.post(f"{API}/runs/outputs", json=body)) == {}
    missing = {"run_id": run["run_id"], "models": [{"model_id": "m-0000"}]}
    error(client.post(f"{API}/runs/outputs", json=missing), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        client.post(f"{API}/runs/outputs", json={"run_id": "nope", "models": []}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    got = ok(client.get(f"{API}/runs/get", params={"run_id": run["run_id"]}))["run"]
    assert got["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 3}]}


def test_real_mlflow_client_logged_model_calls(shared_sqlite_server: SharedServer, unique_name: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    client = MlflowClient(tracking_uri=shared_sqlite_server.url)
    exp = client.create_experiment(unique_name)
    run = client.create_run(exp)
    params = {f"p{i}": str(i) for i in range(150)}  # more than one request's worth: /params batches
    model = client.create_logged_model(
        exp, name="clf", source_run_id=run.info.run_id, params=params, tags={"x": "y"}, model_type="demo"
    )
    assert model.model_id.startswith("m-") and model.status == LoggedModelStatus.PENDING
    assert model.params == params and model.tags == {"x": "y"}
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.set_logged_model_tags(model.model_id, {"stage": "eval"})
    client.delete_logged_model_tag(model.model_id, "x")
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=0)])
    assert [(o.model_id, o.step) for o in client.get_run(run.info.run_id).outputs.model_outputs] == [
        (model.model_id, 0)
    ]
    got = client.get_logged_model(model.model_id)
    assert got.status == LoggedModelStatus.READY and got.tags == {"stage": "eval"}
    found = client.search_logged_models([exp], filter_string="name = 'clf'")
    assert [m.model_id for m in found] == [model.model_id]
    assert client.list_logged_model_artifacts(model.model_id) == []
    client.delete_logged_model(model.model_id)
    assert client.search_logged_models([exp]).to_list() == []
