"""Every model URI form resolves and loads against a real tracking service (gunicorn) with artifacts on S3 (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from tests.support.services import start_tracking_server

import modelyard
import modelyard.pyfunc
import modelyard.sklearn
from modelyard import errors
from modelyard.devstack.s3 import S3Server
from modelyard.exceptions import ModelyardException
from modelyard.models.uri import download_model, resolve_model_uri, resolve_model_version

pytestmark = [pytest.mark.s3]

FRAME = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "b": [1.0, 0.0, 2.0, 1.0]})


class Offset(modelyard.pyfunc.PythonModel):
    def load_context(self, context):
        import offset_helper

        self.offset = offset_helper.read_offset(context.artifacts["offset"])

    def predict(self, context, model_input, params=None):
        return (model_input["a"] + self.offset).tolist()


@pytest.fixture(scope="module")
def s3_bucket(s3_server: S3Server) -> str:
    """The module's bucket (its server's artifacts destination); each test has its own experiment."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_server.create_bucket(name)
    return name


@pytest.fixture(scope="module")
def module_server(s3_server: S3Server, s3_bucket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One tracking service (1 worker) for the module, its proxied artifacts in S3."""
    env = {"MODELYARD_ARTIFACTS_DESTINATION": f"s3://{s3_bucket}/artifacts", "MODELYARD_S3_ENDPOINT_URL": s3_server.endpoint}
    with start_tracking_server(tmp_path_factory.mktemp("uris"), env=env, workers=1) as service:
        yield service.url


@pytest.fixture()
def server(module_server: str, s3_server, monkeypatch) -> str:
    """Tracking service whose proxied artifacts live in S3; the client talks to it like the mlflow client would."""
    url = module_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MODELYARD_S3_ENDPOINT_URL", s3_server.endpoint)
    modelyard.set_experiment(f"uris-{uuid.uuid4().hex[:8]}")
    return url


def _regressor(scale: float) -> LinearRegression:
    return LinearRegression().fit(FRAME, scale * FRAME["a"] + FRAME["b"])


def test_registry_uris_resolve_to_the_right_version(server, s3_server, s3_bucket):
    name = f"reg-{uuid.uuid4().hex[:8]}"
    models = [_regressor(s) for s in (1.0, 2.0, 3.0)]
    with modelyard.start_run() as run:
        infos = [
            modelyard.sklearn.log_model(m, name=f"m{i}", input_example=FRAME, registered_model_name=name)
            for i, m in enumerate(models)
        ]
    assert [i.registered_model_version for i in infos] == [1, 2, 3]
    client = modelyard.Client()
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Staging")
    client.set_registered_model_alias(name, "champion", "2")

    def predicted(uri: str) -> np.ndarray:
        return modelyard.pyfunc.load_model(uri).predict(FRAME)

    expected = [m.predict(FRAME) for m in models]
    assert np.allclose(predicted(f"models:/{name}/1"), expected[0])
    assert np.allclose(predicted(f"models:/{name}/Production"), expected[0])
    assert np.allclose(predicted(f"models:/{name}/staging"), expected[1])
    assert np.allclose(predicted(f"models:/{name}@champion"), expected[1])
    assert np.allclose(predicted(f"models:/{name}/latest"), expected[2])
    assert np.allclose(predicted(infos[2].model_uri), expected[2])
    assert np.allclose(predicted(f"runs:/{run.info.run_id}/m2"), expected[2])
    assert resolve_model_version(f"models:/{name}@champion") == (name, "2")

    prefix = f"artifacts/{run.info.experiment_id}/"  # this test's experiment (the bucket is the module's)
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=prefix).get("Contents", [])]
    assert sum(k.endswith("/MLmodel") for k in keys) == 3

    location = resolve_model_uri(f"models:/{name}/3")
    assert location.startswith("mlflow-artifacts:/") or location.startswith("s3://")
    assert np.allclose(predicted(location), expected[2])
    assert np.allclose(modelyard.sklearn.load_model(f"models:/{name}@champion").predict(FRAME), expected[1])


def test_unknown_versions_stages_and_aliases_are_errors(server):
    name = f"err-{uuid.uuid4().hex[:8]}"
    with modelyard.start_run() as run:
        info = modelyard.sklearn.log_model(_regressor(1.0), name="m", registered_model_name=name)
    # The registered version links back to the run that logged it, as MLflow 3 records it.
    version = modelyard.Client().get_model_version(name, str(info.registered_model_version))
    assert version.run_id == run.info.run_id
    for uri, code in (
        (f"models:/{name}/9", errors.RESOURCE_DOES_NOT_EXIST),
        (f"models:/{name}/Archived", errors.RESOURCE_DOES_NOT_EXIST),
        (f"models:/{name}/Prod", errors.INVALID_PARAMETER_VALUE),
        (f"models:/{name}-missing/1", errors.RESOURCE_DOES_NOT_EXIST),
        ("models:/m-00000000000000000000000000000000", errors.RESOURCE_DOES_NOT_EXIST),
    ):
        with pytest.raises(ModelyardException) as info:
            modelyard.pyfunc.load_model(uri)
        assert info.value.error_code == code, uri
    with pytest.raises(ModelyardException) as info:
        modelyard.pyfunc.load_model(f"models:/{name}@nobody")
    assert info.value.http_status == 400 or info.value.error_code == errors.RESOURCE_DOES_NOT_EXIST


def test_s3_uri_loads_a_model_directory(server, s3_server, s3_bucket, tmp_path):
    model = _regressor(4.0)
    modelyard.sklearn.save_model(model, tmp_path / "model", input_example=FRAME)
    s3 = s3_server.client()
    for path in (tmp_path / "model").rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), s3_bucket, f"exported/model/{path.relative_to(tmp_path / 'model')}")
    local = download_model(f"s3://{s3_bucket}/exported/model", tmp_path / "downloaded")
    assert Path(local, "MLmodel").is_file()
    assert np.allclose(
        modelyard.pyfunc.load_model(f"s3://{s3_bucket}/exported/model").predict(FRAME), model.predict(FRAME)
    )


def test_custom_python_model_with_artifacts_and_code_round_trips_through_the_server(
    server, tmp_path, monkeypatch
):
    helper = tmp_path / "code" / "offset_helper.py"
    helper.parent.mkdir()
    helper.write_text("def read_offset(path):\n    return float(open(path).read())\n")
    (tmp_path / "offset.txt").write_text("10")
    monkeypatch.syspath_prepend(str(helper.parent))
    name = f"custom-{uuid.uuid4().hex[:8]}"
    with modelyard.start_run():
        info = modelyard.pyfunc.log_model(
            name="offset",
            python_model=Offset(),
            artifacts={"offset": str(tmp_path / "offset.txt")},
            code_paths=[str(helper)],
            input_example=FRAME,
            registered_model_name=name,
        )
    assert info.signature is not None and info.signature.inputs.input_names() == ["a", "b"]
    monkeypatch.delitem(__import__("sys").modules, "offset_helper", raising=False)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p != str(helper.parent)])
    loaded = modelyard.pyfunc.load_model(f"models:/{name}/1")
    assert loaded.predict(FRAME) == [10.5, 11.5, 12.5, 13.5]
    with pytest.raises(ModelyardException) as bad:
        loaded.predict(FRAME[["b"]])
    assert "'a'" in bad.value.message


def test_log_model_without_a_run_is_a_standalone_logged_model(server):
    model = _regressor(5.0)
    info = modelyard.sklearn.log_model(model, name="standalone", tags={"team": "yard"})
    assert info.run_id is None and info.model_uri == f"models:/{info.model_id}"
    logged = modelyard.Client().get_logged_model(info.model_id)
    assert logged.source_run_id is None and logged.status.endswith("READY")
    assert logged.tags["team"] == "yard" and "mlflow.user" in logged.tags
    assert np.allclose(modelyard.pyfunc.load_model(info.model_uri).predict(FRAME), model.predict(FRAME))


def test_a_failed_save_marks_the_logged_model_failed(server):
    with modelyard.start_run() as run, pytest.raises(ModelyardException):
        modelyard.sklearn.log_model(_regressor(1.0), name="broken", code_paths=["/nonexistent/helper.py"])
    client = modelyard.Client()
    found = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert [m.status for m in found] == ["LOGGED_MODEL_UPLOAD_FAILED"]


def test_runs_uri_loads_a_model_folder_in_the_runs_own_artifacts(server, tmp_path):
    """MLflow 2 layout: the model directory is an ordinary run artifact; runs:/ finds it before logged models."""
    model = _regressor(6.0)
    modelyard.sklearn.save_model(model, tmp_path / "legacy")
    with modelyard.start_run() as run:
        modelyard.log_artifacts(str(tmp_path / "legacy"), "legacy")
    uri = f"runs:/{run.info.run_id}/legacy"
    assert resolve_model_uri(uri).endswith(f"{run.info.run_id}/artifacts/legacy")
    assert np.allclose(modelyard.pyfunc.load_model(uri).predict(FRAME), model.predict(FRAME))
    with pytest.raises(ModelyardException) as info:
        modelyard.pyfunc.load_model(f"runs:/{run.info.run_id}/nothing-here")
    assert info.value.error_code == errors.RESOURCE_DOES_NOT_EXIST
