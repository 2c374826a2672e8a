"""Custom Python models: the `PythonModel` base class, how one is saved, and its pyfunc loader.

A saved custom model is a cloudpickled instance plus an `artifacts/` folder and a `code/` folder,
described by the MLmodel MLflow writes for one (`loader_module: mlflow.pyfunc.model`, `python_model`,
`artifacts`, `code`), so the real mlflow loads it with its own loader; modelyard maps that loader
module to this one (`pyfunc/loader.py`), whose `_load_pyfunc(path)` is the pyfunc loader contract.
A model whose class derives from modelyard's `PythonModel` still needs modelyard where it is
unpickled: `model_requirements` names it in the model's requirements then (and only then).

Custom models saved by MLflow (the same MLmodel) load here too: the pickle references
`mlflow.pyfunc.PythonModel`, so it unpickles only where `mlflow` is importable; models-from-code
(a `.py` file as `python_model`) are not supported.
"""

from __future__ import annotations

import inspect
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.mlmodel import Model

FLAVOR_NAME = "python_function"
#: What MLflow writes for custom models (so mlflow loads ours); modelyard maps it to this module.
LOADER_MODULE = "mlflow.pyfunc.model"
PICKLE_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
CODE_DIR = "code"


@dataclass
class PythonModelContext:
    """What `load_context` and `predict` receive: local paths of the model's artifacts, and its config."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictTypeHints:
    """What mlflow's custom-model loader asks a model for before each predict (`predict_type_hints`):
    the hints of `predict`'s input and return value, so mlflow converts and checks the input of a
    type-hinted modelyard model as it does its own (see `type_hints`)."""

    input: Any = None
    output: Any = None


class PythonModel:
    """Subclass and implement `predict`; `load_context` runs once at load time (open files, build state).

    Type hints on `predict` (`model_input: list[str]`) declare the signature and convert the input,
    as in MLflow 3 (see `modelyard.pyfunc.type_hints`).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        predict = cls.__dict__.get("predict")
        if callable(predict):
            from modelyard.pyfunc.type_hints import wrap_predict

            cls.predict = wrap_predict(predict)  # type: ignore[method-assign]

    @property
    def predict_type_hints(self) -> PredictTypeHints:
        from modelyard.pyfunc.type_hints import predict_hints

        return PredictTypeHints(*predict_hints(self))

    def load_context(self, context: PythonModelContext) -> None:
        """Default: nothing to prepare."""

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        raise ModelyardException.invalid_parameter(
            f"{type(self).__name__} must implement predict(context, model_input, params=None)"
        )

    def predict_stream(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Optional: yield the prediction in chunks (`PyFuncModel.predict_stream`)."""
        raise ModelyardException.invalid_parameter(f"{type(self).__name__} does not implement predict_stream")


class FunctionPythonModel(PythonModel):
    """`python_model=<function>` (MLflow 3): the function is the model's `predict(model_input)`."""

    def __init__(self, func: Any) -> None:
        self.func = func

    @property
    def predict_type_hints(self) -> PredictTypeHints:
        from modelyard.pyfunc.type_hints import function_hints

        return PredictTypeHints(*function_hints(self.func))

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        from modelyard.pyfunc.type_hints import convert_input, function_hints

        hint = function_hints(self.func)[0]
        return self.func(convert_input(model_input, hint) if hint is not None else model_input)


def as_python_model(python_model: Any) -> Any:
    """A PythonModel instance as given; a plain function wrapped as one."""
    if callable(python_model) and not callable(getattr(python_model, "predict", None)):
        return FunctionPythonModel(python_model)
    return python_model


def is_streamable(python_model: Any) -> bool:
    """Whether the model's class overrides `predict_stream` (the flavor's `streamable` flag)."""
    method = getattr(type(python_model), "predict_stream", None)
    return method is not None and getattr(method, "__qualname__", "").split(".")[0] not in ("PythonModel",)


def needs_modelyard(python_model: Any) -> bool:
    """Whether unpickling `python_model` imports modelyard (its class or a base comes from modelyard)."""
    return any(klass.__module__.split(".", 1)[0] == "modelyard" for klass in type(python_model).__mro__)


def save_python_model(
    model_dir: Path,
    python_model: Any,
    artifacts: dict[str, str] | None,
    code_dir: str | None,
    model_config: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write the pickle and artifacts into `model_dir`; returns the python_function flavor fields."""
    import cloudpickle

    if not callable(getattr(python_model, "predict", None)):
        raise ModelyardException.invalid_parameter(
            "python_model must be a PythonModel instance (with a predict method)"
        )
    with open(model_dir / PICKLE_FILE, "wb") as out:
        cloudpickle.dump(python_model, out)
    conf: dict[str, Any] = {
        "loader_module": LOADER_MODULE,
        "python_model": PICKLE_FILE,
        "cloudpickle_version": cloudpickle.__version__,
        "code": code_dir,
        "streamable": is_streamable(python_model),
    }
    if artifacts:
        conf["artifacts"] = _copy_artifacts(model_dir, artifacts)
    if model_config:
        conf["model_config"] = model_config
    return conf


def _copy_artifacts(model_dir: Path, artifacts: dict[str, str]) -> dict[str, dict[str, str]]:
    from modelyard.models.uri import download_artifact_uri

    target_root = model_dir / ARTIFACTS_DIR
    target_root.mkdir(exist_ok=True)
    out: dict[str, dict[str, str]] = {}
    for name, uri in artifacts.items():
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ModelyardException.invalid_parameter(f"Invalid artifact name {name!r}")
        local = Path(download_artifact_uri(str(uri), str(target_root / f".{name}.download")))
        target = target_root / local.name
        if target.exists():
            raise ModelyardException.invalid_parameter(
                f"Two artifacts would be stored as {local.name!r} in the model; rename one of them"
            )
        shutil.move(str(local), str(target))
        shutil.rmtree(target_root / f".{name}.download", ignore_errors=True)
        out[name] = {"path": f"{ARTIFACTS_DIR}/{local.name}", "uri": str(uri)}
    return out


class PythonModelWrapper:
    """The pyfunc implementation of a custom model: calls `predict(context, input, params)` as the model declares."""

    def __init__(self, python_model: Any, context: Any) -> None:
        self.python_model = python_model
        self.context = context
        from modelyard.pyfunc.type_hints import predict_hints

        parameters = list(inspect.signature(python_model.predict).parameters)
        self._takes_context = bool(parameters) and parameters[0] == "context"
        self._takes_params = "params" in parameters
        self._input_hint = predict_hints(python_model)[0]

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        if self._input_hint is not None:
            from modelyard.pyfunc.type_hints import convert_input

            data = convert_input(data, self._input_hint)
        args: list[Any] = [self.context] if self._takes_context else []
        args.append(data)
        if self._takes_params:
            return self.python_model.predict(*args, params=params)
        return self.python_model.predict(*args)

    def predict_stream(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        args: list[Any] = [self.context] if self._takes_context else []
        method = self.python_model.predict_stream
        stream_params = list(inspect.signature(method).parameters)
        if not (stream_params and stream_params[0] == "context"):
            args = []
        if "params" in stream_params:
            return method(*args, data, params=params)
        return method(*args, data)

    def unwrap_python_model(self) -> Any:
        return self.python_model


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> PythonModelWrapper:
    """The pyfunc loader contract: `path` is the model directory (MLflow passes it when no `data` key is set)."""
    import cloudpickle

    model_dir = Path(path) if os.path.isdir(path) else Path(path).parent
    conf = Model.load(model_dir).flavor(FLAVOR_NAME)
    pickle_name = conf.get("python_model")
    if not pickle_name or str(pickle_name).endswith(".py"):
        raise ModelyardException.invalid_parameter(
            "This custom model is a models-from-code model (a Python file); modelyard loads pickled PythonModels only"
        )
    with open(model_dir / pickle_name, "rb") as source:
        python_model = cloudpickle.load(source)
    artifacts = {name: str(model_dir / spec["path"]) for name, spec in (conf.get("artifacts") or {}).items()}
    config = {**(conf.get("model_config") or {}), **(model_config or {})}
    context = _make_context(python_model, artifacts, config)
    python_model.load_context(context)
    return PythonModelWrapper(python_model, context)


def _make_context(python_model: Any, artifacts: dict[str, str], config: dict[str, Any]) -> Any:
    """A model pickled from MLflow's base class gets MLflow's context type, which its code may expect."""
    module = type(python_model).__mro__
    if any(klass.__module__.startswith("mlflow.") for klass in module):
        try:
            from mlflow.pyfunc import PythonModelContext as MlflowContext

            return MlflowContext(artifacts=artifacts, model_config=config)
        except ImportError:  # pragma: no cover - the pickle itself needs mlflow, so this cannot happen
            pass
    return PythonModelContext(artifacts=artifacts, model_config=config)
