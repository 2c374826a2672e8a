"""The MLmodel file, model directories on local disk, model URI parsing, and the public surface."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression

import modelyard.models as models_pkg
import modelyard.pyfunc as pyfunc
import modelyard.sklearn as msk
from modelyard import errors
from modelyard.exceptions import ModelyardException
from modelyard.models.mlmodel import Model
from modelyard.models.uri import ModelReference, download_model, parse_models_uri, parse_runs_uri


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 2, 3, 4]})


@pytest.fixture()
def classifier(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame, [0, 1, 0, 1])


def test_public_surface_is_pinned():
    assert set(models_pkg.__all__) >= {
        "Model",
        "ModelSignature",
        "infer_signature",
        "Schema",
        "ColSpec",
        "TensorSpec",
    }
    assert set(pyfunc.__all__) >= {
        "PythonModel",
        "PythonModelContext",
        "PyFuncModel",
        "load_model",
        "save_model",
        "log_model",
    }
    assert set(msk.__all__) >= {"save_model", "log_model", "load_model"}


def test_sklearn_directory_has_mlflow_layout(tmp_path, frame, classifier):
    msk.save_model(classifier, tmp_path / "m", input_example=frame.head(2))
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert files == {
        "MLmodel",
        "model.pkl",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
    }
    raw = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert raw["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert raw["flavors"]["python_function"]["env"] == {
        "conda": "conda.yaml",
        "virtualenv": "python_env.yaml",
    }
    assert raw["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert json.loads(raw["signature"]["inputs"])[0] == {"type": "double", "name": "a", "required": True}
    assert raw["saved_input_example_info"]["type"] == "dataframe"
    assert json.loads((tmp_path / "m" / "input_example.json").read_text()) == {
        "columns": ["a", "b"],
        "data": [[1.0, 1], [2.0, 2]],
    }
    assert any(
        line.startswith("scikit-learn==")
        for line in (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    )
    assert yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())["dependencies"] == [
        "-r requirements.txt"
    ]


def test_sklearn_round_trip_predicts_the_same(tmp_path, frame, classifier):
    msk.save_model(classifier, tmp_path / "m", serialization_format="pickle")
    assert (msk.load_model(str(tmp_path / "m")).predict(frame) == classifier.predict(frame)).all()
    loaded = pyfunc.load_model(str(tmp_path / "m"))
    assert (loaded.predict(frame) == classifier.predict(frame)).all()
    assert loaded.metadata.signature is None


def test_pyfunc_predict_fn_is_honoured(tmp_path, frame, classifier):
    msk.save_model(classifier, tmp_path / "m", pyfunc_predict_fn="predict_proba")
    assert np.allclose(pyfunc.load_model(str(tmp_path / "m")).predict(frame), classifier.predict_proba(frame))


def test_signature_violations_fail_before_the_model_runs(tmp_path, frame, classifier):
    msk.save_model(classifier, tmp_path / "m", input_example=frame)
    loaded = pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(ModelyardException) as info:
        loaded.predict(frame[["a"]])
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE and "'b'" in info.value.message


def test_saving_over_a_non_empty_directory_is_refused(tmp_path, classifier):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(ModelyardException) as info:
        msk.save_model(classifier, tmp_path / "m")
    assert info.value.error_code == errors.RESOURCE_ALREADY_EXISTS
    assert (tmp_path / "m" / "keep.txt").read_text() == "x"


def test_failed_save_leaves_no_directory(tmp_path, classifier):
    with pytest.raises(ModelyardException):
        msk.save_model(classifier, tmp_path / "m", code_paths=[str(tmp_path / "missing.py")])
    assert not (tmp_path / "m").exists()


class Doubler(pyfunc.PythonModel):
    def load_context(self, context):
        with open(context.artifacts["factor"]) as f:
            self.factor = float(f.read())

    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return model_input["x"] * self.factor * scale


def test_python_model_artifacts_params_and_inferred_signature(tmp_path):
    (tmp_path / "factor.txt").write_text("2")
    example = pd.DataFrame({"x": [1.0, 2.0]})
    signature = models_pkg.infer_signature(example, params={"scale": 1.0})
    pyfunc.save_model(
        tmp_path / "m",
        python_model=Doubler(),
        artifacts={"factor": str(tmp_path / "factor.txt")},
        signature=signature,
        input_example=example,
    )
    conf = Model.load(tmp_path / "m").flavor("python_function")
    assert conf["artifacts"]["factor"]["path"] == "artifacts/factor.txt"
    loaded = pyfunc.load_model(str(tmp_path / "m"))
    assert loaded.predict(example).tolist() == [2.0, 4.0]
    assert loaded.predict(example, params={"scale": 10}).tolist() == [20.0, 40.0]
    assert isinstance(loaded.unwrap_python_model(), Doubler)


def test_code_paths_are_importable_at_load_time(tmp_path, monkeypatch):
    module_name = "modelyard_test_helper_mod"
    source = tmp_path / "src" / f"{module_name}.py"
    source.parent.mkdir()
    source.write_text("def triple(v):\n    return v * 3\n")
    model_file = tmp_path / "src" / "tripler_model.py"
    model_file.write_text(
        textwrap.dedent(
            f"""
            import modelyard.pyfunc as pyfunc

            class Tripler(pyfunc.PythonModel):
                def predict(self, context, model_input, params=None):
                    import {module_name}
                    return [{module_name}.triple(v) for v in model_input]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import tripler_model

    pyfunc.save_model(tmp_path / "m", python_model=tripler_model.Tripler(), code_paths=[str(source)])
    assert (tmp_path / "m" / "code" / f"{module_name}.py").is_file()
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "src")])
    loaded = pyfunc.load_model(str(tmp_path / "m"))
    assert loaded.predict([1, 2]) == [3, 6]


def test_loader_module_with_data_path(tmp_path):
    pkg = tmp_path / "loaders"
    pkg.mkdir()
    (pkg / "my_loader_mod.py").write_text(
        "class M:\n"
        "    def __init__(self, text):\n        self.text = text\n"
        "    def predict(self, data):\n        return [self.text + str(d) for d in data]\n"
        "def _load_pyfunc(path):\n    return M(open(path).read())\n"
    )
    (tmp_path / "prefix.txt").write_text("p-")
    pyfunc.save_model(
        tmp_path / "m",
        loader_module="my_loader_mod",
        data_path=str(tmp_path / "prefix.txt"),
        code_paths=[str(pkg / "my_loader_mod.py")],
    )
    assert pyfunc.load_model(str(tmp_path / "m")).predict([1]) == ["p-1"]


def test_unknown_mlmodel_keys_survive_a_round_trip(tmp_path):
    (tmp_path / "MLmodel").write_text(
        yaml.safe_dump(
            {
                "flavors": {"python_function": {"loader_module": "x"}},
                "mlflow_version": "3.17.2",
                "future_key": [1],
            }
        )
    )
    model = Model.load(tmp_path)
    model.save(tmp_path)
    data = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert data["future_key"] == [1] and data["mlflow_version"] == "3.17.2"


def test_missing_mlmodel_is_not_found(tmp_path):
    with pytest.raises(ModelyardException) as info:
        download_model(str(tmp_path))
    assert info.value.error_code == errors.RESOURCE_DOES_NOT_EXIST


def test_tensor_model_round_trip_with_ndarray_example(tmp_path):
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])
    reg = LinearRegression().fit(x, [1.0, 2.0, 3.0])
    msk.save_model(reg, tmp_path / "m", input_example=x[:2])
    loaded = pyfunc.load_model(f"file://{tmp_path / 'm'}")
    assert np.allclose(loaded.predict(x), reg.predict(x))
    assert np.array_equal(loaded.input_example, x[:2])
    with pytest.raises(ModelyardException):
        loaded.predict(np.ones((2, 3)))


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/churn/3", ModelReference(name="churn", version="3")),
        ("models:/churn/Production", ModelReference(name="churn", stage="Production")),
        ("models:/churn/staging", ModelReference(name="churn", stage="Staging")),
        ("models:/churn/latest", ModelReference(name="churn", stage="latest")),
        ("models:/churn@champion", ModelReference(name="churn", alias="champion")),
        ("models:/m-0123abcd", ModelReference(model_id="m-0123abcd")),
    ],
)
def test_models_uris_parse(uri, expected):
    assert parse_models_uri(uri) == expected


@pytest.mark.parametrize("uri", ["models:/churn/Prod", "models:/", "models:/a/b/c", "models:/a@"])
def test_bad_models_uris_are_invalid_parameter(uri):
    with pytest.raises(ModelyardException) as info:
        parse_models_uri(uri)
    assert info.value.error_code == errors.INVALID_PARAMETER_VALUE


def test_runs_uris_parse_and_refuse_escapes():
    assert parse_runs_uri("runs:/abc/model") == ("abc", "model")
    assert parse_runs_uri("runs:/abc/a/b/") == ("abc", "a/b")
    with pytest.raises(ModelyardException):
        parse_runs_uri("runs:/abc/../other/model")


def test_metadata_exposes_mlflow_schema_accessors(tmp_path, frame, classifier):
    msk.save_model(classifier, tmp_path / "m", input_example=frame)
    metadata = pyfunc.load_model(str(tmp_path / "m")).metadata
    assert metadata.get_input_schema().input_names() == ["a", "b"]
    assert (
        not metadata.get_output_schema().is_tensor_spec
    )  # one prediction per row: a column, as MLflow infers
    assert metadata.get_params_schema() is None


def test_input_example_with_params_uses_mlflows_layout(tmp_path, frame):
    example = (frame.head(2), {"scale": 3.0})
    pyfunc.save_model(
        tmp_path / "m",
        python_model=Doubler(),
        input_example=example,
        artifacts={"factor": str(_factor(tmp_path))},
    )
    model = Model.load(tmp_path / "m")
    assert model.saved_input_example_info["params"] == "true"
    stored = json.loads((tmp_path / "m" / "input_example.json").read_text())
    assert stored["params"] == {"scale": 3.0} and stored["inputs"]["columns"] == ["a", "b"]
    assert json.loads((tmp_path / "m" / "serving_input_example.json").read_text())["params"] == {"scale": 3.0}
    assert [p.name for p in model.signature.params.params] == ["scale"]
    pd.testing.assert_frame_equal(pyfunc.load_model(str(tmp_path / "m")).input_example, frame.head(2))


def _factor(tmp_path):
    path = tmp_path / "factor.txt"
    path.write_text("2")
    return path


def test_model_config_reaches_custom_models_and_is_ignored_by_sklearn(tmp_path, frame, classifier):
    class Configured(pyfunc.PythonModel):
        def load_context(self, context):
            self.config = dict(context.model_config)

        def predict(self, context, model_input, params=None):
            return [self.config.get("label")] * len(model_input)

    pyfunc.save_model(tmp_path / "custom", python_model=Configured(), model_config={"label": "saved"})
    assert pyfunc.load_model(str(tmp_path / "custom")).predict([1]) == ["saved"]
    assert pyfunc.load_model(str(tmp_path / "custom"), model_config={"label": "override"}).predict([1]) == [
        "override"
    ]
    msk.save_model(classifier, tmp_path / "sk")
    assert len(pyfunc.load_model(str(tmp_path / "sk"), model_config={"x": 1}).predict(frame)) == len(frame)
