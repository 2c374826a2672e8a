"""Models move between modelyard and the real mlflow (3.17.2) both ways, on disk and through a server.

MLflow 3.17 refuses to deserialize any model unless MLFLOW_ALLOW_PICKLE_DESERIALIZATION is true (its
own skops models included), so every test that loads with mlflow sets it, as a user would.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature as mlflow_infer_signature
from sklearn.linear_model import LinearRegression, LogisticRegression

import modelyard.pyfunc
import modelyard.sklearn
from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.models import infer_signature

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("allow_mlflow_unpickling")]


@pytest.fixture()
def classifier(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 5).astype(int))


class MlflowScaler(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.offset = float(Path(context.artifacts["offset"]).read_text())

    def predict(self, context, model_input, params=None):
        return model_input["a"] * (params or {}).get("scale", 2.0) + self.offset


class YardScaler(modelyard.pyfunc.PythonModel):
    def load_context(self, context):
        self.offset = float(Path(context.artifacts["offset"]).read_text())

    def predict(self, context, model_input, params=None):
        return model_input["a"] * (params or {}).get("scale", 2.0) + self.offset


# --- on local disk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("serialization_format", ["skops", "cloudpickle", "pickle"])
def test_mlflow_saved_sklearn_loads_and_predicts_in_modelyard(
    tmp_path, frame, classifier, serialization_format
):
    signature = mlflow_infer_signature(frame, classifier.predict(frame))
    mlflow.sklearn.save_model(
        classifier,
        tmp_path / "m",
        serialization_format=serialization_format,
        signature=signature,
        input_example=frame.head(3),
    )
    loaded = modelyard.pyfunc.load_model(str(tmp_path / "m"))
    assert np.array_equal(loaded.predict(frame), classifier.predict(frame))
    assert np.array_equal(
        modelyard.sklearn.load_model(str(tmp_path / "m")).predict(frame), classifier.predict(frame)
    )
    assert loaded.metadata.signature.to_dict() == signature.to_dict()
    pd.testing.assert_frame_equal(loaded.input_example, frame.head(3).reset_index(drop=True))


_LOAD_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
import modelyard.sklearn
model = modelyard.sklearn.load_model(sys.argv[1])
print(model.predict(np.array([[1.0, 2.0], [5.0, 6.0]])).tolist())
print("torch" in sys.modules)
import sklearn.externals.array_api_compat.torch  # the shim skops' import skipped still imports after
print("torch" in sys.modules)
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_skops_model_loads_without_importing_torch(tmp_path, frame, classifier):
    """skops.io's import walks every scikit-learn package, the array-API shim that imports torch
    included: ~350 MB and ~1 s in each serving worker for a model that never uses torch."""
    mlflow.sklearn.save_model(classifier, tmp_path / "m", serialization_format="skops")
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, str(tmp_path / "m")],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split("\n")  # fmt: skip
    expected = classifier.predict(pd.DataFrame([[1.0, 2.0], [5.0, 6.0]], columns=frame.columns)).tolist()
    assert out[:3] == [str(expected), "False", "True"]


def test_modelyard_saved_sklearn_loads_and_predicts_in_mlflow(tmp_path, frame, classifier):
    modelyard.sklearn.save_model(classifier, tmp_path / "m", input_example=frame.head(3))
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert np.array_equal(loaded.predict(frame), classifier.predict(frame))
    assert np.array_equal(
        mlflow.sklearn.load_model(str(tmp_path / "m")).predict(frame), classifier.predict(frame)
    )
    # The signature inferred from the example is the one mlflow infers from it.
    mlflow.sklearn.save_model(classifier, tmp_path / "theirs", input_example=frame.head(3))
    assert (
        loaded.metadata.signature.to_dict()
        == mlflow.models.Model.load(str(tmp_path / "theirs")).signature.to_dict()
    )
    pd.testing.assert_frame_equal(loaded.input_example, frame.head(3).reset_index(drop=True))
    # mlflow enforces our signature too.
    with pytest.raises(mlflow.exceptions.MlflowException):
        loaded.predict(frame[["a"]])


def test_tensor_model_cross_loads_both_ways(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    reg = LinearRegression().fit(x, x.sum(axis=1))
    modelyard.sklearn.save_model(reg, tmp_path / "ours", input_example=x[:2])
    mlflow.sklearn.save_model(reg, tmp_path / "theirs", input_example=x[:2])
    assert np.allclose(mlflow.pyfunc.load_model(str(tmp_path / "ours")).predict(x), reg.predict(x))
    assert np.allclose(modelyard.pyfunc.load_model(str(tmp_path / "theirs")).predict(x), reg.predict(x))
    ours = (tmp_path / "ours" / "input_example.json").read_text()
    theirs = (tmp_path / "theirs" / "input_example.json").read_text()
    assert json.loads(ours) == json.loads(theirs)


def test_mlflow_custom_python_model_with_artifacts_loads_in_modelyard(tmp_path, frame):
    (tmp_path / "offset.txt").write_text("0.5")
    mlflow.pyfunc.save_model(
        tmp_path / "m",
        python_model=MlflowScaler(),
        artifacts={"offset": str(tmp_path / "offset.txt")},
        signature=mlflow_infer_signature(frame, params={"scale": 2.0}),
    )
    reference = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    loaded = modelyard.pyfunc.load_model(str(tmp_path / "m"))
    assert np.allclose(loaded.predict(frame), reference.predict(frame))
    assert np.allclose(
        loaded.predict(frame, params={"scale": 3.0}), reference.predict(frame, params={"scale": 3.0})
    )


def test_modelyard_custom_python_model_loads_in_mlflow(tmp_path, frame):
    (tmp_path / "offset.txt").write_text("0.5")
    modelyard.pyfunc.save_model(
        tmp_path / "m",
        python_model=YardScaler(),
        artifacts={"offset": str(tmp_path / "offset.txt")},
        signature=infer_signature(frame, params={"scale": 2.0}),
    )
    reference = modelyard.pyfunc.load_model(str(tmp_path / "m"))
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert np.allclose(loaded.predict(frame), reference.predict(frame))
    assert np.allclose(
        loaded.predict(frame, params={"scale": 3.0}), reference.predict(frame, params={"scale": 3.0})
    )


@pytest.mark.parametrize(
    "example",
    [
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [True, False], "d": [1.5, 2.5]}),
        np.zeros((2, 3), dtype=np.float32),
        {"a": 1, "b": "x"},
        ["a", "b"],
        [{"a": 1, "b": 2.0}],
        {"x": [1, 2]},
        {"t": np.array([1, 2])},
        pd.DataFrame(
            {
                "i": pd.Series([1, None], dtype="Int64"),
                "f": [1.0, np.nan],
                "s": ["a", None],
                "l": [[1, 2], None],
                "o": [{"k": 1}, {"k": 2}],
            }
        ),
    ],
    ids=[
        "dataframe",
        "ndarray",
        "dict",
        "list",
        "records",
        "dict-of-list",
        "dict-of-arrays",
        "missing-values",
    ],
)
def test_inferred_signatures_match_mlflow(example):
    params = {"k": 1, "s": "v", "l": [1.0, 2.0]}
    ours = {
        k: json.loads(v) if v else v for k, v in infer_signature(example, params=params).to_dict().items()
    }
    theirs = {
        k: json.loads(v) if v else v
        for k, v in mlflow_infer_signature(example, params=params).to_dict().items()
    }
    assert ours == theirs


def test_both_refuse_an_input_that_breaks_the_signature(tmp_path, frame, classifier):
    modelyard.sklearn.save_model(classifier, tmp_path / "m", signature=infer_signature(frame))
    bad = frame.assign(b=frame["b"] + 0.5)
    with pytest.raises(ModelyardException) as info:
        modelyard.pyfunc.load_model(str(tmp_path / "m")).predict(bad)
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE and "column b" in info.value.message
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(bad)


# --- through a tracking server ------------------------------------------------------------------------


def test_model_logged_by_mlflow_loads_in_modelyard_by_every_uri(
    tracking_uri, experiment_name, frame, classifier
):
    mlflow.set_experiment(experiment_name)
    name = f"mlflow-logged-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            classifier,
            name="model",
            signature=mlflow_infer_signature(frame, classifier.predict(frame)),
            registered_model_name=name,
        )
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "1", "Production")
    expected = classifier.predict(frame)
    for uri in (
        info.model_uri,
        f"runs:/{run.info.run_id}/model",
        f"models:/{name}/1",
        f"models:/{name}@champion",
        f"models:/{name}/Production",
        f"models:/{name}/latest",
    ):
        assert np.array_equal(modelyard.pyfunc.load_model(uri).predict(frame), expected), uri
    assert np.array_equal(modelyard.sklearn.load_model(f"models:/{name}/1").predict(frame), expected)


def test_model_logged_by_modelyard_loads_in_mlflow(tracking_uri, experiment_name, frame, classifier):
    import modelyard

    modelyard.set_experiment(experiment_name)
    name = f"yard-logged-{uuid.uuid4().hex[:8]}"
    with modelyard.start_run() as run:
        info = modelyard.sklearn.log_model(
            classifier, name="model", input_example=frame.head(5), registered_model_name=name
        )
    assert info.model_id and info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == run.info.run_id and info.registered_model_version == 1
    expected = classifier.predict(frame)
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/model", f"models:/{name}/1"):
        assert np.array_equal(mlflow.pyfunc.load_model(uri).predict(frame), expected), uri
        assert np.array_equal(modelyard.pyfunc.load_model(uri).predict(frame), expected), uri
    logged = mlflow.MlflowClient().get_logged_model(info.model_id)
    assert logged.source_run_id == run.info.run_id and str(logged.status) in (
        "READY",
        "LoggedModelStatus.READY",
    )
    found = mlflow.MlflowClient().search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert [(m.model_id, m.name) for m in found] == [(info.model_id, "model")]


def test_modelyard_load_of_an_unknown_version_is_not_found(tracking_uri, experiment_name, frame, classifier):
    mlflow.set_experiment(experiment_name)
    name = f"missing-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run():
        mlflow.sklearn.log_model(classifier, name="model", registered_model_name=name)
    with pytest.raises(ModelyardException) as info:
        modelyard.pyfunc.load_model(f"models:/{name}/7")
    assert info.value.error_code == errors.RESOURCE_DOES_NOT_EXIST
    with pytest.raises(ModelyardException) as info:
        modelyard.pyfunc.load_model(f"models:/{name}/Staging")
    assert info.value.error_code == errors.RESOURCE_DOES_NOT_EXIST


def test_input_example_with_params_reads_back_in_both(tmp_path, frame, classifier):
    example = (frame.head(2), {"threshold": 0.5})
    modelyard.sklearn.save_model(classifier, tmp_path / "ours", input_example=example)
    mlflow.sklearn.save_model(
        classifier, tmp_path / "theirs", input_example=example, serialization_format="cloudpickle"
    )
    for directory in ("ours", "theirs"):
        path = str(tmp_path / directory)
        meta = mlflow.models.Model.load(path)
        pd.testing.assert_frame_equal(meta.load_input_example(path), frame.head(2).reset_index(drop=True))
        assert meta.load_input_example_params(path) == {"threshold": 0.5}
        pd.testing.assert_frame_equal(
            modelyard.pyfunc.load_model(path).input_example, frame.head(2).reset_index(drop=True)
        )
    ours = modelyard.pyfunc.load_model(str(tmp_path / "ours")).metadata.signature.to_dict()
    theirs = mlflow.models.Model.load(str(tmp_path / "theirs")).signature.to_dict()
    assert {k: json.loads(v) for k, v in ours.items()} == {k: json.loads(v) for k, v in theirs.items()}


# Where modelyard converts more than mlflow does, on purpose: conversions numpy calls "safe".
_LENIENT = {"int->double", "str->datetime", "tensor-f32->f64", "tensor-i64->f64"}
_ENFORCEMENT_CASES = {
    "int->double": ('[{"type":"double","name":"x"}]', lambda: pd.DataFrame({"x": [1, 2]})),
    "int32->long": (
        '[{"type":"long","name":"x"}]',
        lambda: pd.DataFrame({"x": np.array([1, 2], dtype=np.int32)}),
    ),
    "float->long": ('[{"type":"long","name":"x"}]', lambda: pd.DataFrame({"x": [1.5, 2.0]})),
    "str->double": ('[{"type":"double","name":"x"}]', lambda: pd.DataFrame({"x": ["a", "b"]})),
    "bool->long": ('[{"type":"long","name":"x"}]', lambda: pd.DataFrame({"x": [True, False]})),
    "missing-column": (
        '[{"type":"long","name":"x"},{"type":"long","name":"y"}]',
        lambda: pd.DataFrame({"x": [1]}),
    ),
    "extra-column": ('[{"type":"long","name":"x"}]', lambda: pd.DataFrame({"x": [1], "z": [2]})),
    "none-in-string": ('[{"type":"string","name":"x"}]', lambda: pd.DataFrame({"x": ["a", None]})),
    "f32->double": (
        '[{"type":"double","name":"x"}]',
        lambda: pd.DataFrame({"x": np.array([1, 2], dtype=np.float32)}),
    ),
    "f64->float": ('[{"type":"float","name":"x"}]', lambda: pd.DataFrame({"x": [1.5, 2.5]})),
    "i64->float": ('[{"type":"float","name":"x"}]', lambda: pd.DataFrame({"x": [1, 2]})),
    "long->integer": ('[{"type":"integer","name":"x"}]', lambda: pd.DataFrame({"x": [1, 2]})),
    "str->datetime": (
        '[{"type":"datetime","name":"x"}]',
        lambda: pd.DataFrame({"x": ["2020-01-01", "2020-01-02"]}),
    ),
    "int->string": ('[{"type":"string","name":"x"}]', lambda: pd.DataFrame({"x": [1, 2]})),
    "int->bool": ('[{"type":"boolean","name":"x"}]', lambda: pd.DataFrame({"x": [1, 0]})),
    "nan-in-double": ('[{"type":"double","name":"x"}]', lambda: pd.DataFrame({"x": [1.0, np.nan]})),
    "nan-in-long": ('[{"type":"long","name":"x"}]', lambda: pd.DataFrame({"x": [1.0, np.nan]})),
    "records": ('[{"type":"long","name":"x"},{"type":"string","name":"y"}]', lambda: [{"x": 1, "y": "a"}]),
    "dict-of-columns": ('[{"type":"long","name":"x"}]', lambda: {"x": [1, 2]}),
    "tensor": (
        '[{"type":"tensor","tensor-spec":{"dtype":"float64","shape":[-1,2]}}]',
        lambda: np.ones((3, 2)),
    ),
    "tensor-f32->f64": (
        '[{"type":"tensor","tensor-spec":{"dtype":"float64","shape":[-1,2]}}]',
        lambda: np.ones((3, 2), dtype=np.float32),
    ),
    "tensor-i64->f64": (
        '[{"type":"tensor","tensor-spec":{"dtype":"float64","shape":[-1,2]}}]',
        lambda: np.ones((3, 2), dtype=np.int64),
    ),
    "tensor-shape": (
        '[{"type":"tensor","tensor-spec":{"dtype":"float64","shape":[-1,2]}}]',
        lambda: np.ones((3, 3)),
    ),
    "tensor-f64->f32": (
        '[{"type":"tensor","tensor-spec":{"dtype":"float32","shape":[-1,2]}}]',
        lambda: np.ones((3, 2)),
    ),
}


@pytest.mark.parametrize("case", sorted(_ENFORCEMENT_CASES))
def test_enforcement_accepts_and_refuses_what_mlflow_does(case):
    from mlflow.models.utils import _enforce_schema as mlflow_enforce
    from mlflow.types.schema import Schema as MlflowSchema

    from modelyard.models import Schema, enforce_schema

    spec, make = _ENFORCEMENT_CASES[case]

    def accepted(call) -> bool:
        try:
            call()
        except Exception:  # each library raises its own exception type
            return False
        return True

    theirs = accepted(lambda: mlflow_enforce(make(), MlflowSchema.from_json(spec)))
    try:  # ours must refuse with a ModelyardException (a 400), never anything else
        enforce_schema(make(), Schema.from_json(spec))
        ours = True
    except ModelyardException:
        ours = False
    assert ours == (True if case in _LENIENT else theirs)
    if case in _LENIENT:
        assert not theirs, f"mlflow now accepts {case}; drop it from _LENIENT"


_PLAIN_MODEL_SOURCE = '''
import mlflow.pyfunc


class PlainScaler(mlflow.pyfunc.PythonModel):
    """A custom model on mlflow's base class: nothing of modelyard's (its class is pickled by value)."""

    def load_context(self, context):
        self.offset = float(open(context.artifacts["offset"]).read())

    def predict(self, context, model_input, params=None):
        return model_input["a"] * 2.0 + self.offset
'''

_LOAD_WITHOUT_MODELYARD = """
import sys
sys.modules["modelyard"] = None  # any import of modelyard now fails
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(list(model.predict(pd.DataFrame({"a": [1.0, 2.0]}))))
"""


def test_modelyard_custom_model_writes_mlflows_mlmodel_and_loads_without_modelyard(tmp_path):
    import subprocess
    import sys

    import yaml

    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(_PLAIN_MODEL_SOURCE, namespace)  # noqa: S102 - a class outside any importable module
    (tmp_path / "offset.txt").write_text("0.5")
    modelyard.pyfunc.save_model(
        tmp_path / "m",
        python_model=namespace["PlainScaler"](),
        artifacts={"offset": str(tmp_path / "offset.txt")},
    )
    flavor = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.model" and flavor["python_model"] == "python_model.pkl"
    assert not any(
        r.startswith("modelyard") for r in (tmp_path / "m" / "requirements.txt").read_text().split()
    )
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_MODELYARD, str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[2.5, 4.5]"


def test_a_model_whose_class_needs_modelyard_names_it_in_its_requirements(tmp_path, frame):
    (tmp_path / "offset.txt").write_text("0.5")
    modelyard.pyfunc.save_model(
        tmp_path / "m", python_model=YardScaler(), artifacts={"offset": str(tmp_path / "offset.txt")}
    )
    requirements = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert any(r.startswith("modelyard") for r in requirements)
    assert np.allclose(mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(frame), frame["a"] * 2.0 + 0.5)


@pytest.mark.parametrize("serialization_format", ["skops", "cloudpickle", "pickle", None])
def test_sklearn_models_logged_by_mlflow_serve_in_every_format(
    tracking_uri, experiment_name, frame, classifier, serialization_format
):
    """mlflow 3.17 logs sklearn models as skops by default (None); modelyard's scoring app, built as the
    serving workers build it, loads each format from the registry and answers as mlflow predicts."""
    from fastapi.testclient import TestClient

    from modelyard.serving.app import create_app
    from modelyard.settings import Settings

    mlflow.set_experiment(experiment_name)
    name = f"served-{serialization_format}-{uuid.uuid4().hex[:6]}"
    extra = {"serialization_format": serialization_format} if serialization_format else {}
    with mlflow.start_run():
        mlflow.sklearn.log_model(classifier, name="model", registered_model_name=name, **extra)
    flavor = mlflow.models.get_model_info(f"models:/{name}/1").flavors["sklearn"]
    assert flavor["serialization_format"] == (serialization_format or "skops")
    with TestClient(create_app(Settings(model_uri=f"models:/{name}/1")), base_url="http://localhost") as served:
        answer = served.post("/invocations", json={"dataframe_split": frame.to_dict(orient="split")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == classifier.predict(frame).tolist()


def test_the_sklearn_extra_and_the_serving_image_install_skops():
    import tomllib

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("skops") for r in extras["sklearn"])
    dockerfile = (root / "services" / "serving" / "Dockerfile").read_text()
    assert '"modelyard[server,sklearn]"' in dockerfile
