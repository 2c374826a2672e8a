"""`/openapi.json`: every operation each service serves is described, and every description is served."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.artifact_proxy.app import create_app as create_artifacts_app
from modelyard.protocol.openapi import OPERATIONS, UNDOCUMENTED, described
from modelyard.runtime.openapi import served_operations
from modelyard.settings import Settings
from modelyard.tracking.app import create_app as create_tracking_app


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FastAPI]:
    base = tmp_path_factory.mktemp("openapi")
    artifacts = str(base / "artifacts")
    return {
        # Single-process mode: the tracking app serves the artifacts API too.
        "tracking": create_tracking_app(Settings(backend_store_uri=f"sqlite:///{base / 'db'}", artifacts_destination=artifacts)),
        "artifacts": create_artifacts_app(Settings(artifacts_destination=artifacts)),
    }


def _document(app: FastAPI) -> dict:
    with TestClient(app, base_url="http://localhost") as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


@pytest.mark.parametrize("service", ["tracking", "artifacts"])
def test_every_served_operation_is_documented(apps: dict[str, FastAPI], service: str) -> None:
    document = _document(apps[service])
    assert document["openapi"] == "3.1.0"
    served = {(m, p) for m, p in served_operations(apps[service]) if described(m, p)}
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert documented == served
    undocumented = sorted((m, p) for p, ops in document["paths"].items() for m, op in ops.items() if op.get(UNDOCUMENTED))
    assert undocumented == [], "add these to modelyard.protocol.openapi.OPERATIONS"


def test_only_the_rest_api_is_described() -> None:
    assert described("POST", "/api/2.0/mlflow/runs/future-endpoint")  # a new API route must be described
    assert described("GET", "/health") and not described("GET", "/ajax-api/2.0/mlflow/runs/get")
    assert not described("GET", "/experiments")  # an HTML page of the UI


def test_every_description_is_of_a_served_operation(apps: dict[str, FastAPI]) -> None:
    served = {op for app in apps.values() for op in served_operations(app)}
    assert set(OPERATIONS) - served == set()


def test_operations_describe_their_arguments(apps: dict[str, FastAPI]) -> None:
    paths = _document(apps["tracking"])["paths"]
    log_metric = paths["/api/2.0/mlflow/runs/log-metric"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert log_metric["properties"]["value"]["type"] == "number"
    assert log_metric["properties"]["timestamp"]["format"] == "int64"
    assert set(log_metric["required"]) == {"run_id", "key", "value", "timestamp"}
    search = {p["name"]: p for p in paths["/api/2.0/mlflow/experiments/search"]["get"]["parameters"]}
    assert search["order_by"]["schema"]["type"] == "array" and search["order_by"]["explode"] is True
    upload = paths["/api/2.0/mlflow-artifacts/artifacts/{path}"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert [p["name"] for p in upload["parameters"] if p["in"] == "path"] == ["path"]


def test_the_document_is_valid_openapi(apps: dict[str, FastAPI]) -> None:
    import schemathesis

    for app in apps.values():
        schema = schemathesis.openapi.from_dict(_document(app))
        operations = [result.ok() for result in schema.get_all_operations()]
        assert operations and all(op.definition.raw for op in operations)
