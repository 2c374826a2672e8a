"""The generic model interface: any saved model loads as a `PyFuncModel` with one `predict`.

Two ways to save a pyfunc model, as in MLflow: a custom `PythonModel` instance (pickled, with
`artifacts` and `code_paths`), or `loader_module` + `data_path` naming a module whose `_load_pyfunc(path)`
builds the model from the copied data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.exceptions import ModelyardException
from modelyard.models import flavor
from modelyard.models.environment import default_requirements
from modelyard.models.mlmodel import Model, ModelInfo
from modelyard.pyfunc.loader import FLAVOR_NAME, PyFuncModel, load_local_model, load_model
from modelyard.pyfunc.model import (
    PythonModel,
    PythonModelContext,
    PythonModelWrapper,
    as_python_model,
    needs_modelyard,
    save_python_model,
)
from modelyard.pyfunc.type_hints import FROM_EXAMPLE_KEY, FROM_TYPE_HINT_KEY, signature_from_hints

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "get_default_pip_requirements",
    "load_local_model",
    "load_model",
    "log_model",
    "save_model",
]

_DATA_DIR = "data"


def get_default_pip_requirements(python_model: Any = None) -> list[str]:
    """cloudpickle and the data libraries; modelyard too when the model's class needs it to unpickle
    (a subclass of modelyard's `PythonModel`), or when no model is given."""
    needs = python_model is None or needs_modelyard(python_model)
    return default_requirements([*(["modelyard"] if needs else []), "cloudpickle", "numpy", "pandas"])


def save_model(
    path: str | os.PathLike[str],
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    model_config: dict[str, Any] | None = None,
    **options: Unpack[flavor.SaveOptions],
) -> Model:
    """Save a `PythonModel` (with its `artifacts`), or a `loader_module` with its `data_path`, to a new
    folder `path` (the shared keywords: `models/flavor.py`)."""
    python_model = as_python_model(python_model) if python_model is not None else None
    if (python_model is None) == (loader_module is None):
        raise ModelyardException.invalid_parameter("Pass exactly one of python_model or loader_module")
    if artifacts and python_model is None:
        raise ModelyardException.invalid_parameter("artifacts are only supported with python_model")

    def write(directory: Path, model: Model, code: str | None) -> flavor.Written:
        requirements = get_default_pip_requirements(python_model)
        if python_model is None:
            conf = {"loader_module": loader_module, "code": code}
            if data_path is not None:
                conf["data"] = _copy_data(directory, data_path)
            return flavor.Written(requirements, conf)
        conf = save_python_model(directory, python_model, artifacts, code, model_config)
        predict = _example_predictor(python_model, conf, directory, model_config)
        from_hints = signature_from_hints(python_model) if options.get("signature") is None else None
        if from_hints is not None:
            model.extra.update({FROM_TYPE_HINT_KEY: True, FROM_EXAMPLE_KEY: False})
        return flavor.Written(requirements, conf, predict, from_hints)

    return flavor.save(path, write, options)


def log_model(
    name: str | None = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    model_config: dict[str, Any] | None = None,
    **options: Unpack[flavor.LogOptions],
) -> ModelInfo:
    """Save to a temporary folder and publish it as a logged model of the active run (MLflow 3's flow)."""
    own = {
        "python_model": python_model,
        "artifacts": artifacts,
        "loader_module": loader_module,
        "data_path": data_path,
        "model_config": model_config,
    }
    return flavor.log(save_model, name, own, options)


def _copy_data(directory: Path, data_path: str) -> str:
    source = Path(data_path)
    if not source.exists():
        raise ModelyardException.invalid_parameter(f"data_path '{data_path}' does not exist")
    target = directory / _DATA_DIR / source.resolve().name
    target.parent.mkdir()
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return f"{_DATA_DIR}/{source.resolve().name}"


def _example_predictor(
    python_model: Any, conf: dict[str, Any], directory: Path, model_config: dict[str, Any] | None
) -> Any:
    """Scores the input example as the loaded model would (after load_context), to infer output types."""
    artifacts = {name: str(directory / spec["path"]) for name, spec in (conf.get("artifacts") or {}).items()}

    def predict(example: Any) -> Any:
        context = PythonModelContext(artifacts=artifacts, model_config=dict(model_config or {}))
        python_model.load_context(context)
        return PythonModelWrapper(python_model, context).predict(example)

    return predict
