"""The same models served by `mlflow models serve --env-manager local` and by modelyard's scoring service.

For every payload both answer the same status class; for successes the JSON bodies are equal. Error
messages may differ. The models are saved by MLflow itself, so this also checks that modelyard
serves MLflow's model format unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tests.integration.serving_models import FEATURES, SERVING, frame, import_source
from tests.support.mlflow_processes import run_mlflow
from tests.support.services import start_service

pytestmark = pytest.mark.compat

LABEL_MODEL_SOURCE = '''
import pandas as pd
import mlflow.pyfunc


class LabelModel(mlflow.pyfunc.PythonModel):
    """A DataFrame out, with a string column and an inference parameter."""

    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        return pd.DataFrame(
            {"score": model_input["a"] * scale, "label": ["hi" if a > 0 else "lo" for a in model_input["a"]]}
        )
'''


@dataclass
class Pair:
    mlflow_url: str
    modelyard_url: str


@contextmanager
def _mlflow_models_serve(model_dir: Path, workdir: Path) -> Iterator[str]:
    args = ["models", "serve", "-m", str(model_dir), "--env-manager", "local", "--workers", "1"]
    with run_mlflow(args, workdir, health_path="/ping", timeout=120) as url:
        yield url


@contextmanager
def _both(model_dir: Path, workdir: Path) -> Iterator[Pair]:
    env = {"MODELYARD_MODEL_URI": str(model_dir)}
    with _mlflow_models_serve(model_dir, workdir / "mlflow") as mlflow_url:
        with start_service(SERVING, workdir / "modelyard", env=env, workers=1) as service:
            yield Pair(mlflow_url, service.url)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    base = tmp_path_factory.mktemp("parity-classifier")
    x = frame(80, seed=5)
    y = ["yes" if a + b > 0 else "no" for a, b in zip(x["a"], x["b"], strict=True)]
    model = LogisticRegression().fit(x, y)
    mlflow.sklearn.save_model(model, str(base / "model"), signature=infer_signature(x, model.predict(x)))
    with _both(base / "model", base) as pair:
        yield pair


@pytest.fixture(scope="module")
def label_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    base = tmp_path_factory.mktemp("parity-pyfunc")
    module, source = import_source(base / "src", "parity_label_model", LABEL_MODEL_SOURCE)
    example = frame(4)
    python_model = module.LabelModel()
    mlflow.pyfunc.save_model(
        str(base / "model"),
        python_model=python_model,
        code_paths=[str(source)],
        signature=infer_signature(example, python_model.predict(None, example), params={"scale": 1.0}),
    )
    with _both(base / "model", base) as pair:
        yield pair


ROWS = frame(6, seed=11)
RECORDS = ROWS.to_dict(orient="records")


def _payloads(rows: pd.DataFrame) -> dict[str, tuple[str, str]]:
    records = rows.to_dict(orient="records")
    return {
        "dataframe_split": (
            json.dumps({"dataframe_split": rows.to_dict(orient="split")}),
            "application/json",
        ),
        "dataframe_split without index": (
            json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows.values.tolist()}}),
            "application/json",
        ),
        "dataframe_records": (json.dumps({"dataframe_records": records}), "application/json"),
        "instances as records": (json.dumps({"instances": records}), "application/json"),
        "inputs as columns": (json.dumps({"inputs": rows.to_dict(orient="list")}), "application/json"),
        "csv": (rows.to_csv(index=False), "text/csv"),
        "csv with charset": (rows.to_csv(index=False), "text/csv; charset=utf-8"),
        "json with charset": (json.dumps({"dataframe_records": records}), "application/json; charset=utf-8"),
        "integers for double columns": (
            json.dumps({"dataframe_records": [{"a": 1, "b": -2, "c": 3}]}),
            "application/json",
        ),
        "extra column is ignored": (
            json.dumps({"dataframe_split": {"columns": [*FEATURES, "d"], "data": [[1.0, 2.0, 3.0, 4.0]]}}),
            "application/json",
        ),
        # errors: both must be 4xx, with the same status
        "malformed json": ("{not json", "application/json"),
        "empty body": ("", "application/json"),
        "a json list": ("[1, 2]", "application/json"),
        "no input field": ('{"foo": 1}', "application/json"),
        "two input fields": (json.dumps({"inputs": records, "instances": records}), "application/json"),
        "missing column": (
            json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}),
            "application/json",
        ),
        "missing column in csv": ("a,b\n1.0,2.0\n", "text/csv"),
        "string in a double column": (
            json.dumps({"dataframe_records": [{"a": "x", "b": 1.0, "c": 2.0}]}),
            "application/json",
        ),
        "split data not matching columns": (
            json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[1.0, 2.0]]}}),
            "application/json",
        ),
        "dataframe_split not an object": (json.dumps({"dataframe_split": "x"}), "application/json"),
        "xml": ("<a/>", "application/xml"),
        "latin-1 charset": (json.dumps({"dataframe_records": records}), "application/json; charset=latin-1"),
    }


PAYLOADS = _payloads(ROWS)


def _both_answer(pair: Pair, body: str, content_type: str) -> tuple[httpx.Response, httpx.Response]:
    headers = {"content-type": content_type}
    theirs = httpx.post(f"{pair.mlflow_url}/invocations", content=body, headers=headers, timeout=60)
    ours = httpx.post(f"{pair.modelyard_url}/invocations", content=body, headers=headers, timeout=60)
    return theirs, ours


def _assert_same(theirs: httpx.Response, ours: httpx.Response) -> None:
    if theirs.status_code < 400:
        assert ours.status_code == theirs.status_code, ours.text
        assert ours.json() == theirs.json()
    else:
        assert 400 <= theirs.status_code < 500, theirs.text
        assert ours.status_code == theirs.status_code, (theirs.text, ours.text)
        assert ours.text


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_classifier_answers_like_mlflow(classifier: Pair, case: str) -> None:
    _assert_same(*_both_answer(classifier, *PAYLOADS[case]))


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_custom_pyfunc_answers_like_mlflow(label_model: Pair, case: str) -> None:
    _assert_same(*_both_answer(label_model, *PAYLOADS[case]))


@pytest.mark.parametrize(
    "params",
    [{"scale": 3.0}, {"scale": 2}, {}, {"scale": "big"}, {"unknown": 1}],
    ids=["double", "int for double", "empty", "wrong type", "unknown param"],
)
def test_params_answer_like_mlflow(label_model: Pair, params: dict[str, object]) -> None:
    body = json.dumps({"dataframe_records": RECORDS, "params": params})
    _assert_same(*_both_answer(label_model, body, "application/json"))


def test_thousand_rows_answer_like_mlflow(classifier: Pair) -> None:
    rows = frame(1000, seed=1)
    theirs, ours = _both_answer(
        classifier, json.dumps({"dataframe_split": rows.to_dict(orient="split")}), "application/json"
    )
    assert theirs.status_code == 200
    _assert_same(theirs, ours)


def test_positional_rows_are_a_deliberate_extension(classifier: Pair) -> None:
    """MLflow refuses positional rows for a model with named columns; modelyard maps them onto the
    signature's columns in order (what SageMaker-style clients send), and says so in the docs."""
    theirs, ours = _both_answer(classifier, json.dumps({"inputs": ROWS.values.tolist()}), "application/json")
    assert theirs.status_code == 400
    assert ours.status_code == 200
    records, _ = _both_answer(classifier, *PAYLOADS["dataframe_records"])
    assert ours.json() == records.json()
