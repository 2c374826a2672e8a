"""`/graphql` in process (the real app and SQL store): MLflow's answer shapes, NaN as null, 64-bit
integers as strings, errors as messages, the root-field limit and batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.settings import Settings
from modelyard.tracking.app import create_app


@pytest.fixture
def client(sqlite_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(backend_store_uri=sqlite_uri, artifacts_destination=str(tmp_path / "artifacts"))
    with TestClient(create_app(settings), raise_server_exceptions=False, base_url="http://localhost") as test_client:
        yield test_client


def _query(client: TestClient, body: Any) -> Any:
    answer = client.post("/graphql", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_queries_batches_nan_and_errors(client: TestClient) -> None:
    run_id = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]["info"][
        "run_id"
    ]
    metrics = [
        {"key": "loss", "value": "NaN" if i == 1 else i, "timestamp": 10 + i, "step": i} for i in range(3)
    ]
    assert (
        client.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics}).status_code
        == 200
    )
    history = (
        'query { mlflowGetMetricHistoryBulkInterval(input: {runIds: ["RUN"], metricKey: "loss"}) '
        "{ metrics { step value timestamp runId } apiError { code } } }"
    ).replace("RUN", run_id)
    assert _query(client, {"query": history}) == {
        "data": {
            "mlflowGetMetricHistoryBulkInterval": {
                "metrics": [
                    {"step": "0", "value": 0.0, "timestamp": "10", "runId": run_id},
                    {"step": "1", "value": None, "timestamp": "11", "runId": run_id},
                    {"step": "2", "value": 2.0, "timestamp": "12", "runId": run_id},
                ],
                "apiError": None,
            }
        },
        "errors": None,
    }
    experiment = (
        'query { mlflowGetExperiment(input: {experimentId: "%s"}) { experiment { name tags { key } } } }'
    )
    batch = _query(client, [{"query": experiment % "0"}, {"query": experiment % "424242"}])
    assert batch[0] == {
        "data": {"mlflowGetExperiment": {"experiment": {"name": "Default", "tags": []}}},
        "errors": None,
    }
    assert batch[1]["data"] == {"mlflowGetExperiment": None} and "424242" in batch[1]["errors"][0]
    runs = _query(
        client,
        {
            "query": 'query { mlflowSearchRuns(input: {experimentIds: ["0"]}) { runs { info { runId status } data { params { key } } } } }'
        },
    )
    assert runs["data"]["mlflowSearchRuns"]["runs"] == [
        {"info": {"runId": run_id, "status": "RUNNING"}, "data": {"params": []}}
    ]
    many = " ".join(
        f'a{i}: mlflowGetExperiment(input: {{experimentId: "0"}}) {{ experiment {{ name }} }}'
        for i in range(11)
    )
    assert _query(client, {"query": "query { " + many + " }"})["errors"][0].startswith(
        "GraphQL queries should have at most 10 root fields"
    )
    assert _query(client, {"query": "query { nope }"}) == {
        "data": None,
        "errors": ["Cannot query field 'nope' on type 'Query'."],
    }
    assert _query(client, {"nothing": 1})["data"] is None
    assert client.post("/graphql", content=b"{not json").status_code == 400
