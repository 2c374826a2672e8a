"""`models/publish.log_model`: the folder is saved while the logged model's creation is in flight, and
its MLmodel still names the model; `on_created` is called with the logged model's id while the model is
still PENDING (its files being saved and uploaded on this thread), done before `log_model` returns; when it or the
save fails, the logged model ends FAILED and the error reaches the caller. Against the shared SQLite
server."""

from __future__ import annotations

import threading
import time
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
from modelyard.models.uri import download_model


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


def test_the_uploaded_mlmodel_names_the_model_saved_before_its_id_was_known(experiment: str, tmp_path: Path) -> None:
    with modelyard.start_run() as run:
        info = publish.log_model(_save, "model")
    client = Client()
    logged = client.get_logged_model(info.model_id)
    local = download_model(f"models:/{info.model_id}", str(tmp_path))
    mlmodel = Model.load(local)
    assert (mlmodel.model_id, mlmodel.model_uuid, mlmodel.run_id) == (info.model_id, info.model_id, run.info.run_id)
    assert mlmodel.artifact_path == logged.artifact_location
    assert sorted(p.name for p in Path(local).iterdir()) == [
        "MLmodel", "conda.yaml", "model.pkl", "python_env.yaml", "requirements.txt"
    ]  # fmt: skip
    assert modelyard.sklearn.load_model(f"models:/{info.model_id}").predict([[2.0]])[0] == pytest.approx(2.0)


def test_a_failing_save_fails_the_model_and_raises_its_own_error(experiment: str) -> None:
    def save(path: Path, model: Model) -> Model:
        raise ValueError("cannot pickle this")

    with modelyard.start_run() as run, pytest.raises(ValueError, match="cannot pickle this"):
        publish.log_model(save, "model")
    client = Client()
    (model,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert model.status == "LOGGED_MODEL_UPLOAD_FAILED"


def test_the_output_link_and_on_created_go_out_while_the_folder_is_still_being_saved(experiment: str) -> None:
    """The save waits (10 s at most) until `on_created` has run and the run's output link is on the
    server: both must leave as soon as the model exists, not after the save."""
    called = threading.Event()
    seen_while_saving: list[Any] = []

    def on_created(model_id: str) -> None:
        called.set()

    def save(path: Path, model: Model) -> Model:
        run_id = model.run_id
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            outputs = Client().get_run(run_id).outputs.model_outputs
            if called.is_set() and outputs:
                seen_while_saving.append([o.model_id for o in outputs])
                break
            time.sleep(0.01)
        return _save(path, model)

    with modelyard.start_run():
        info = publish.log_model(save, "model", on_created=on_created)
    assert seen_while_saving == [[info.model_id]]
