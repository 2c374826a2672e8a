"""`models/publish.log_model`'s `on_created`: called with the logged model's id while the model is still
PENDING (its files being saved and uploaded on this thread), done before `log_model` returns; when it
fails, the logged model ends FAILED and the error reaches the caller. Against the shared SQLite server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LinearRegression
from tests.conftest import SharedServer

import modelyard
from modelyard import sklearn as sklearn_flavor
from modelyard.client import Client
from modelyard.models import publish
from modelyard.models.mlmodel import Model


@pytest.fixture
def experiment(shared_sqlite_server: SharedServer, unique_name: str) -> Iterator[str]:
    modelyard.set_tracking_uri(shared_sqlite_server.url)
    try:
        modelyard.set_experiment(unique_name)
        yield unique_name
    finally:
        modelyard.set_tracking_uri(None)


def _save(path: Path, model: Model) -> Model:
    return sklearn_flavor.save_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), path, mlflow_model=model)


def test_on_created_runs_while_the_model_is_pending_and_finishes_first(experiment: str) -> None:
    seen: list[Any] = []

    def on_created(model_id: str) -> None:
        seen.append(Client().get_logged_model(model_id))

    with modelyard.start_run() as run:
        info = publish.log_model(_save, "model", on_created=on_created)
    (pending,) = seen
    assert pending.model_id == info.model_id and pending.status == "LOGGED_MODEL_PENDING"
    client = Client()
    assert client.get_logged_model(info.model_id).status == "LOGGED_MODEL_READY"
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]


def test_a_failing_on_created_fails_the_model(experiment: str) -> None:
    created: list[str] = []

    def on_created(model_id: str) -> None:
        created.append(model_id)
        raise RuntimeError("the batch could not be sent")

    with modelyard.start_run(), pytest.raises(RuntimeError, match="could not be sent"):
        publish.log_model(_save, "model", on_created=on_created)
    (model_id,) = created
    assert Client().get_logged_model(model_id).status == "LOGGED_MODEL_UPLOAD_FAILED"
