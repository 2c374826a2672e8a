"""MLflow 3's links between runs, logged models and registered versions, through the real `mlflow` client.

Each test encodes what MLflow 3.17's own server does (run them with MODELYARD_COMPAT_SERVER=mlflow to
check): a version registered from a logged model records the model's run, sources are checked no
more strictly than MLflow checks them, and metrics/inputs keep their model and dataset links.
"""

from __future__ import annotations

import json
import uuid

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from tests.compat.conftest import REFERENCE

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("allow_mlflow_unpickling")]


def test_log_model_with_registered_name_keeps_run_lineage(
    client: MlflowClient, experiment_name: str, frame: pd.DataFrame
) -> None:
    classifier = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    mlflow.set_experiment(experiment_name)
    name = f"lineage-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(classifier, name="model", registered_model_name=name)
    version = client.get_model_version(name, "1")
    assert version.run_id == run.info.run_id
    assert version.source == f"models:/{info.model_id}"
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").run_id == run.info.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(loaded.predict(frame), classifier.predict(frame))
    # The server records the version (integer); mlflow's client appends its own entry (a string) too.
    entries = json.loads(client.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
    assert {"name": name, "version": 1} in entries


def test_sources_of_other_servers_are_accepted_as_mlflow_does(
    client: MlflowClient, experiment_name: str
) -> None:
    experiment_id = client.create_experiment(experiment_name)
    name = f"foreign-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    foreign_run = uuid.uuid4().hex
    version = client.create_model_version(name, f"runs:/{foreign_run}/model", run_id=foreign_run)
    assert (version.version, version.run_id) == ("1", foreign_run)

    model = client.create_logged_model(experiment_id, name="elsewhere", source_run_id=foreign_run)
    assert model.source_run_id == foreign_run
    version = client.create_model_version(name, f"models:/{model.model_id}", model_id=model.model_id)
    assert client.get_model_version(name, version.version).run_id == foreign_run


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "runs:/{run}/../../x",
        "mlflow-artifacts:/0/x",
        "http://example.com/m",
    ],
)
def test_sources_mlflow_refuses_are_refused(client: MlflowClient, experiment_name: str, source: str) -> None:
    from mlflow.exceptions import MlflowException

    experiment_id = client.create_experiment(experiment_name)
    run = client.create_run(experiment_id)
    name = f"refused-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as raised:
        client.create_model_version(name, source.format(run=run.info.run_id), run_id=run.info.run_id)
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.search_model_versions(f"name = '{name}'") == []


def test_metrics_and_inputs_keep_their_model_and_dataset_links(
    client: MlflowClient, experiment_name: str
) -> None:
    from mlflow.entities import LoggedModelInput, Metric

    experiment_id = client.create_experiment(experiment_name)
    run_id = client.create_run(experiment_id).info.run_id
    model = client.create_logged_model(experiment_id, name="scored", source_run_id=run_id)
    other = client.create_logged_model(experiment_id, name="unscored", source_run_id=run_id)
    client.log_metric(
        run_id, "acc", 0.75, 999, 1, model_id=model.model_id, dataset_name="eval", dataset_digest="d1"
    )
    client.log_batch(
        run_id,
        metrics=[
            Metric("loss", 0.25, 1000, 2, model_id=model.model_id, dataset_name="eval", dataset_digest="d1"),
            Metric("plain", 1.0, 1000, 0),
        ],
    )
    client.log_metric(
        run_id, "acc", 0.75, 999, 1, model_id=model.model_id, dataset_name="eval", dataset_digest="d1"
    )
    client.log_inputs(run_id, models=[LoggedModelInput(model.model_id), LoggedModelInput(other.model_id)])

    metrics = client.get_logged_model(model.model_id).metrics
    assert sorted(
        (m.key, m.value, m.step, m.dataset_name, m.dataset_digest, m.model_id, m.run_id) for m in metrics
    ) == [
        ("acc", 0.75, 1, "eval", "d1", model.model_id, run_id),
        ("loss", 0.25, 2, "eval", "d1", model.model_id, run_id),
    ]
    assert client.get_logged_model(other.model_id).metrics in (None, [])
    run = client.get_run(run_id)
    assert set(run.data.metrics) == {"acc", "loss", "plain"}
    assert sorted(m.model_id for m in run.inputs.model_inputs) == sorted([model.model_id, other.model_id])

    def found(datasets: list[dict[str, str]]) -> list[str]:
        return [m.model_id for m in client.search_logged_models([experiment_id], datasets=datasets)]

    assert found([{"dataset_name": "eval", "dataset_digest": "d1"}]) == [model.model_id]
    assert found([{"dataset_name": "eval", "dataset_digest": "other"}]) == []
    assert found([{"dataset_name": "train", "dataset_digest": "d1"}]) == []


def test_a_metric_for_an_unknown_model_is_refused_and_nothing_is_written(
    client: MlflowClient, experiment_name: str
) -> None:
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    run_id = client.create_run(client.create_experiment(experiment_name)).info.run_id
    with pytest.raises(MlflowException) as raised:
        client.log_batch(run_id, metrics=[Metric("acc", 0.5, 1000, 0, model_id=f"m-{'ab' * 16}")])
    assert raised.value.get_http_status_code() == 400
    if not REFERENCE:  # MLflow keeps the run's point; modelyard's writes are all-or-nothing
        assert client.get_run(run_id).data.metrics == {}
