"""The generic model interface: any saved model loads as a `PyFuncModel` with one `predict`.

Two ways to save a pyfunc model, as in MLflow: a custom `PythonModel` instance (pickled, with
`artifacts` and `code_paths`), or `loader_module` + `data_path` naming a module whose `_load_pyfunc(path)`
builds the model from the copied data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models import model_dir as _model_dir
from modelyard.models.environment import default_requirements
from modelyard.models.mlmodel import Model, ModelInfo
from modelyard.models.signature import ModelSignature
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
    code_paths: list[str] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
) -> Model:
    python_model = as_python_model(python_model) if python_model is not None else None
    if (python_model is None) == (loader_module is None):
        raise ModelyardException.invalid_parameter("Pass exactly one of python_model or loader_module")
    if artifacts and python_model is None:
        raise ModelyardException.invalid_parameter("artifacts are only supported with python_model")
    directory = _model_dir.start(path)
    model = mlflow_model or Model()
    if metadata is not None:
        model.metadata = metadata
    try:
        code = _model_dir.copy_code_paths(directory, code_paths)
        if python_model is not None:
            conf = save_python_model(directory, python_model, artifacts, code, model_config)
            predict = _example_predictor(python_model, conf, directory, model_config)
            if signature is None and (from_hints := signature_from_hints(python_model)) is not None:
                signature = from_hints
                model.extra.update({FROM_TYPE_HINT_KEY: True, FROM_EXAMPLE_KEY: False})
        else:
            conf = {"loader_module": loader_module, "code": code}
            if data_path is not None:
                conf["data"] = _copy_data(directory, data_path)
            predict = None
        signature = _model_dir.resolve_signature(signature, input_example, predict)
        requirements = pip_requirements or [
            *get_default_pip_requirements(python_model),
            *(extra_pip_requirements or []),
        ]
        return _model_dir.finish(directory, model, signature, input_example, requirements, conf)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def log_model(
    name: str | None = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: list[str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    artifact_path: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    run_id: str | None = None,
) -> ModelInfo:
    from modelyard.models.publish import log_model as publish

    def save(path: Path, model: Model) -> Model:
        return save_model(
            path,
            python_model=python_model,
            artifacts=artifacts,
            loader_module=loader_module,
            data_path=data_path,
            code_paths=code_paths,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            metadata=metadata,
            model_config=model_config,
            mlflow_model=model,
        )

    return publish(
        save,
        name=name or artifact_path,
        registered_model_name=registered_model_name,
        params=params,
        tags=tags,
        model_type=model_type,
        step=step,
        run_id=run_id,
    )


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
