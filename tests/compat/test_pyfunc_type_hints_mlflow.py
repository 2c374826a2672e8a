"""Type-hinted PythonModels, functions as models and predict_stream, across modelyard and mlflow 3.17."""

from __future__ import annotations

import json
from typing import Optional

import mlflow
import mlflow.pyfunc
import pandas as pd
import pydantic
import pytest
import yaml

import modelyard.pyfunc
from modelyard.exceptions import ModelyardException

pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("allow_mlflow_unpickling")]


class Message(pydantic.BaseModel):
    role: str
    content: Optional[str] = None  # noqa: UP045 - the Optional spelling mlflow documents
    tokens: int = 1


class YardUpper(modelyard.pyfunc.PythonModel):
    def predict(self, model_input: list[str], params=None) -> list[str]:
        return [text.upper() for text in model_input]


class MlflowUpper(mlflow.pyfunc.PythonModel):
    def predict(self, model_input: list[str], params=None) -> list[str]:
        return [text.upper() for text in model_input]


class YardChat(modelyard.pyfunc.PythonModel):
    def predict(self, context, model_input: list[Message], params=None) -> list[str]:
        return [f"{m.role}:{m.content}:{m.tokens}" for m in model_input]


class MlflowChat(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[Message], params=None) -> list[str]:
        return [f"{m.role}:{m.content}:{m.tokens}" for m in model_input]


class YardStreamer(modelyard.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return list(model_input["text"])

    def predict_stream(self, context, model_input, params=None):
        yield from str(model_input)


#: Given requirements spare mlflow's inference, which loads the model in a subprocess (~20 s a save here).
NO_INFERENCE = ["cloudpickle", "pydantic"]

HINTS = [
    list[str], list[int], list[float], list[bool], list[bytes], list[list[str]], list[dict[str, int]], list[Message],
]  # fmt: skip


def _model_class(base: type, hint: object) -> type:
    def predict(self, model_input, params=None):  # noqa: ANN001
        return model_input

    predict.__annotations__ = {"model_input": hint, "return": list[str]}
    return type(f"Hinted{base.__module__.split('.')[0]}", (base,), {"predict": predict})


@pytest.mark.parametrize("hint", HINTS, ids=[str(h) for h in HINTS])
def test_the_signature_from_a_type_hint_is_mlflows(tmp_path, hint) -> None:
    modelyard.pyfunc.save_model(
        tmp_path / "ours", python_model=_model_class(modelyard.pyfunc.PythonModel, hint)()
    )
    mlflow.pyfunc.save_model(
        tmp_path / "theirs",
        python_model=_model_class(mlflow.pyfunc.PythonModel, hint)(),
        pip_requirements=NO_INFERENCE,
    )
    ours, theirs = (yaml.safe_load((tmp_path / d / "MLmodel").read_text()) for d in ("ours", "theirs"))
    assert {k: json.loads(v) if v else v for k, v in ours["signature"].items()} == {
        k: json.loads(v) if v else v for k, v in theirs["signature"].items()
    }
    assert ours["is_signature_from_type_hint"] is theirs["is_signature_from_type_hint"] is True


@pytest.mark.parametrize(
    ("saver", "model"),
    [(modelyard.pyfunc.save_model, YardUpper()), (mlflow.pyfunc.save_model, MlflowUpper())],
    ids=["saved-by-modelyard", "saved-by-mlflow"],
)
def test_a_list_of_strings_model_converts_and_checks_input_in_both(tmp_path, saver, model) -> None:
    saver(tmp_path / "m", python_model=model, pip_requirements=NO_INFERENCE)
    for load in (modelyard.pyfunc.load_model, mlflow.pyfunc.load_model):
        loaded = load(str(tmp_path / "m"))
        assert loaded.predict(["a", "b"]) == ["A", "B"]
        assert loaded.predict(pd.DataFrame({"n": [1], "text": ["c"]})) == ["C"]  # the first string column
        with pytest.raises((ModelyardException, mlflow.exceptions.MlflowException)) as info:
            loaded.predict([1, 2])
        assert "Expected type str, but got int" in str(info.value)


@pytest.mark.parametrize(
    ("saver", "model"),
    [(modelyard.pyfunc.save_model, YardChat()), (mlflow.pyfunc.save_model, MlflowChat())],
    ids=["saved-by-modelyard", "saved-by-mlflow"],
)
def test_a_pydantic_hint_gets_models_from_dicts_and_frames_in_both(tmp_path, saver, model) -> None:
    saver(tmp_path / "m", python_model=model, pip_requirements=NO_INFERENCE)
    for load in (modelyard.pyfunc.load_model, mlflow.pyfunc.load_model):
        loaded = load(str(tmp_path / "m"))
        assert loaded.predict([{"role": "user", "content": "hi"}]) == ["user:hi:1"]
        assert loaded.predict(pd.DataFrame({"role": ["sys"], "content": [None], "tokens": [3]})) == [
            "sys:None:3"
        ]
        with pytest.raises((ModelyardException, mlflow.exceptions.MlflowException)):
            loaded.predict([{"content": "no role"}])


def test_a_function_is_a_model(tmp_path) -> None:
    def shout(model_input: list[str]) -> list[str]:
        return [f"{text}!" for text in model_input]

    info = modelyard.pyfunc.save_model(tmp_path / "m", python_model=shout)
    assert info.signature.inputs.to_list() == [{"type": "string", "required": True}]
    for load in (modelyard.pyfunc.load_model, mlflow.pyfunc.load_model):
        assert load(str(tmp_path / "m")).predict(["hey"]) == ["hey!"]


def test_predict_stream_is_served_by_both_loaders(tmp_path) -> None:
    modelyard.pyfunc.save_model(tmp_path / "m", python_model=YardStreamer())
    flavor = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["streamable"] is True
    for load in (modelyard.pyfunc.load_model, mlflow.pyfunc.load_model):
        assert list(load(str(tmp_path / "m")).predict_stream("abc")) == ["a", "b", "c"]
    modelyard.pyfunc.save_model(tmp_path / "plain", python_model=YardUpper())
    with pytest.raises(ModelyardException, match="predict_stream"):
        modelyard.pyfunc.load_model(str(tmp_path / "plain")).predict_stream(["a"])
