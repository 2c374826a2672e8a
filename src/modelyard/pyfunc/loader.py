"""Loading any model directory as a generic `PyFuncModel`, whichever library saved it.

The `loader_module` in the python_function flavor names who can load the model. MLflow's own
`mlflow.sklearn` and `mlflow.pyfunc.model` map to modelyard's loaders, so models saved by MLflow load
without MLflow's loaders; any other module is imported and its `_load_pyfunc(path)` called, which is
the pyfunc contract MLflow's flavors (xgboost, lightgbm, ...) implement when they are installed.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.enforcement import enforce_params, enforce_schema
from modelyard.models.flavor import add_code_to_path
from modelyard.models.mlmodel import Model, load_input_example
from modelyard.models.schema import Schema

FLAVOR_NAME = "python_function"

_LOADER_ALIASES = {
    "mlflow.sklearn": "modelyard.sklearn",
    "mlflow.pyfunc.model": "modelyard.pyfunc.model",
    "mlflow.pytorch": "modelyard.pytorch",
    "mlflow.xgboost": "modelyard.xgboost",
}


class PyFuncModel:
    """A loaded model with one `predict(data, params=None)`; the input is checked against the signature first."""

    def __init__(self, metadata: Model, model_impl: Any, model_dir: str, predict_fn: str = "predict") -> None:
        self.metadata = metadata
        self._impl = model_impl
        self._model_dir = model_dir
        self._predict_fn = predict_fn
        method = getattr(model_impl, predict_fn, None)
        if not callable(method):
            raise ModelyardException.invalid_parameter(f"The loaded model has no '{predict_fn}' method")
        self._predict = method
        try:
            self._takes_params = "params" in inspect.signature(method).parameters
        except (TypeError, ValueError):  # builtins without a signature
            self._takes_params = False

    @property
    def loader_module(self) -> str:
        return str(self.metadata.flavor(FLAVOR_NAME).get("loader_module"))

    @property
    def model_id(self) -> str | None:
        return self.metadata.model_id

    @property
    def input_schema(self) -> Schema | None:
        return self.metadata.signature.inputs if self.metadata.signature else None

    @property
    def input_example(self) -> Any:
        return load_input_example(self.metadata, self._model_dir)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        signature = self.metadata.signature
        # A signature from type hints is enforced by the model's own hints (type_hints.convert_input).
        from_hints = bool(self.metadata.extra.get("is_signature_from_type_hint"))
        if signature is not None and signature.inputs is not None and not from_hints:
            data = enforce_schema(data, signature.inputs)
        return self.predict_conformed(data, params)

    def predict_conformed(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """`predict` for input already in the form `enforce_schema` gives it (the scoring service's
        fast path checks its requests against the schema itself, `serving/fast_path.py`)."""
        signature = self.metadata.signature
        checked = enforce_params(params, signature.params if signature else None)
        if self._takes_params:
            return self._predict(data, params=checked)
        return self._predict(data)

    def predict_stream(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The model's prediction as an iterator of chunks (custom models that implement predict_stream)."""
        stream = getattr(self._impl, "predict_stream", None)
        if stream is None or not self.metadata.flavor(FLAVOR_NAME).get("streamable", False):
            raise ModelyardException.invalid_parameter("This model does not support predict_stream")
        checked = enforce_params(params, self.metadata.signature.params if self.metadata.signature else None)
        return stream(data, params=checked)

    def unwrap_python_model(self) -> Any:
        unwrap = getattr(self._impl, "unwrap_python_model", None)
        if unwrap is None:
            raise ModelyardException.invalid_parameter("This model is not a custom PythonModel")
        return unwrap()

    def get_raw_model(self) -> Any:
        raw = getattr(self._impl, "get_raw_model", None)
        return raw() if raw is not None else self._impl

    def __repr__(self) -> str:
        return f"PyFuncModel(loader_module={self.loader_module!r}, run_id={self.metadata.run_id!r})"


def load_model(
    model_uri: str, dst_path: str | None = None, model_config: dict[str, Any] | None = None
) -> PyFuncModel:
    """Load from any model URI (`runs:/`, `models:/`, `s3://`, `mlflow-artifacts:/`, a local path)."""
    from modelyard.models.uri import download_model

    local = download_model(model_uri, dst_path)
    return load_local_model(local, model_config)


def load_local_model(model_dir: str | Path, model_config: dict[str, Any] | None = None) -> PyFuncModel:
    path = Path(model_dir)
    metadata = Model.load(path)
    conf = metadata.flavor(FLAVOR_NAME)
    loader = conf.get("loader_module")
    if not loader:
        raise ModelyardException.invalid_parameter("The python_function flavor has no loader_module")
    add_code_to_path(path, conf.get("code"))
    data_path = str(path / conf["data"]) if conf.get("data") else str(path)
    module = importlib.import_module(_LOADER_ALIASES.get(loader, loader))
    impl = module._load_pyfunc(data_path, model_config) if model_config else module._load_pyfunc(data_path)
    return PyFuncModel(metadata, impl, str(path), conf.get("predict_fn") or "predict")
