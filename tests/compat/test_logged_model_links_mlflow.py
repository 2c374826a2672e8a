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

pytestmark = pytest.mark.compat


@pytest.fixture(autouse=True)
def _allow_mlflow_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


@pytest.fixture()
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(size=30), "b": rng.integers(0, 5, size=30)})


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
