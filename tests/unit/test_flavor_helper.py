"""The steps every flavor's save_model/log_model share (`models/flavor.py`): keyword checks, clean-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LinearRegression

import modelyard.pyfunc
import modelyard.sklearn
from modelyard.models import flavor
from modelyard.models.mlmodel import Model


def test_an_unknown_keyword_is_a_type_error_as_for_a_declared_parameter(tmp_path: Path) -> None:
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    with pytest.raises(
        TypeError, match="save_model\\(\\) got an unexpected keyword argument 'input_exmaple'"
    ):
        modelyard.sklearn.save_model(model, tmp_path / "m", input_exmaple=[[1.0]])  # type: ignore[call-arg]
    with pytest.raises(
        TypeError, match="log_model\\(\\) got an unexpected keyword argument 'registered_name'"
    ):
        modelyard.sklearn.log_model(model, name="m", registered_name="x")  # type: ignore[call-arg]
    assert not (tmp_path / "m").exists()


def test_a_failing_writer_leaves_no_folder_and_the_shared_steps_apply(tmp_path: Path) -> None:
    def broken(directory: Path, model: Model, code: str | None) -> flavor.Written:
        (directory / "half-written").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        flavor.save(tmp_path / "m", broken, {})
    assert not (tmp_path / "m").exists()

    helper = tmp_path / "helper.py"
    helper.write_text("X = 1\n")

    def write(directory: Path, model: Model, code: str | None) -> flavor.Written:
        model.add_flavor("toy", code=code)
        return flavor.Written(["toy-lib==1"], None)

    saved = flavor.save(
        tmp_path / "ok",
        write,
        {"code_paths": [str(helper)], "metadata": {"k": "v"}, "extra_pip_requirements": ["b"]},
    )
    assert saved.flavors == {"toy": {"code": "code"}} and saved.metadata == {"k": "v"}
    assert (tmp_path / "ok" / "code" / "helper.py").is_file()
    assert (tmp_path / "ok" / "requirements.txt").read_text().split() == ["toy-lib==1", "b"]
    assert Model.load(tmp_path / "ok").metadata == {"k": "v"}


def test_split_options_separates_the_shared_keywords_from_a_librarys_own() -> None:
    shared, rest = flavor.split_options(
        {"signature": None, "step": 3, "_use_new_zipfile_serialization": False}, flavor.LogOptions
    )
    assert shared == {"signature": None, "step": 3} and rest == {"_use_new_zipfile_serialization": False}


def test_pyfunc_keeps_its_own_keywords_and_the_shared_ones(tmp_path: Path) -> None:
    class Double(modelyard.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return [2 * v for v in model_input["a"]]

    import pandas as pd

    modelyard.pyfunc.save_model(
        tmp_path / "m", python_model=Double(), input_example=pd.DataFrame({"a": [1.0]})
    )
    loaded = modelyard.pyfunc.load_model(str(tmp_path / "m"))
    assert list(loaded.predict(pd.DataFrame({"a": [1.5]}))) == [3.0]
    assert loaded.metadata.get_input_schema().input_names() == ["a"]
